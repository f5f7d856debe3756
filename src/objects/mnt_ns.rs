//! Mount namespaces of the tree's own: the mounts its tasks see, in order,
//! with their flags and propagation, and the contents of its tmpfs mounts.
//!
//! **Checkpoint** (`collect_all`): /proc/PID/mountinfo of a task of the
//! namespace is compared with the namespace it was copied from: its parent
//! task's when that is one of the tree's own too, else kstate's. A mount
//! identical to one there (mount point, device, root, type, source and
//! superblock options; per-mount flags may differ) is *inherited*: the
//! restart's copy of that namespace will hold it again. Every other mount is recorded with how to make it again: a new
//! superblock of a supported type (proc, sysfs, tmpfs, devpts, mqueue), a
//! bind of (a directory of) an earlier mount of the same device, or an
//! external mount the user named (`--external mnt[MOUNTPOINT]:KEY`).
//! Anything else is refused, naming the mount. Peer groups are renumbered
//! in order of appearance (the kernel's numbers change), and a group that
//! has members in kstate's namespace is "outside". A tmpfs is read through
//! a detached clone of that one mount (`sys::mnt::clone_mount`), so what
//! later mounts hide is read too.
//!
//! **Restart** (`restore`), in the task that creates the namespace, before
//! it creates its children (who inherit it) and, being the init of its pid
//! namespace when it has one, so that proc shows the restored pids: the
//! copy (of kstate's namespace, or of the parent task's restored one) is
//! matched against the inherited records (the root of a cgroup or cgroup2
//! mount is shown relative to the *reader's* cgroup namespace: a restorer in
//! a cgroup namespace the tree made, rooted at kstate's cgroups, reads it
//! back in kstate's terms, as the checkpoint recorded it; see
//! [`CgroupView`]), their propagation is set first
//! (private when they were, so that nothing done next propagates out),
//! then their changed flags, mounts that are not in the image are taken
//! away (lazily, deepest first), then every other mount is made
//! in the recorded order, each with its flags and propagation, and each
//! tmpfs is filled right after it is mounted, before anything can cover
//! parts of it. A failure leaves only mounts in the new namespace, which
//! dies with the task.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use zerocopy::little_endian::{I64, U32, U64};

use super::ObjectError;
use crate::image::format::{
    mount_flags, mount_how, mount_prop, MntFileRecord, MountRecord, MOUNT_NONE,
};
use crate::image::reader::{MntFileView, MountView, Object};
use crate::image::{Image, ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsKey, NsKind, Registry};
use crate::procfs;

/// File systems kstate mounts anew at restart.
pub const SUPPORTED: [&[u8]; 5] = [b"proc", b"sysfs", b"tmpfs", b"devpts", b"mqueue"];
/// Most bytes of file data kstate dumps from one tmpfs.
pub const MAX_TMPFS_BYTES: u64 = 64 << 20;
/// Most entries kstate dumps from one tmpfs.
pub const MAX_TMPFS_ENTRIES: usize = 100_000;

/// One line of /proc/PID/mountinfo.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountEntry {
    pub id: u32,
    pub parent: u32,
    /// major:minor as a dev_t.
    pub dev: u64,
    pub root: Vec<u8>,
    pub mountpoint: Vec<u8>,
    pub mnt_opts: Vec<u8>,
    pub shared: Option<u32>,
    pub master: Option<u32>,
    pub unbindable: bool,
    pub fstype: Vec<u8>,
    pub source: Vec<u8>,
    pub super_opts: Vec<u8>,
}

impl MountEntry {
    /// What must be equal for a mount to be a copy of another (its
    /// per-mount flags may have been changed since: remount,bind).
    fn same_mount(&self, o: &MountEntry) -> bool {
        self.dev == o.dev
            && self.mountpoint == o.mountpoint
            && self.root == o.root
            && self.fstype == o.fstype
            && self.source == o.source
            && self.super_opts == o.super_opts
    }
}

/// Undoes the kernel's octal escapes (`\040` for a space, …).
fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Parses /proc/PID/mountinfo; `None` on a malformed line.
pub fn parse_mountinfo(text: &[u8]) -> Option<Vec<MountEntry>> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut w = line.split(|&b| b == b' ');
        let id = procfs::parse_u32(w.next()?)?;
        let parent = procfs::parse_u32(w.next()?)?;
        let (maj, min) = {
            let mm = w.next()?;
            let colon = mm.iter().position(|&b| b == b':')?;
            (
                procfs::parse_u32(&mm[..colon])?,
                procfs::parse_u32(&mm[colon + 1..])?,
            )
        };
        let root = unescape(w.next()?);
        let mountpoint = unescape(w.next()?);
        let mnt_opts = w.next()?.to_vec();
        let mut e = MountEntry {
            id,
            parent,
            dev: libc::makedev(maj, min),
            root,
            mountpoint,
            mnt_opts,
            ..MountEntry::default()
        };
        loop {
            let tag = w.next()?;
            if tag == b"-" {
                break;
            }
            if let Some(g) = tag.strip_prefix(b"shared:") {
                e.shared = Some(procfs::parse_u32(g)?);
            } else if let Some(g) = tag.strip_prefix(b"master:") {
                e.master = Some(procfs::parse_u32(g)?);
            } else if tag == b"unbindable" {
                e.unbindable = true;
            }
        }
        e.fstype = unescape(w.next()?);
        e.source = unescape(w.next()?);
        e.super_opts = unescape(w.next().unwrap_or(b""));
        out.push(e);
    }
    Some(out)
}

/// The per-mount options of mountinfo as [`mount_flags`].
pub fn mnt_flags_of(opts: &[u8]) -> u32 {
    let mut f = 0;
    for o in opts.split(|&b| b == b',') {
        f |= match o {
            b"ro" => mount_flags::RDONLY,
            b"nosuid" => mount_flags::NOSUID,
            b"nodev" => mount_flags::NODEV,
            b"noexec" => mount_flags::NOEXEC,
            b"nosymfollow" => mount_flags::NOSYMFOLLOW,
            b"noatime" => mount_flags::NOATIME,
            b"nodiratime" => mount_flags::NODIRATIME,
            b"relatime" => mount_flags::RELATIME,
            _ => 0,
        };
    }
    f
}

/// One file, directory, link, device or fifo of a tmpfs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the mount's root; empty for the root itself.
    pub path: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub mtime: (i64, i64),
    pub target: Vec<u8>,
    pub data: Vec<u8>,
}

/// One recorded mount.
#[derive(Clone, Debug, Default)]
pub struct MountInfo {
    pub how: u32,
    pub parent: u32,
    pub bind_of: u32,
    pub mnt_flags: u32,
    pub propagation: u32,
    pub peer_group: u32,
    pub master_group: u32,
    pub dev: u64,
    /// Registry index of the pid namespace a proc mount shows.
    pub pid_ns: Option<usize>,
    pub mountpoint: Vec<u8>,
    pub root: Vec<u8>,
    pub fstype: Vec<u8>,
    pub source: Vec<u8>,
    pub options: Vec<u8>,
    pub key: Vec<u8>,
    pub files: Vec<FileEntry>,
}

/// The recorded mounts of one mount namespace of the tree's own.
#[derive(Debug, Default)]
pub struct MountTable {
    /// Registry index of the namespace.
    pub ns: usize,
    pub mounts: Vec<MountInfo>,
}

