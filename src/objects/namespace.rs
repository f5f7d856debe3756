//! What all namespaces share: identity, owner and parent, the external test,
//! and the record prefix. Also the kinds with no contents of their own yet
//! (ipc, mnt, net, cgroup).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::{U32, U64};

use super::{ipc_ns, pid_ns, time_ns, user_ns, uts_ns, ObjectError};
use crate::image::format::{ns_flags, NsCommon};
use crate::image::reader::Object;
use crate::image::{ImageWriter, Ref};
use crate::kstate::registry::{NsContents, NsKey, NsKind, NsObject, Registry};
use crate::procfs;
use crate::sys::nsquery::{query, Query};

/// The namespace links of /proc/PID/ns, in nsproxy order.
pub const LINKS: [(&str, NsKind); 10] = [
    ("user", NsKind::User),
    ("uts", NsKind::Uts),
    ("ipc", NsKind::Ipc),
    ("mnt", NsKind::Mnt),
    ("pid", NsKind::Pid),
    ("pid_for_children", NsKind::Pid),
    ("net", NsKind::Net),
    ("cgroup", NsKind::Cgroup),
    ("time", NsKind::Time),
    ("time_for_children", NsKind::Time),
];

fn key_of(kind: NsKind, meta: &std::fs::Metadata) -> NsKey {
    NsKey {
        kind,
        dev: meta.dev(),
        ino: meta.ino(),
    }
}

/// The identity of the namespace behind a /proc/PID/ns link (stat follows it).
pub fn identify(pid: i32, path: &Path, kind: NsKind) -> Result<NsKey, ObjectError> {
    let meta = std::fs::metadata(path).map_err(super::proc_err(pid, path))?;
    Ok(key_of(kind, &meta))
}

/// Registers the namespace behind a /proc/PID/ns link, with its owner and
/// parents, unless it is known already. Returns its registry index.
pub fn register_link(
    reg: &mut Registry,
    pid: i32,
    path: &Path,
    kind: NsKind,
) -> Result<usize, ObjectError> {
    let key = identify(pid, path, kind)?;
    if let Some(i) = reg.find_ns(&key) {
        return Ok(i);
    }
    let fd: OwnedFd = File::open(path).map_err(super::proc_err(pid, path))?.into();
    register_fd(reg, key, fd)
}

fn fd_key(
    kind: NsKind,
    fd: OwnedFd,
    of: NsKey,
    what: &'static str,
) -> Result<(NsKey, OwnedFd), ObjectError> {
    let file = File::from(fd);
    let meta = file.metadata().map_err(|source| ObjectError::Namespace {
        ns: of,
        what,
        source,
    })?;
    Ok((key_of(kind, &meta), file.into()))
}

fn register_fd(reg: &mut Registry, key: NsKey, fd: OwnedFd) -> Result<usize, ObjectError> {
    if let Some(i) = reg.find_ns(&key) {
        return Ok(i);
    }
    let i = reg.insert_ns(key, fd);
    let hierarchical = matches!(key.kind, NsKind::Pid | NsKind::User);
    if hierarchical {
        let parent = crate::sys::ns_get_parent(reg.namespaces[i].fd.as_fd()).map_err(|source| {
            ObjectError::Namespace {
                ns: key,
                what: "NS_GET_PARENT",
                source,
            }
        })?;
        if let Some(pfd) = parent {
            let (pkey, pfd) = fd_key(key.kind, pfd, key, "stat of parent")?;
            let p = register_fd(reg, pkey, pfd)?;
            let level = reg.namespaces[p].level + 1;
            let ns = &mut reg.namespaces[i];
            ns.parent = Some(p);
            ns.level = level;
        }
    }
    if key.kind == NsKind::User {
        reg.namespaces[i].owner = reg.namespaces[i].parent;
    } else {
        let owner = crate::sys::ns_get_userns(reg.namespaces[i].fd.as_fd()).map_err(|source| {
            ObjectError::Namespace {
                ns: key,
                what: "NS_GET_USERNS",
                source,
            }
        })?;
        if let Some(ofd) = owner {
            let (okey, ofd) = fd_key(NsKind::User, ofd, key, "stat of owner")?;
            let o = register_fd(reg, okey, ofd)?;
            reg.namespaces[i].owner = Some(o);
        }
    }
    Ok(i)
}

/// Marks external every namespace that a process outside the tree uses.
/// Processes that vanish while we look are skipped.
pub fn mark_external(reg: &mut Registry, tree: &HashSet<i32>) -> Result<(), ObjectError> {
    let index = reg.inode_index();
    let pids = procfs::numeric_entries(Path::new("/proc"))
        .map_err(super::proc_err(0, Path::new("/proc")))?;
    let mut link = std::path::PathBuf::new();
    for pid in pids.into_iter().filter(|p| !tree.contains(p)) {
        for (name, _) in LINKS {
            link.clear();
            link.push(procfs::pid_path(pid, "ns"));
            link.push(name);
            let Ok(target) = procfs::readlink(&link) else {
                continue;
            };
            let Some((ty, ino)) = procfs::ns_link_inode(&target) else {
                continue;
            };
            let Some(kind) = NsKind::from_link_type(ty) else {
                continue;
            };
            if let Some(&i) = index.get(&(kind, ino)) {
                let ns = &mut reg.namespaces[i];
                if !ns.external {
                    log::debug!("collect: {} is external (used by pid {pid})", ns.key);
                    ns.external = true;
                }
            }
        }
    }
    Ok(())
}