/// `--external mnt[MOUNTPOINT]:KEY` (checkpoint) or `mnt[KEY]:PATH`
/// (restart), CRIU's syntax: the part in brackets and the part after.
pub fn parse_external(spec: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let bad = || format!("--external {spec}: expected mnt[MOUNTPOINT]:KEY or mnt[KEY]:PATH");
    let rest = spec.strip_prefix("mnt[").ok_or_else(bad)?;
    let close = rest.find("]:").ok_or_else(bad)?;
    let (inside, value) = (&rest[..close], &rest[close + 2..]);
    if inside.is_empty() || value.is_empty() {
        return Err(bad());
    }
    Ok((inside.as_bytes().to_vec(), value.as_bytes().to_vec()))
}

fn mount_err(ns: NsKey, e: &MountEntry, what: String) -> ObjectError {
    ObjectError::Mount {
        ns,
        mountpoint: procfs::show(&e.mountpoint),
        fstype: procfs::show(&e.fstype),
        device: procfs::show(&e.source),
        what,
    }
}

/// Whether path `inner` is `outer` or below it (component-wise).
fn path_under<'a>(inner: &'a [u8], outer: &[u8]) -> Option<&'a [u8]> {
    if outer == b"/" {
        return Some(inner.strip_prefix(b"/").unwrap_or(inner));
    }
    let rest = inner.strip_prefix(outer)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(b"/")
    }
}

/// Reads the mounts of every mount namespace of the tree's own.
/// `external` holds `--external` specs (`mnt[MOUNTPOINT]:KEY`).
pub fn collect_all(reg: &mut Registry, external: &[String]) -> Result<(), ObjectError> {
    let ext: Vec<(Vec<u8>, Vec<u8>)> = external
        .iter()
        .map(|s| parse_external(s))
        .collect::<Result<_, _>>()
        .map_err(ObjectError::Option)?;
    let own_path = Path::new("/proc/self/mountinfo");
    let own = parse_mountinfo(&procfs::read(own_path).map_err(super::proc_err(0, own_path))?)
        .ok_or_else(|| ObjectError::ProcParse {
            pid: std::process::id() as i32,
            path: own_path.into(),
            field: "mountinfo",
        })?;
    for i in 0..reg.namespaces.len() {
        let ns = &reg.namespaces[i];
        if ns.key.kind != NsKind::Mnt || ns.external {
            continue;
        }
        let Some(t) = reg
            .tasks
            .iter()
            .find(|t| reg.nsproxies[t.nsproxy].key.mnt == i)
        else {
            continue;
        };
        let pid = t.info.pid;
        // The namespace it was copied from: its parent task's, when that is
        // one of the tree's own too (the restart copies it from the restored
        // one), else kstate's (the restart copies kstate's).
        let from = t.parent.map(|p| &reg.tasks[p]).filter(|p| {
            let m = reg.nsproxies[p.nsproxy].key.mnt;
            m != i && !reg.namespaces[m].external
        });
        let parent_list;
        let base: &[MountEntry] = match from {
            Some(p) => {
                let path = procfs::pid_path(p.info.pid, "mountinfo");
                parent_list = parse_mountinfo(
                    &procfs::read(&path).map_err(super::proc_err(p.info.pid, &path))?,
                )
                .ok_or_else(|| ObjectError::ProcParse {
                    pid: p.info.pid,
                    path: path.clone(),
                    field: "mountinfo",
                })?;
                &parent_list
            }
            None => &own,
        };
        let table = collect_ns(reg, i, pid, base, from.is_some(), &ext)?;
        log::debug!(
            "collect: {} has {} mounts ({} inherited)",
            reg.namespaces[i].key,
            table.mounts.len(),
            table
                .mounts
                .iter()
                .filter(|m| m.how == mount_how::INHERITED)
                .count()
        );
        reg.mount_tables.push(table);
    }
    for (mp, _) in &ext {
        let used = reg
            .mount_tables
            .iter()
            .flat_map(|t| &t.mounts)
            .any(|m| m.how == mount_how::EXTERNAL && &m.mountpoint == mp);
        if !used {
            return Err(ObjectError::Option(format!(
                "--external mnt[{}]: no mount there in the tree's own mount namespaces",
                procfs::show(mp)
            )));
        }
    }
    Ok(())
}

/// Refuses a task's open file or file mapping that lives on a mount the
/// tree's own namespace made (not inherited): the restart opens files in
/// its own namespace before the tasks make their mounts.
pub fn check_files(reg: &Registry) -> Result<(), ObjectError> {
    use super::files::FdKind;
    use super::mm::VmaKind;
    for t in &reg.tasks {
        let Some(state) = &t.state else { continue };
        let ns = reg.nsproxies[t.nsproxy].key.mnt;
        let Some(table) = reg.mount_tables.iter().find(|m| m.ns == ns) else {
            continue;
        };
        let own: Vec<&MountInfo> = table
            .mounts
            .iter()
            .filter(|m| m.how != mount_how::INHERITED)
            .collect();
        let on_own = |path: &[u8]| {
            own.iter()
                .rev()
                .find(|m| path_under(path, &m.mountpoint).is_some())
                .map(|m| procfs::show(&m.mountpoint))
        };
        let refuse = |what: String, mp: String| {
            ObjectError::Unsupported {
            pid: t.info.pid,
            object: format!(
                "{what}, on the mount at {mp} of its own mount namespace (files of the tree's own mounts are not restored yet)"
            ),
        }
        };
        for f in &state.fds {
            if matches!(f.kind, FdKind::Regular | FdKind::Device) {
                if let Some(mp) = on_own(&f.path) {
                    return Err(refuse(
                        format!("fd {} ({})", f.fd, procfs::show(&f.path)),
                        mp,
                    ));
                }
            }
        }
        for v in &state.mm.vmas {
            if v.kind == VmaKind::File {
                if let Some(mp) = on_own(&v.path) {
                    return Err(refuse(
                        format!("the mapping of {} at {:#x}", procfs::show(&v.path), v.start),
                        mp,
                    ));
                }
            }
        }
    }
    Ok(())
}

fn collect_ns(
    reg: &Registry,
    ns_index: usize,
    pid: i32,
    own: &[MountEntry],
    own_is_tree: bool,
    ext: &[(Vec<u8>, Vec<u8>)],
) -> Result<MountTable, ObjectError> {
    let ns = &reg.namespaces[ns_index];
    let key = ns.key;
    // Mount points are shown relative to the reader's root.
    let root_link = procfs::pid_path(pid, "root");
    let root = procfs::readlink(&root_link).map_err(super::proc_err(pid, &root_link))?;
    if root != b"/" {
        return Err(ObjectError::Unsupported {
            pid,
            object: format!(
                "its root {} (a mount namespace seen from a chroot)",
                procfs::show(&root)
            ),
        });
    }
    let path = procfs::pid_path(pid, "mountinfo");
    let tree = parse_mountinfo(&procfs::read(&path).map_err(super::proc_err(pid, &path))?)
        .ok_or_else(|| ObjectError::ProcParse {
            pid,
            path: path.clone(),
            field: "mountinfo",
        })?;
    let own_groups: Vec<u32> = own.iter().filter_map(|o| o.shared).collect();
    let tree_groups: Vec<u32> = tree.iter().filter_map(|o| o.shared).collect();
    let mut group_index: HashMap<u32, u32> = HashMap::new();
    let mut group = |g: u32| -> u32 {
        let n = group_index.len() as u32 + 1;
        *group_index.entry(g).or_insert(n)
    };
    let mut used = vec![false; own.len()];
    let mut out = Vec::with_capacity(tree.len());
    for (i, m) in tree.iter().enumerate() {
        let mut rec = MountInfo {
            parent: tree
                .iter()
                .position(|p| p.id == m.parent)
                .map_or(MOUNT_NONE, |p| p as u32),
            bind_of: MOUNT_NONE,
            mnt_flags: mnt_flags_of(&m.mnt_opts),
            mountpoint: m.mountpoint.clone(),
            root: m.root.clone(),
            fstype: m.fstype.clone(),
            source: m.source.clone(),
            options: m.super_opts.clone(),
            ..MountInfo::default()
        };
        if let Some(g) = m.shared {
            rec.propagation |= mount_prop::SHARED;
            if own_groups.contains(&g) {
                rec.propagation |= mount_prop::SHARED_OUTSIDE;
            } else {
                rec.peer_group = group(g);
            }
        }
        if let Some(g) = m.master {
            rec.propagation |= mount_prop::SLAVE;
            if tree_groups.contains(&g) && !own_groups.contains(&g) {
                rec.master_group = group(g);
            } else {
                rec.propagation |= mount_prop::SLAVE_OUTSIDE;
            }
        }
        if m.unbindable {
            rec.propagation |= mount_prop::UNBINDABLE;
        }
        // An identical copy first, else one whose per-mount flags changed.
        let inherited = (0..own.len())
            .find(|&j| !used[j] && own[j].same_mount(m) && own[j].mnt_opts == m.mnt_opts)
            .or_else(|| (0..own.len()).find(|&j| !used[j] && own[j].same_mount(m)));
        // A superblock that sysfs and mqueue share per namespace shows up
        // under another source name when mounted again by type, not bound.
        let keyed_sb = matches!(m.fstype.as_slice(), b"sysfs" | b"mqueue");
        let bind_source = (0..i).rev().find(|&k| {
            tree[k].dev == m.dev
                && path_under(&m.root, &tree[k].root).is_some()
                && !(keyed_sb && tree[k].source != m.source)
        });
        if let Some((_, k)) = ext.iter().find(|(mp, _)| *mp == m.mountpoint) {
            rec.how = mount_how::EXTERNAL;
            rec.key = k.clone();
        } else if let Some(j) = inherited {
            used[j] = true;
            rec.how = mount_how::INHERITED;
            // A mount of another namespace of the tree's own gets a new
            // device at restart: matched without it then.
            rec.dev = if own_is_tree { 0 } else { m.dev };
        } else if let Some(k) = bind_source {
            rec.how = mount_how::BIND;
            rec.bind_of = k as u32;
        } else if SUPPORTED.contains(&m.fstype.as_slice()) && m.root == b"/" {
            rec.how = mount_how::NEW;
            if m.fstype == b"proc" {
                rec.pid_ns = proc_pid_ns(reg, pid, &m.mountpoint);
            }
            if m.fstype == b"tmpfs" {
                rec.files = collect_tmpfs(ns, m)?;
            }
        } else {
            let why = if SUPPORTED.contains(&m.fstype.as_slice()) {
                "a mount of part of a file system no other mount shows".to_string()
            } else {
                format!(
                    "kstate cannot recreate {} mounts (it makes proc, sysfs, tmpfs, devpts, mqueue and bind mounts)",
                    procfs::show(&m.fstype)
                )
            };
            return Err(mount_err(
                key,
                m,
                format!(
                    "{why}; mark it external with --external mnt[{}]:KEY",
                    procfs::show(&m.mountpoint)
                ),
            ));
        }
        log::debug!(
            "collect: {key} mount {} {} ({}): how {}",
            i,
            procfs::show(&m.mountpoint),
            procfs::show(&m.fstype),
            rec.how
        );
        out.push(rec);
    }
    Ok(MountTable {
        ns: ns_index,
        mounts: out,
    })
}