/// Reads the contents of every namespace inside the tree.
pub fn collect_contents(reg: &mut Registry) -> Result<(), ObjectError> {
    for i in 0..reg.namespaces.len() {
        let ns = &reg.namespaces[i];
        if ns.external {
            continue;
        }
        let contents = match ns.key.kind {
            NsKind::User => user_ns::collect(ns)?,
            NsKind::Pid => pid_ns::collect(ns)?,
            NsKind::Uts => uts_ns::collect(ns)?,
            NsKind::Time => time_ns::collect(ns)?,
            NsKind::Ipc => ipc_ns::collect(ns)?,
            NsKind::Mnt | NsKind::Net | NsKind::Cgroup => NsContents::None,
        };
        log::debug!(
            "collect: {} level {} users {}: {:?}",
            ns.key,
            ns.level,
            ns.users,
            contents
        );
        reg.namespaces[i].contents = contents;
    }
    Ok(())
}

/// Runs a query inside namespace `ns` (see [`crate::sys::nsquery`]); `what`
/// names what is read, for the error.
pub fn ask(ns: &NsObject, q: &Query<'_>, what: &'static str) -> Result<Vec<Vec<u8>>, ObjectError> {
    query(
        ns.fd.as_fd(),
        ns.key.kind.clone_flag(),
        q,
        crate::kstate::HELPER_TIMEOUT,
    )
    .map_err(|source| ObjectError::Query {
        ns: ns.key,
        what,
        source,
    })
}

/// The record prefix of namespace `ns`; its owner must be dumped already.
pub fn common(reg: &Registry, ns: &NsObject) -> NsCommon {
    NsCommon {
        flags: U32::new(if ns.external { ns_flags::EXTERNAL } else { 0 }),
        users: U32::new(ns.users),
        dev: U64::new(ns.key.dev),
        ino: U64::new(ns.key.ino),
        owner: ns.owner.map_or(Ref::UNDEF, |o| reg.namespaces[o].image_ref),
    }
}

/// Dumps every namespace: user namespaces by level, then pid namespaces by
/// level, then the other types, so that each record's owner and parent come
/// before it.
pub fn dump_all<W: Write>(reg: &mut Registry, w: &mut ImageWriter<W>) -> Result<(), ObjectError> {
    for kind in NsKind::ALL {
        let mut order: Vec<usize> = (0..reg.namespaces.len())
            .filter(|&i| reg.namespaces[i].key.kind == kind)
            .collect();
        order.sort_by_key(|&i| (reg.namespaces[i].level, i));
        for i in order {
            let ns = &reg.namespaces[i];
            let c = common(reg, ns);
            let r = match kind {
                NsKind::User => user_ns::dump(w, c, ns),
                NsKind::Pid => pid_ns::dump(
                    w,
                    c,
                    ns,
                    ns.parent
                        .map_or(Ref::UNDEF, |p| reg.namespaces[p].image_ref),
                ),
                NsKind::Uts => uts_ns::dump(w, c, ns),
                NsKind::Time => time_ns::dump(w, c, ns),
                NsKind::Ipc => ipc_ns::dump(w, c, ns),
                NsKind::Mnt | NsKind::Net | NsKind::Cgroup => w.push(kind.image_kind(), &c, &[]),
            }
            .map_err(ObjectError::Write)?;
            log::debug!("dump: {} as record {}", ns.key, r.id.get());
            reg.namespaces[i].image_ref = r;
        }
    }
    Ok(())
}

/// JSON for a reference: the record id, or null for UNDEF.
pub fn ref_json(r: Ref) -> Value {
    r.id().map_or(Value::Null, Value::from)
}

/// The fields every namespace record shows.
pub fn describe_common(c: &NsCommon, out: &mut Map<String, Value>) {
    out.insert("external".into(), json!(c.is_external()));
    out.insert("users".into(), json!(c.users.get()));
    out.insert("dev".into(), json!(c.dev.get()));
    out.insert("ino".into(), json!(c.ino.get()));
    out.insert("owner".into(), ref_json(c.owner));
}

/// Kind-specific fields of a namespace record.
pub fn describe(obj: &Object<'_>, out: &mut Map<String, Value>) {
    if let Some(c) = obj.ns_common() {
        describe_common(c, out);
    }
    match obj {
        Object::UserNs(v) => user_ns::describe(v, out),
        Object::PidNs(r) => pid_ns::describe(r, out),
        Object::UtsNs(v) => uts_ns::describe(v, out),
        Object::TimeNs(r) => time_ns::describe(r, out),
        Object::IpcNs(r) => ipc_ns::describe(r, out),
        _ => {}
    }
}