/// The pid namespace a proc mount shows: that of its pid 1.
fn proc_pid_ns(reg: &Registry, pid: i32, mountpoint: &[u8]) -> Option<usize> {
    let mut p = procfs::pid_path(pid, "root").into_os_string().into_vec();
    p.extend_from_slice(mountpoint);
    p.extend_from_slice(b"/1/ns/pid");
    let meta = std::fs::metadata(OsStr::from_bytes(&p)).ok()?;
    reg.find_ns(&NsKey {
        kind: NsKind::Pid,
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

use std::os::unix::ffi::OsStringExt;

/// Reads a tmpfs through a detached clone of its mount.
fn collect_tmpfs(
    ns: &crate::kstate::registry::NsObject,
    m: &MountEntry,
) -> Result<Vec<FileEntry>, ObjectError> {
    let mp = CString::new(m.mountpoint.clone())
        .map_err(|_| mount_err(ns.key, m, "a NUL in the mount point".into()))?;
    let tree =
        crate::sys::mnt::clone_mount(ns.fd.as_fd(), &mp, m.dev, crate::kstate::HELPER_TIMEOUT)
            .map_err(|e| mount_err(ns.key, m, format!("reading its files: {e}")))?;
    let base = PathBuf::from(format!("/proc/self/fd/{}", tree.as_raw_fd()));
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let mut rel = Vec::new();
    walk(&base, &mut rel, &mut out, &mut bytes).map_err(|what| mount_err(ns.key, m, what))?;
    Ok(out)
}

fn walk(
    base: &Path,
    rel: &mut Vec<u8>,
    out: &mut Vec<FileEntry>,
    bytes: &mut u64,
) -> Result<(), String> {
    let full = if rel.is_empty() {
        base.to_path_buf()
    } else {
        base.join(OsStr::from_bytes(rel))
    };
    let shown = || format!("/{}", procfs::show(rel));
    // The root is reached through the /proc/self/fd link: follow that one.
    let meta = if rel.is_empty() {
        std::fs::metadata(&full)
    } else {
        std::fs::symlink_metadata(&full)
    }
    .map_err(|e| format!("{}: {e}", shown()))?;
    if out.len() >= MAX_TMPFS_ENTRIES {
        return Err(format!("more than {MAX_TMPFS_ENTRIES} entries"));
    }
    let ty = meta.mode() & libc::S_IFMT;
    let mut e = FileEntry {
        path: rel.clone(),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        size: if ty == libc::S_IFREG { meta.size() } else { 0 },
        rdev: meta.rdev(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        ..FileEntry::default()
    };
    match ty {
        libc::S_IFREG => {
            if meta.nlink() > 1 {
                return Err(format!(
                    "{}: a file with {} hard links (not supported)",
                    shown(),
                    meta.nlink()
                ));
            }
            *bytes += meta.size();
            if *bytes > MAX_TMPFS_BYTES {
                return Err(format!(
                    "more than {} MiB of files (kstate's limit)",
                    MAX_TMPFS_BYTES >> 20
                ));
            }
            e.data = std::fs::read(&full).map_err(|err| format!("{}: {err}", shown()))?;
            e.size = e.data.len() as u64;
        }
        libc::S_IFLNK => {
            e.target = std::fs::read_link(&full)
                .map_err(|err| format!("{}: {err}", shown()))?
                .into_os_string()
                .into_vec();
        }
        libc::S_IFDIR | libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {}
        _ => return Err(format!("{}: a socket (not supported)", shown())),
    }
    out.push(e);
    if ty == libc::S_IFDIR {
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(&full)
            .map_err(|err| format!("{}: {err}", shown()))?
            .map(|d| d.map(|d| d.file_name().into_vec()))
            .collect::<Result<_, _>>()
            .map_err(|err| format!("{}: {err}", shown()))?;
        names.sort();
        for name in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&name);
            let r = walk(base, rel, out, bytes);
            rel.truncate(len);
            r?;
        }
    }
    Ok(())
}

/// Dumps every mount table: each mount after its namespace (and the pid
/// namespace a proc mount shows), each tmpfs entry after its mount, its
/// data in an extent just before it.
pub fn dump_all<W: Write>(reg: &Registry, w: &mut ImageWriter<W>) -> Result<(), ObjectError> {
    for table in &reg.mount_tables {
        let ns_ref = reg.namespaces[table.ns].image_ref;
        for (i, m) in table.mounts.iter().enumerate() {
            let len = |b: &[u8]| U32::new(b.len() as u32);
            let rec = MountRecord {
                mnt_ns: ns_ref,
                pid_ns: m.pid_ns.map_or(Ref::UNDEF, |p| reg.namespaces[p].image_ref),
                index: U32::new(i as u32),
                parent: U32::new(m.parent),
                how: U32::new(m.how),
                bind_of: U32::new(m.bind_of),
                mnt_flags: U32::new(m.mnt_flags),
                propagation: U32::new(m.propagation),
                peer_group: U32::new(m.peer_group),
                master_group: U32::new(m.master_group),
                dev: U64::new(m.dev),
                mountpoint_len: len(&m.mountpoint),
                root_len: len(&m.root),
                fstype_len: len(&m.fstype),
                source_len: len(&m.source),
                options_len: len(&m.options),
                key_len: len(&m.key),
            };
            let r = w
                .push(
                    Kind::Mount,
                    &rec,
                    &[
                        &m.mountpoint,
                        &m.root,
                        &m.fstype,
                        &m.source,
                        &m.options,
                        &m.key,
                    ],
                )
                .map_err(ObjectError::Write)?;
            for f in &m.files {
                let data = if f.data.is_empty() {
                    Ref::UNDEF
                } else {
                    w.push_extent(r, &f.data).map_err(ObjectError::Write)?
                };
                let rec = MntFileRecord {
                    mount: r,
                    data,
                    mode: U32::new(f.mode),
                    uid: U32::new(f.uid),
                    gid: U32::new(f.gid),
                    data_crc: U32::new(if f.data.is_empty() {
                        0
                    } else {
                        crc32fast::hash(&f.data)
                    }),
                    size: U64::new(f.size),
                    rdev: U64::new(f.rdev),
                    mtime_sec: I64::new(f.mtime.0),
                    mtime_nsec: I64::new(f.mtime.1),
                    path_len: U32::new(f.path.len() as u32),
                    target_len: U32::new(f.target.len() as u32),
                };
                w.push(Kind::MntFile, &rec, &[&f.path, &f.target])
                    .map_err(ObjectError::Write)?;
            }
        }
    }
    Ok(())
}

fn how_name(how: u32) -> &'static str {
    match how {
        mount_how::INHERITED => "inherited",
        mount_how::NEW => "new",
        mount_how::BIND => "bind",
        mount_how::EXTERNAL => "external",
        _ => "?",
    }
}

fn index_json(i: u32) -> Value {
    if i == MOUNT_NONE {
        Value::Null
    } else {
        json!(i)
    }
}

/// The per-mount flags as mountinfo words.
pub fn flag_words(f: u32) -> Vec<&'static str> {
    let mut v = vec![if f & mount_flags::RDONLY != 0 {
        "ro"
    } else {
        "rw"
    }];
    for (bit, name) in [
        (mount_flags::NOSUID, "nosuid"),
        (mount_flags::NODEV, "nodev"),
        (mount_flags::NOEXEC, "noexec"),
        (mount_flags::NOATIME, "noatime"),
        (mount_flags::NODIRATIME, "nodiratime"),
        (mount_flags::RELATIME, "relatime"),
        (mount_flags::NOSYMFOLLOW, "nosymfollow"),
    ] {
        if f & bit != 0 {
            v.push(name);
        }
    }
    v
}

pub fn describe_mount(v: &MountView<'_>, out: &mut Map<String, Value>) {
    let r = &v.rec;
    out.insert("mnt_ns".into(), super::namespace::ref_json(r.mnt_ns));
    out.insert("pid_ns".into(), super::namespace::ref_json(r.pid_ns));
    out.insert("index".into(), json!(r.index.get()));
    out.insert("parent".into(), index_json(r.parent.get()));
    out.insert("how".into(), json!(how_name(r.how.get())));
    out.insert("bind_of".into(), index_json(r.bind_of.get()));
    out.insert("mountpoint".into(), json!(procfs::show(v.mountpoint)));
    out.insert("root".into(), json!(procfs::show(v.root)));
    out.insert("fstype".into(), json!(procfs::show(v.fstype)));
    out.insert("source".into(), json!(procfs::show(v.source)));
    out.insert("options".into(), json!(procfs::show(v.options)));
    out.insert("flags".into(), json!(flag_words(r.mnt_flags.get())));
    let p = r.propagation.get();
    let mut prop = Vec::new();
    if p & mount_prop::SHARED != 0 {
        prop.push(if p & mount_prop::SHARED_OUTSIDE != 0 {
            "shared:outside".to_string()
        } else {
            format!("shared:{}", r.peer_group.get())
        });
    }
    if p & mount_prop::SLAVE != 0 {
        prop.push(if p & mount_prop::SLAVE_OUTSIDE != 0 {
            "master:outside".to_string()
        } else {
            format!("master:{}", r.master_group.get())
        });
    }
    if p & mount_prop::UNBINDABLE != 0 {
        prop.push("unbindable".into());
    }
    if prop.is_empty() {
        prop.push("private".into());
    }
    out.insert("propagation".into(), json!(prop));
    out.insert("dev".into(), json!(r.dev.get()));
    out.insert("key".into(), json!(procfs::show(v.key)));
}

pub fn describe_file(v: &MntFileView<'_>, out: &mut Map<String, Value>) {
    let r = &v.rec;
    out.insert("mount".into(), super::namespace::ref_json(r.mount));
    out.insert("path".into(), json!(procfs::show(v.path)));
    out.insert("mode".into(), json!(format!("{:o}", r.mode.get())));
    out.insert("uid".into(), json!(r.uid.get()));
    out.insert("gid".into(), json!(r.gid.get()));
    out.insert("size".into(), json!(r.size.get()));
    out.insert("rdev".into(), json!(r.rdev.get()));
    out.insert(
        "mtime".into(),
        json!([r.mtime_sec.get(), r.mtime_nsec.get()]),
    );
    out.insert("target".into(), json!(procfs::show(v.target)));
    out.insert("extent".into(), super::namespace::ref_json(r.data));
    out.insert("data_crc".into(), json!(r.data_crc.get()));
}

// ---------------------------------------------------------------- restart

/// The mounts of one mount namespace record, with each tmpfs's entries.
#[derive(Clone, Debug, Default)]
pub struct NsMounts<'a> {
    pub mounts: Vec<MountView<'a>>,
    /// Entries of mount `i` (by position in `mounts`).
    pub files: HashMap<usize, Vec<MntFileView<'a>>>,
}

/// Every mount namespace's mounts, by mnt_ns record id.
#[derive(Clone, Debug, Default)]
pub struct MountPlan<'a> {
    pub by_ns: HashMap<u32, NsMounts<'a>>,
    /// Extent data by record id.
    pub data: HashMap<u32, &'a [u8]>,
    /// `--external mnt[KEY]:PATH` of the restart.
    pub external: Vec<(Vec<u8>, Vec<u8>)>,
    /// kstate's cgroups, to read cgroup mounts' roots in its terms.
    pub cgroups: CgroupView,
}

/// The calling process's cgroups as /proc/self/cgroup shows them (relative
/// to its cgroup namespace's root) and the identity of that namespace.
///
/// The `root` field of a cgroup or cgroup2 mount in mountinfo is shown
/// relative to the root of the *reader's* cgroup namespace, in that
/// hierarchy (kernel `cgroup_show_path`): kstate, in the host's, reads
/// `/` for a hierarchy's root; a restorer in a cgroup namespace the tree
/// makes at restart, rooted at kstate's own cgroups (restorers are never
/// moved), reads `/..`, `/../..`, … wherever kstate's cgroup is not the
/// hierarchy's root. [`CgroupView::in_own_terms`] turns the latter back.
#[derive(Clone, Debug, Default)]
pub struct CgroupView {
    /// Device and inode of the cgroup namespace (`None`: no cgroups).
    ns: Option<(u64, u64)>,
    /// Per hierarchy: its controllers and `name=…` (none for cgroup2), and
    /// the process's cgroup in it.
    paths: Vec<(Vec<Vec<u8>>, Vec<u8>)>,
}

impl CgroupView {
    /// The calling process's (kstate's); empty without cgroups.
    pub fn own() -> CgroupView {
        let Ok(meta) = std::fs::metadata("/proc/self/ns/cgroup") else {
            return CgroupView::default();
        };
        let Ok(text) = procfs::read(Path::new("/proc/self/cgroup")) else {
            return CgroupView::default();
        };
        CgroupView {
            ns: Some((meta.dev(), meta.ino())),
            paths: parse_cgroups(&text),
        }
    }

    /// The cgroup of this view in the hierarchy mount `m` shows.
    fn path_of(&self, m: &MountEntry) -> Option<&[u8]> {
        let found = match m.fstype.as_slice() {
            b"cgroup2" => self.paths.iter().find(|(c, _)| c.is_empty()),
            b"cgroup" => {
                let opts: Vec<&[u8]> = m.super_opts.split(|&b| b == b',').collect();
                self.paths
                    .iter()
                    .find(|(c, _)| c.iter().any(|x| opts.contains(&x.as_slice())))
            }
            _ => None,
        };
        found.map(|(_, p)| p.as_slice())
    }

    /// When the calling task is in another cgroup namespace than this
    /// view's (one the tree made at restart, rooted at this view's
    /// cgroups), rewrites the roots of its cgroup mounts in `live` as this
    /// view's process would read them.
    fn in_own_terms(&self, live: &mut [MountEntry]) {
        let Some(ns) = self.ns else { return };
        match std::fs::metadata("/proc/self/ns/cgroup") {
            Ok(m) if (m.dev(), m.ino()) != ns => {}
            _ => return,
        }
        for l in live.iter_mut() {
            if let Some(base) = self.path_of(l) {
                let root = cgroup_join(base, &l.root);
                log::debug!(
                    "restore: cgroup mount {} root {} read as {}",
                    procfs::show(&l.mountpoint),
                    procfs::show(&l.root),
                    procfs::show(&root)
                );
                l.root = root;
            }
        }
    }
}

/// Parses /proc/PID/cgroup (`ID:CONTROLLERS:PATH` lines); a malformed line
/// is skipped (its hierarchy is then matched as read).
fn parse_cgroups(text: &[u8]) -> Vec<(Vec<Vec<u8>>, Vec<u8>)> {
    text.split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut w = line.splitn(3, |&b| b == b':');
            let (_, ctl, path) = (w.next()?, w.next()?, w.next()?);
            let ctl = ctl
                .split(|&b| b == b',')
                .filter(|c| !c.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            Some((ctl, path.to_vec()))
        })
        .collect()
}

/// `rel`, a path from a cgroup `base` (`/a/b`, `/../c`, …), as a path from
/// where `base` is from: `..` taken lexically, kept where it goes above.
fn cgroup_join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in base.split(|&b| b == b'/').chain(rel.split(|&b| b == b'/')) {
        match c {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|p| *p != b"..") => {
                parts.pop();
            }
            _ => parts.push(c),
        }
    }
    let mut out = Vec::new();
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Gathers the mount records of an image (already validated) and checks
/// what only a whole view shows: indexes in order, files only in tmpfs.
pub fn plan<'a>(img: &Image<'a>, external: &[String]) -> Result<MountPlan<'a>, String> {
    let mut p = MountPlan {
        external: external
            .iter()
            .map(|s| parse_external(s))
            .collect::<Result<_, _>>()?,
        cgroups: CgroupView::own(),
        ..MountPlan::default()
    };
    let mut mount_at: HashMap<u32, (u32, usize)> = HashMap::new();
    use crate::image::Kind;
    let mounts = |k: Kind| matches!(k, Kind::Mount | Kind::MntFile | Kind::Extent);
    for (id, obj) in img.objects_of(mounts) {
        match obj.map_err(|e| format!("image: {e}"))? {
            Object::Mount(m) => {
                let ns = m.rec.mnt_ns.id.get();
                let e = p.by_ns.entry(ns).or_default();
                if m.rec.index.get() as usize != e.mounts.len() {
                    return Err(format!(
                        "image: mount record {id} has index {}, not {}",
                        m.rec.index.get(),
                        e.mounts.len()
                    ));
                }
                mount_at.insert(id, (ns, e.mounts.len()));
                e.mounts.push(m);
            }
            Object::MntFile(f) => {
                let Some(&(ns, i)) = mount_at.get(&f.rec.mount.id.get()) else {
                    return Err(format!("image: tmpfs entry {id} of an unknown mount"));
                };
                let e = p.by_ns.entry(ns).or_default();
                let m = &e.mounts[i];
                if m.rec.how.get() != mount_how::NEW || m.fstype != b"tmpfs" {
                    return Err(format!(
                        "image: file record {id} belongs to {} which is not a new tmpfs",
                        procfs::show(m.mountpoint)
                    ));
                }
                // Each path once, and none below a link of the same tmpfs
                // (writing through a link would leave the mount).
                let list = e.files.entry(i).or_default();
                let bad = list.iter().any(|g| {
                    g.path == f.path
                        || (g.rec.mode.get() & libc::S_IFMT == libc::S_IFLNK
                            && path_under(f.path, g.path).is_some())
                });
                if bad || (list.is_empty() != f.path.is_empty()) {
                    return Err(format!(
                        "image: tmpfs entry {id} ({}) repeats a path, lies below a link, or the mount's root is not first",
                        procfs::show(f.path)
                    ));
                }
                list.push(f);
            }
            Object::Extent(x) if img.kind_of(x.rec.owner.id.get()) == Some(Kind::Mount) => {
                p.data.insert(id, x.data);
            }
            _ => {}
        }
    }
    Ok(p)
}

/// Each mount's pid namespace must be the one of the task that makes the
/// mount namespace (`maker_pid_ns`, a pid_ns record id): refused otherwise.
pub fn check_maker(
    plan: &MountPlan<'_>,
    ns: u32,
    maker_pid_ns: u32,
    pid: i32,
) -> Result<(), String> {
    let Some(e) = plan.by_ns.get(&ns) else {
        return Ok(());
    };
    for m in &e.mounts {
        if let Some(p) = m.rec.pid_ns.id() {
            if m.rec.how.get() == mount_how::NEW && p != maker_pid_ns {
                return Err(format!(
                    "task {pid}: the proc mount at {} shows a pid namespace other than that of the task that makes the mount namespace: not supported",
                    procfs::show(m.mountpoint)
                ));
            }
        }
        if m.rec.how.get() == mount_how::EXTERNAL && !plan.external.iter().any(|(k, _)| k == m.key)
        {
            return Err(format!(
                "the mount at {} was external at checkpoint (key {}): give --external mnt[{}]:PATH",
                procfs::show(m.mountpoint),
                procfs::show(m.key),
                procfs::show(m.key)
            ));
        }
    }
    Ok(())
}

fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

use nix::mount::{mount, umount2, MntFlags, MsFlags};

fn ms(bits: u32) -> MsFlags {
    MsFlags::from_bits_truncate(bits as libc::c_ulong)
}

/// Per-mount flags for mount(2): the recorded ones, strictatime when no
/// atime flag is set.
fn mount_ms(flags: u32) -> MsFlags {
    let mut f = ms(flags);
    if flags & (mount_flags::NOATIME | mount_flags::RELATIME) == 0 {
        f |= MsFlags::MS_STRICTATIME;
    }
    f
}

/// Makes the mounts of mount namespace record `ns` in the calling task's
/// (new) mount namespace. Runs in the restorer task; returns a message
/// naming the mount on failure.
pub fn restore(plan: &MountPlan<'_>, ns: u32) -> Result<(), String> {
    prepare_inherited(plan, ns)?;
    restore_own(plan, ns)
}

/// The first half of [`restore`]: the mounts the calling thread's new
/// mount namespace inherited (a copy of kstate's) brought to the recorded
/// ones: their propagation and flags set, the others taken away. Needs
/// nothing of the task's other namespaces (it reads the thread's own
/// mountinfo; cgroup roots are read as kstate reads them when the thread
/// is in kstate's cgroup namespace), so a thread of kstate may do it
/// beside the root's creation (`kstate::restart`, `mnt_thread`).
pub fn prepare_inherited(plan: &MountPlan<'_>, ns: u32) -> Result<(), String> {
    let Some(e) = plan.by_ns.get(&ns) else {
        return Ok(());
    };
    let text = procfs::read(Path::new("/proc/thread-self/mountinfo"))
        .map_err(|e| format!("mountinfo: {e}"))?;
    let mut live = parse_mountinfo(&text).ok_or("mountinfo: cannot parse it")?;
    // Roots of cgroup mounts as kstate reads them, as the image has them.
    plan.cgroups.in_own_terms(&mut live);
    // Match the inherited mounts with the copy of kstate's namespace:
    // `matched[j]` is the record live mount j is.
    let mut matched: Vec<Option<usize>> = vec![None; live.len()];
    for (i, m) in e.mounts.iter().enumerate() {
        if m.rec.how.get() != mount_how::INHERITED {
            continue;
        }
        let found = (0..live.len()).find(|&j| {
            let l = &live[j];
            matched[j].is_none()
                && (m.rec.dev.get() == 0 || l.dev == m.rec.dev.get())
                && l.mountpoint == m.mountpoint
                && l.root == m.root
                && l.fstype == m.fstype
                && l.source == m.source
                && l.super_opts == m.options
        });
        match found {
            Some(j) => matched[j] = Some(i),
            None => {
                return Err(format!(
                    "mount {} ({}, source {}) was inherited at checkpoint, but the restarting process's mount namespace has no such mount",
                    procfs::show(m.mountpoint),
                    procfs::show(m.fstype),
                    procfs::show(m.source)
                ))
            }
        }
    }
    // The inherited mounts' propagation first: one that was private is made
    // private before anything is made or taken away below it, so that
    // nothing of that reaches the restarting process's namespace.
    let mut groups: Vec<u32> = Vec::new();
    for (j, l) in live.iter().enumerate() {
        let Some(i) = matched[j] else { continue };
        let m = &e.mounts[i];
        let p = m.rec.propagation.get();
        let shared_now = l.shared.is_some();
        let unchanged = p == (mount_prop::SHARED | mount_prop::SHARED_OUTSIDE) && shared_now
            || p == 0 && !shared_now && l.master.is_none() && !l.unbindable;
        if !unchanged {
            propagation(m, &mut groups)?;
        }
    }
    // Per-mount flags the namespace changed on an inherited mount.
    for (j, l) in live.iter().enumerate() {
        let Some(i) = matched[j] else { continue };
        let m = &e.mounts[i];
        let flags = m.rec.mnt_flags.get();
        if mnt_flags_of(&l.mnt_opts) != flags {
            remount_bind(os(m.mountpoint), flags).map_err(|err| {
                format!(
                    "mount {} ({}): setting its flags {}: {err}",
                    procfs::show(m.mountpoint),
                    procfs::show(m.fstype),
                    flag_words(flags).join(",")
                )
            })?;
        }
    }
    // Mounts of kstate's namespace that the recorded one did not have,
    // deepest first; never one below a mount still shared with kstate's
    // namespace (the umount would propagate there). A mount whose parent
    // goes too is left to the parent's lazy umount, which detaches the
    // whole subtree at once (one umount, and one wait for the namespace
    // lock's grace period, per subtree instead of per mount).
    let gone: std::collections::HashSet<u32> = (0..live.len())
        .filter(|&j| matched[j].is_none())
        .map(|j| live[j].id)
        .collect();
    // When the root is the one mount kept, and private in the image, the
    // others go at once: everything is made private (nothing else is
    // kept), the root alone is cloned and made the root, and the old one
    // goes with all its mounts by one lazy umount (`keep_only_root`): one
    // wait for the namespace lock's grace period instead of one per
    // subtree (the container case: / and mounts of the tree's own).
    let root_only = (0..live.len()).all(|j| match matched[j] {
        Some(i) => live[j].mountpoint == b"/" && e.mounts[i].rec.propagation.get() == 0,
        None => true,
    });
    let at_once = root_only && gone.len() > 1;
    if at_once {
        crate::sys::mnt::keep_only_root()
            .map_err(|(step, err)| format!("keeping only the root mount: {step}: {err}"))?;
        log::debug!(
            "restore: mount namespace #{ns}: {} mounts taken away with the old root",
            gone.len()
        );
    }
    for j in (0..live.len())
        .rev()
        .filter(|&j| !at_once && matched[j].is_none())
    {
        let l = &live[j];
        if l.parent != l.id && gone.contains(&l.parent) {
            continue;
        }
        let parent_shared_outside = live.iter().enumerate().any(|(k, p)| {
            p.id == l.parent
                && p.shared.is_some()
                && matched[k].is_some_and(|i| {
                    e.mounts[i].rec.propagation.get() & mount_prop::SHARED_OUTSIDE != 0
                })
        });
        if parent_shared_outside {
            return Err(format!(
                "{} ({}) is not in the image, but taking it away would propagate to the restarting process's mount namespace (its parent is shared with it)",
                procfs::show(&l.mountpoint),
                procfs::show(&l.fstype)
            ));
        }
        // The path names the topmost mount on it: the mounts stacked on
        // this one at the same place (gone too, as their parent goes) are
        // taken away first, one umount each, then this one.
        let mut stacked = 0;
        let mut top = l.id;
        while let Some(m) = live
            .iter()
            .find(|m| m.parent == top && m.id != top && m.mountpoint == l.mountpoint)
        {
            stacked += 1;
            top = m.id;
        }
        // Only the topmost can be made private through the path: one below
        // it still shared with kstate's namespace would carry the umount
        // of the one on it there too.
        if stacked > 0 && l.shared.is_some() {
            return Err(format!(
                "{} ({}) is not in the image, but another mount is stacked on it and it is shared with the restarting process's mount namespace: taking them away would take them away there too (make them private there, or restart from another mount namespace)",
                procfs::show(&l.mountpoint),
                procfs::show(&l.fstype)
            ));
        }
        for _ in 0..=stacked {
            // Each subtree made private first (in this namespace only):
            // the lazy umount takes the mounts below it too, and one whose
            // parent is shared would be taken away from that parent's
            // peers as well, in the namespace this one was copied from.
            let err = |what: &str, err: nix::Error| {
                format!(
                    "taking away {} ({}), not in the image: {what}{err}",
                    procfs::show(&l.mountpoint),
                    procfs::show(&l.fstype)
                )
            };
            mount(
                None::<&Path>,
                os(&l.mountpoint),
                None::<&Path>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&Path>,
            )
            .map_err(|e| err("making it private: ", e))?;
            umount2(os(&l.mountpoint), MntFlags::MNT_DETACH).map_err(|e| err("", e))?;
        }
    }
    Ok(())
}

/// The second half of [`restore`]: the mounts of the tree's own, in their
/// recorded order, made by the task that creates the namespace (so that a
/// proc shows its pid namespace), once the inherited ones are as recorded.
pub fn restore_own(plan: &MountPlan<'_>, ns: u32) -> Result<(), String> {
    let Some(e) = plan.by_ns.get(&ns) else {
        return Ok(());
    };
    // The peer groups the inherited mounts made (`prepare_inherited`): one
    // shared in the image but not with kstate's namespace was made the
    // first of its group, which a mount bound from it joins.
    let mut groups: Vec<u32> = Vec::new();
    for m in e.mounts.iter() {
        let p = m.rec.propagation.get();
        if m.rec.how.get() == mount_how::INHERITED
            && p & mount_prop::SHARED != 0
            && p & (mount_prop::SHARED_OUTSIDE | mount_prop::UNBINDABLE) == 0
            && !groups.contains(&m.rec.peer_group.get())
        {
            groups.push(m.rec.peer_group.get());
        }
    }
    for (i, m) in e.mounts.iter().enumerate() {
        let how = m.rec.how.get();
        if how == mount_how::INHERITED {
            continue;
        }
        let named = |what: &str, err: &dyn std::fmt::Display| {
            format!(
                "mount {} ({}, source {}): {what}: {err}",
                procfs::show(m.mountpoint),
                procfs::show(m.fstype),
                procfs::show(m.source)
            )
        };
        let target = os(m.mountpoint);
        let flags = m.rec.mnt_flags.get();
        match how {
            mount_how::NEW => {
                let tmpfs = m.fstype == b"tmpfs";
                let (mut f, opts) = (mount_ms(flags), m.options.to_vec());
                // A tmpfs is filled before it is made read-only.
                let sb_ro = opts.split(|&b| b == b',').any(|o| o == b"ro");
                let opts = if tmpfs && sb_ro {
                    f.remove(MsFlags::MS_RDONLY);
                    replace_ro(&opts)
                } else {
                    opts
                };
                if tmpfs {
                    f.remove(MsFlags::MS_RDONLY);
                }
                mount(
                    Some(os(m.source)),
                    target,
                    Some(os(m.fstype)),
                    f,
                    Some(os(&opts)),
                )
                .map_err(|err| named("mount", &err))?;
                if tmpfs {
                    let files = e.files.get(&i).map_or(&[][..], |v| v.as_slice());
                    fill_tmpfs(plan, target, files).map_err(|err| named("its files", &err))?;
                    if sb_ro {
                        mount(
                            None::<&Path>,
                            target,
                            None::<&Path>,
                            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | mount_ms(flags),
                            Some(os(m.options)),
                        )
                        .map_err(|err| named("remount read-only", &err))?;
                    }
                    if flags & mount_flags::RDONLY != 0 {
                        remount_bind(target, flags).map_err(|err| named("remount", &err))?;
                    }
                }
            }
            mount_how::BIND | mount_how::EXTERNAL => {
                let source: PathBuf = if how == mount_how::EXTERNAL {
                    let (_, path) = plan
                        .external
                        .iter()
                        .find(|(k, _)| k == m.key)
                        .ok_or_else(|| named("external", &"no --external mnt[KEY]:PATH for it"))?;
                    os(path).to_path_buf()
                } else {
                    let from = e
                        .mounts
                        .get(m.rec.bind_of.get() as usize)
                        .ok_or_else(|| named("bind", &"no such source mount"))?;
                    let rest = path_under(m.root, from.root)
                        .ok_or_else(|| named("bind", &"its root is not under the source's"))?;
                    let mut p = from.mountpoint.to_vec();
                    if !rest.is_empty() {
                        if p.last() != Some(&b'/') {
                            p.push(b'/');
                        }
                        p.extend_from_slice(rest);
                    }
                    PathBuf::from(OsStr::from_bytes(&p))
                };
                mount(
                    Some(&source),
                    target,
                    None::<&Path>,
                    MsFlags::MS_BIND,
                    None::<&Path>,
                )
                .map_err(|err| named(&format!("bind from {}", source.display()), &err))?;
                remount_bind(target, flags).map_err(|err| named("remount", &err))?;
            }
            _ => return Err(named("restore", &"unknown kind of mount")),
        }
        propagation(m, &mut groups)?;
        log::debug!(
            "restore: mount {} {} ({}) made",
            i,
            procfs::show(m.mountpoint),
            procfs::show(m.fstype)
        );
    }
    Ok(())
}

/// Superblock options with `ro` turned into `rw`.
fn replace_ro(opts: &[u8]) -> Vec<u8> {
    let parts: Vec<&[u8]> = opts
        .split(|&b| b == b',')
        .map(|o| if o == b"ro" { &b"rw"[..] } else { o })
        .collect();
    parts.join(&b","[..])
}

fn remount_bind(target: &Path, flags: u32) -> nix::Result<()> {
    mount(
        None::<&Path>,
        target,
        None::<&Path>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | mount_ms(flags),
        None::<&Path>,
    )
}

/// Sets a mount's propagation as recorded. `groups` holds the namespace's
/// own peer groups made so far: a mount of one of them got it by being
/// bound from a member, the first of a group makes it.
fn propagation(m: &MountView<'_>, groups: &mut Vec<u32>) -> Result<(), String> {
    let p = m.rec.propagation.get();
    let target = os(m.mountpoint);
    let set = |f: MsFlags, what: &str| {
        mount(None::<&Path>, target, None::<&Path>, f, None::<&Path>).map_err(|err| {
            format!(
                "mount {} ({}): making it {what}: {err}",
                procfs::show(m.mountpoint),
                procfs::show(m.fstype)
            )
        })
    };
    if p & mount_prop::UNBINDABLE != 0 {
        return set(MsFlags::MS_UNBINDABLE, "unbindable");
    }
    let slave = p & mount_prop::SLAVE != 0;
    if slave {
        set(MsFlags::MS_SLAVE, "a slave")?;
    }
    if p & mount_prop::SHARED != 0 {
        if p & mount_prop::SHARED_OUTSIDE != 0 {
            return Ok(());
        }
        let g = m.rec.peer_group.get();
        if !groups.contains(&g) {
            if !slave {
                set(MsFlags::MS_PRIVATE, "private")?;
            }
            set(MsFlags::MS_SHARED, "shared")?;
            groups.push(g);
        }
    } else if !slave {
        set(MsFlags::MS_PRIVATE, "private")?;
    }
    Ok(())
}

/// Writes a tmpfs's recorded entries under `root` (parents come first);
/// directory times last, once nothing more is made in them.
fn fill_tmpfs(plan: &MountPlan<'_>, root: &Path, files: &[MntFileView<'_>]) -> Result<(), String> {
    use std::os::unix::fs::{lchown, symlink};
    let path_of = |f: &MntFileView<'_>| {
        if f.path.is_empty() {
            root.to_path_buf()
        } else {
            root.join(os(f.path))
        }
    };
    for f in files {
        let r = &f.rec;
        let p = path_of(f);
        let shown = || format!("/{}", procfs::show(f.path));
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", shown());
        let ty = r.mode.get() & libc::S_IFMT;
        let perm = std::fs::Permissions::from_mode(r.mode.get() & 0o7777);
        match ty {
            libc::S_IFDIR => {
                if !f.path.is_empty() {
                    std::fs::create_dir(&p).map_err(|e| err("mkdir", &e))?;
                }
            }
            libc::S_IFREG => {
                let data = match r.data.id() {
                    Some(id) => *plan.data.get(&id).ok_or_else(|| err("data", &"missing"))?,
                    None => &[],
                };
                std::fs::write(&p, data).map_err(|e| err("write", &e))?;
            }
            libc::S_IFLNK => {
                symlink(os(f.target), &p).map_err(|e| err("symlink", &e))?;
            }
            _ => {
                let kind = nix::sys::stat::SFlag::from_bits_truncate(ty);
                nix::sys::stat::mknod(
                    &p,
                    kind,
                    nix::sys::stat::Mode::empty(),
                    r.rdev.get() as libc::dev_t,
                )
                .map_err(|e| err("mknod", &e))?;
            }
        }
        lchown(&p, Some(r.uid.get()), Some(r.gid.get())).map_err(|e| err("chown", &e))?;
        if ty != libc::S_IFLNK {
            std::fs::set_permissions(&p, perm).map_err(|e| err("chmod", &e))?;
        }
        if ty != libc::S_IFDIR {
            set_mtime(&p, r)?;
        }
    }
    for f in files.iter().rev() {
        if f.rec.mode.get() & libc::S_IFMT == libc::S_IFDIR {
            set_mtime(&path_of(f), &f.rec)?;
        }
    }
    Ok(())
}

fn set_mtime(p: &Path, r: &MntFileRecord) -> Result<(), String> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let mtime = TimeSpec::new(r.mtime_sec.get(), r.mtime_nsec.get());
    let atime = TimeSpec::UTIME_OMIT;
    utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| format!("{}: setting its time: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_with_escapes_and_tags() {
        let text = b"36 35 98:0 /mnt\\0401 /mnt/a\\040b rw,nosuid master:1 shared:7 - ext3 /dev/root rw,errors=continue\n\
37 36 0:5 / /x ro unbindable - tmpfs a\\134b\n";
        let v = parse_mountinfo(text).expect("parses");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].id, 36);
        assert_eq!(v[0].parent, 35);
        assert_eq!(v[0].dev, libc::makedev(98, 0));
        assert_eq!(v[0].root, b"/mnt 1");
        assert_eq!(v[0].mountpoint, b"/mnt/a b");
        assert_eq!((v[0].shared, v[0].master), (Some(7), Some(1)));
        assert_eq!(v[0].fstype, b"ext3");
        assert_eq!(v[0].super_opts, b"rw,errors=continue");
        assert_eq!(mnt_flags_of(&v[0].mnt_opts), mount_flags::NOSUID);
        assert!(v[1].unbindable);
        assert_eq!(v[1].source, b"a\\b");
        assert_eq!(mnt_flags_of(&v[1].mnt_opts), mount_flags::RDONLY);
        assert!(
            parse_mountinfo(b"36 35 98:0 / /\n").is_none(),
            "no separator"
        );
    }

    #[test]
    fn external_specs_and_paths() {
        assert_eq!(
            parse_external("mnt[/a b]:key").unwrap(),
            (b"/a b".to_vec(), b"key".to_vec())
        );
        assert!(parse_external("mnt[]:k").is_err());
        assert!(parse_external("dev[/x]:k").is_err());
        assert_eq!(path_under(b"/a/b/c", b"/a"), Some(&b"b/c"[..]));
        assert_eq!(path_under(b"/a", b"/a"), Some(&b""[..]));
        assert_eq!(path_under(b"/ab", b"/a"), None);
        assert_eq!(path_under(b"/x", b"/"), Some(&b"x"[..]));
        assert_eq!(replace_ro(b"ro,size=4k"), b"rw,size=4k");
    }

    #[test]
    fn cgroup_roots_in_the_readers_terms() {
        assert_eq!(cgroup_join(b"/a/b", b"/../.."), b"/");
        assert_eq!(cgroup_join(b"/a/b", b"/"), b"/a/b");
        assert_eq!(cgroup_join(b"/a/b", b"/../c"), b"/a/c");
        assert_eq!(cgroup_join(b"/", b"/.."), b"/..");
        assert_eq!(cgroup_join(b"/..", b"/../x"), b"/../../x");
        let view = CgroupView {
            ns: Some((1, 2)),
            paths: parse_cgroups(b"4:memory:/p/q\n2:cpu,cpuacct:/\n9:name=systemd:/s\n0::/u:v\n"),
        };
        let m = |fstype: &[u8], opts: &[u8]| MountEntry {
            fstype: fstype.to_vec(),
            super_opts: opts.to_vec(),
            ..MountEntry::default()
        };
        assert_eq!(
            view.path_of(&m(b"cgroup", b"rw,memory")),
            Some(&b"/p/q"[..])
        );
        assert_eq!(view.path_of(&m(b"cgroup", b"rw,cpuacct")), Some(&b"/"[..]));
        assert_eq!(
            view.path_of(&m(b"cgroup", b"rw,name=systemd")),
            Some(&b"/s"[..])
        );
        assert_eq!(view.path_of(&m(b"cgroup2", b"rw")), Some(&b"/u:v"[..]));
        assert_eq!(view.path_of(&m(b"cgroup", b"rw,pids")), None);
        assert_eq!(view.path_of(&m(b"tmpfs", b"rw")), None);
    }
}
