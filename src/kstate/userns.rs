//! Restart of the tree's own user namespaces.
//!
//! A user namespace of the tree's own is made by the first task that uses
//! it, with CLONE_NEWUSER in the clone3 that creates the task, together with
//! the other namespaces that task makes (which the kernel then gives to the
//! new user namespace as their owner, as they had at checkpoint). The
//! creator (kstate for the root, the parent's restorer otherwise), still in
//! the parent user namespace with its capabilities, writes setgroups,
//! uid_map and gid_map (lower ids in the parent's terms, as recorded) before
//! the new task does anything: the child tells its creator the pid under
//! which the creator's /proc shows it, and waits for the creator's word.
//!
//! The restorer keeps kstate's credentials (global root ids, with every
//! capability in its own user namespace) until the core restore sets the
//! saved ones. Those are recorded as the checkpointer saw them (in its own
//! user namespace, /proc/PID/status), so they are translated into the
//! task's namespace through the recorded maps ([`NsCreds`]).
//!
//! Nested user namespaces: a restorer that makes one first takes uid and
//! gid 0 of its own namespace (a new namespace's owner must be mapped in its
//! parent). clone3's set_tid needs CAP_CHECKPOINT_RESTORE over the owner of
//! every pid namespace whose pid it sets, and a restorer has capabilities
//! only in its user namespace and below: pids in pid namespaces owned by a
//! user namespace above the creator's are left to the kernel's cursor
//! (set_tid cut to the inner levels), and the task checks it got the
//! recorded ones ([`check_pids`]).
//!
//! Refused before anything is made: a namespace made by a task but owned by
//! another user namespace than the task's, a user namespace shared by two
//! branches, a pid the creator may choose inside one it may not.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use zerocopy::little_endian::U32;

use super::restart::{NsPlan, RestartError, TaskPlan};
use crate::image::format::{IdExtent, Setgroups, TaskCoreRecord};
use crate::image::reader::{Object, TaskCoreView, UserNsView};
use crate::image::Image;
use crate::sys;

/// Slots of an nsproxy's ten namespace ids (see `restart::nsproxy_ids`).
const USER: usize = 0;
const PID: usize = 4;
const TIME: usize = 8;
const TFC: usize = 9;

/// A user namespace a task creates at restart.
#[derive(Clone, Debug)]
pub struct UserPlan {
    /// Its record id (for messages and to find it made twice).
    pub id: u32,
    pub uid_map: Vec<[u32; 3]>,
    pub gid_map: Vec<[u32; 3]>,
    pub setgroups: Setgroups,
    /// For a namespace that denies setgroups: the supplementary groups the
    /// task must be born with (nobody can set them later), in the creator's
    /// terms; the creator takes them on itself around the clone.
    pub groups: Option<Vec<u32>>,
    /// Its parent is a user namespace of the tree's own: the creator is a
    /// restorer whose ids (kstate's) may not be mapped there.
    pub nested: bool,
}

/// A task's ids in its own user namespace's terms (-1, "unchanged", where
/// the id is not mapped there but is already the restorer's own).
#[derive(Clone, Debug, Default)]
pub struct NsCreds {
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<U32>,
}

fn fmt_err(e: crate::image::FormatError) -> RestartError {
    RestartError::Unsupported(format!("image: {e}"))
}

fn user_ns<'a>(img: &Image<'a>, id: u32) -> Result<UserNsView<'a>, RestartError> {
    match img.object(id).map_err(fmt_err)? {
        Object::UserNs(v) => Ok(v),
        _ => Err(RestartError::Unsupported(format!(
            "image: record {id} is not a user namespace"
        ))),
    }
}

fn is_external(img: &Image<'_>, id: u32) -> Result<bool, RestartError> {
    Ok(img
        .object(id)
        .map_err(fmt_err)?
        .ns_common()
        .is_some_and(|c| c.is_external()))
}

fn owner_of(img: &Image<'_>, id: u32) -> Result<u32, RestartError> {
    Ok(img
        .object(id)
        .map_err(fmt_err)?
        .ns_common()
        .map_or(0, |c| c.owner.id.get()))
}

fn to_vec(map: &[IdExtent]) -> Vec<[u32; 3]> {
    map.iter()
        .map(|e| [e.first.get(), e.lower_first.get(), e.count.get()])
        .collect()
}

/// `id` (in the parent's terms) as the namespace of `map` sees it.
fn map_up(map: &[IdExtent], id: u32) -> Option<u32> {
    map.iter().find_map(|e| {
        let (first, lower, count) = (e.first.get(), e.lower_first.get(), e.count.get());
        (id >= lower && id - lower < count)
            .then(|| first.checked_add(id - lower))
            .flatten()
    })
}

/// An id as the checkpointer saw it, in the terms of user namespace `ns`
/// (None when it is not mapped there). The chain of maps goes up to the
/// checkpointer's own namespace (level 0), which must be external.
fn id_in_ns(img: &Image<'_>, ns: u32, id: u32, gid: bool) -> Result<Option<u32>, RestartError> {
    let mut chain = Vec::new();
    let mut cur = ns;
    loop {
        let v = user_ns(img, cur)?;
        if v.rec.common.is_external() {
            if v.rec.level.get() != 0 {
                return Err(RestartError::Unsupported(format!(
                    "user namespace record {ns} sits below an outside user namespace of level {}, \
                     whose maps are not recorded: its ids cannot be translated",
                    v.rec.level.get()
                )));
            }
            break;
        }
        chain.push(v);
        cur = v.rec.common.owner.id.get();
    }
    let mut id = Some(id);
    for v in chain.iter().rev() {
        let map = if gid { v.gid_map } else { v.uid_map };
        id = id.and_then(|i| map_up(map, i));
    }
    Ok(id)
}

/// Is user namespace `ns` `anc` or one of its descendants?
fn descends(img: &Image<'_>, mut ns: u32, anc: u32) -> Result<bool, RestartError> {
    while ns != 0 {
        if ns == anc {
            return Ok(true);
        }
        ns = owner_of(img, ns)?;
    }
    Ok(false)
}

/// Plans task `i`'s user namespace (called by `plan_namespaces`, parents
/// first): inherited, the restarting process's, or new (CLONE_NEWUSER, with
/// its maps); and the task's ids in that namespace's terms.
pub fn plan_user(
    img: &Image<'_>,
    ids: &[[u32; 10]],
    tasks: &[TaskPlan<'_>],
    i: usize,
    ns: &mut NsPlan,
) -> Result<(), RestartError> {
    let pid = tasks[i].pid;
    let refuse = |what: String| RestartError::Unsupported(format!("task {pid}: {what}"));
    let me = ids[i][USER];
    let parent = tasks[i].parent;
    let parent_user = parent.map(|p| ids[p][USER]);
    if is_external(img, me)? {
        if parent_user.is_some_and(|p| p != me) {
            return Err(refuse(
                "it left its parent's user namespace for an outside one".into(),
            ));
        }
        return Ok(());
    }
    let view = user_ns(img, me)?;
    let core = tasks[i]
        .core
        .as_ref()
        .ok_or_else(|| refuse("no core".into()))?;
    if parent_user != Some(me) {
        let owner = view.rec.common.owner.id.get();
        let from_creator = match parent_user {
            Some(p) => p == owner,
            None => is_external(img, owner)? && user_ns(img, owner)?.rec.level.get() == 0,
        };
        if !from_creator {
            return Err(refuse(format!(
                "its user namespace (record {me}) is neither its parent's nor a child of it"
            )));
        }
        if tasks[..i]
            .iter()
            .any(|t| t.ns.user.as_ref().is_some_and(|u| u.id == me))
        {
            return Err(refuse(format!(
                "its user namespace (record {me}) is shared with a task of another branch: \
                 not supported yet"
            )));
        }
        let setgroups = Setgroups::from_raw(view.rec.setgroups.get()).unwrap_or(Setgroups::Unknown);
        let image_groups: Vec<u32> = core.groups.iter().map(|g| g.get()).collect();
        let groups = if setgroups != Setgroups::Deny {
            None
        } else if let Some(p) = parent {
            // A restorer takes the groups on itself, if its own namespace
            // lets it; otherwise they must be the ones it has already.
            let pcore = tasks[p]
                .core
                .as_ref()
                .ok_or_else(|| refuse("no core".into()))?;
            let same = pcore
                .groups
                .iter()
                .map(|g| g.get())
                .eq(image_groups.iter().copied());
            let parent_denies = !is_external(img, owner)?
                && user_ns(img, owner)?.rec.setgroups.get() == Setgroups::Deny as u32;
            if same {
                None
            } else if parent_denies {
                return Err(refuse(format!(
                    "its user namespace (record {me}) denies setgroups and its groups \
                     {image_groups:?} are not its parent's, whose namespace denies it too"
                )));
            } else {
                let mut out = Vec::new();
                for g in &image_groups {
                    out.push(id_in_ns(img, owner, *g, true)?.ok_or_else(|| {
                        refuse(format!(
                            "group {g} is not mapped in its parent's user namespace"
                        ))
                    })?);
                }
                Some(out)
            }
        } else {
            Some(image_groups)
        };
        ns.clone_flags |= libc::CLONE_NEWUSER as u64;
        ns.user = Some(UserPlan {
            id: me,
            uid_map: to_vec(view.uid_map),
            gid_map: to_vec(view.gid_map),
            setgroups,
            groups,
            nested: !is_external(img, owner)?,
        });
    }
    // Its ids in its namespace's terms. An id the namespace does not map
    // can only be the restorer's own (kstate's), left unchanged.
    let (ruid, euid, suid) = nix::unistd::getresuid()
        .map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()))
        .unwrap_or((0, 0, 0));
    let (rgid, egid, sgid) = nix::unistd::getresgid()
        .map(|r| (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()))
        .unwrap_or((0, 0, 0));
    let mine_u = [ruid, euid, suid, euid];
    let mine_g = [rgid, egid, sgid, egid];
    let mut creds = NsCreds::default();
    for (k, (&u, &g)) in core.rec.uids.iter().zip(core.rec.gids.iter()).enumerate() {
        let (u, g) = (u.get(), g.get());
        creds.uids[k] = match id_in_ns(img, me, u, false)? {
            Some(v) => v,
            None if u == mine_u[k] => u32::MAX,
            None => {
                return Err(refuse(format!(
                    "uid {u} is not mapped in its user namespace (record {me})"
                )))
            }
        };
        creds.gids[k] = match id_in_ns(img, me, g, true)? {
            Some(v) => v,
            None if g == mine_g[k] => u32::MAX,
            None => {
                return Err(refuse(format!(
                    "gid {g} is not mapped in its user namespace (record {me})"
                )))
            }
        };
    }
    for g in core.groups {
        let inside = id_in_ns(img, me, g.get(), true)?;
        // In a namespace that denies setgroups the groups are inherited,
        // never set: an unmapped one is then fine.
        creds.groups.push(U32::new(inside.unwrap_or(u32::MAX)));
        if inside.is_none() && view.rec.setgroups.get() != Setgroups::Deny as u32 {
            return Err(refuse(format!(
                "group {} is not mapped in its user namespace (record {me})",
                g.get()
            )));
        }
    }
    ns.creds = Some(creds);
    Ok(())
}

/// Checks, once the task's namespaces are planned, what clone3 can give:
/// every namespace it makes must be owned by its own user namespace (the
/// kernel gives a new namespace its creator's), and every pid chosen with
/// set_tid must be in a pid namespace whose owner is the creator's user
/// namespace or below it (clone3 needs CAP_CHECKPOINT_RESTORE there, and
/// the creator has its capabilities only in its own user namespace).
pub fn check(
    img: &Image<'_>,
    ids: &[[u32; 10]],
    tasks: &[TaskPlan<'_>],
    i: usize,
    ns: &mut NsPlan,
) -> Result<(), RestartError> {
    let pid = tasks[i].pid;
    let refuse = |what: String| RestartError::Unsupported(format!("task {pid}: {what}"));
    let me = ids[i];
    let user = me[USER];
    let made: [(u64, usize, &str); 6] = [
        (libc::CLONE_NEWUTS as u64, 1, "uts"),
        (libc::CLONE_NEWIPC as u64, 2, "ipc"),
        (libc::CLONE_NEWNS as u64, 3, "mnt"),
        (libc::CLONE_NEWPID as u64, PID, "pid"),
        (libc::CLONE_NEWNET as u64, 6, "net"),
        (libc::CLONE_NEWCGROUP as u64, 7, "cgroup"),
    ];
    let mut slots: Vec<(usize, &str)> = made
        .iter()
        .filter(|(flag, _, _)| ns.clone_flags & flag != 0)
        .map(|&(_, slot, name)| (slot, name))
        .collect();
    match &ns.new_time {
        Some((_, true)) => slots.push((TIME, "time")),
        Some((_, false)) => slots.push((TFC, "time_for_children")),
        None => {}
    }
    for (slot, name) in slots {
        let owner = owner_of(img, me[slot])?;
        if owner != user && !(is_external(img, owner)? && is_external(img, user)?) {
            return Err(refuse(format!(
                "its {name} namespace (record {}) is owned by user namespace record {owner}, \
                 not by its own (record {user}): it cannot be made so",
                me[slot]
            )));
        }
    }
    // set_tid: the creator is kstate (every capability) for the root.
    let Some(p) = tasks[i].parent else {
        return Ok(());
    };
    let creator = ids[p][USER];
    if is_external(img, creator)? || !ns.own_pid_ns {
        return Ok(());
    }
    // The levels the creator may choose a pid in must be the innermost
    // ones; the outer rest is left to the kernel's cursor, which gives the
    // recorded pid when the tasks of those levels come in the order of
    // their pids there (the task checks it, see `check_pids`).
    let mut level = me[PID];
    let mut capable = 0;
    let mut outer_from = None;
    for k in 0..ns.set_tid.len() {
        let owner = owner_of(img, level)?;
        if descends(img, owner, creator)? {
            if let Some(from) = outer_from {
                return Err(refuse(format!(
                    "its pid in pid namespace record {level} can be chosen by its parent, but not \
                     the one {} levels further in: not supported",
                    k - from
                )));
            }
            capable += 1;
        } else if outer_from.is_none() {
            log::debug!(
                "plan: task {pid}: its pid in pid namespace record {level} (owned by user \
                 namespace record {owner}, outside its parent's, record {creator}) and above \
                 is left to the kernel's cursor"
            );
            outer_from = Some(k);
        }
        level = match img.object(level).map_err(fmt_err)? {
            Object::PidNs(r) => r.parent.id.get(),
            _ => break,
        };
    }
    let free = ns.set_tid.len() - capable;
    ns.set_tid.truncate(capable);
    ns.free_levels = free;
    Ok(())
}

/// In the new task (restorer), before anything else: when some of its
/// pids were left to the kernel's cursor, it checks it has the recorded
/// pid at every level of the tree's own (NSpid, as the restarting
/// process's /proc shows it: all levels from there down).
pub fn check_pids(t: &TaskPlan<'_>) -> Result<(), String> {
    if t.ns.free_levels == 0 {
        return Ok(());
    }
    let n = t.ns.set_tid.len() + t.ns.free_levels;
    let status = crate::procfs::read(std::path::Path::new("/proc/self/status"))
        .map_err(|e| format!("/proc/self/status: {e}"))?;
    let got: Vec<u32> = crate::procfs::field(&status, b"NSpid")
        .and_then(crate::procfs::parse_u32_list)
        .unwrap_or_default();
    let want: Vec<u32> = t.task.nspid.iter().map(|p| p.get()).collect();
    let tail = |v: &[u32]| v[v.len().saturating_sub(n)..].to_vec();
    if got.len() < n || tail(&got) != tail(&want) {
        return Err(format!(
            "got pids {:?} in the pid namespaces of the tree's own, not {:?}: the outer ones \
             could only be left to the kernel's cursor (its parent has no capability over their \
             owner user namespace), and other tasks came first",
            tail(&got),
            tail(&want)
        ));
    }
    Ok(())
}

/// Creates a task as `restart` plans it (clone3 with set_tid and its
/// CLONE_NEW* flags): like `sys::clone::fork_with_pids`, 0 in the child and
/// its pid in the creator. With a new user namespace, the creator writes its
/// maps before the child goes on (the child waits for that here), and for a
/// namespace that denies setgroups takes the child's groups on itself around
/// the clone.
pub fn fork_task(ns: &NsPlan) -> io::Result<i32> {
    let Some(user) = &ns.user else {
        return sys::clone::fork_with_pids(ns.clone_flags, &ns.set_tid);
    };
    let pipe = || -> io::Result<(OwnedFd, OwnedFd)> {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
    };
    let (up_r, up_w) = pipe()?;
    let (down_r, down_w) = pipe()?;
    let saved_groups = match &user.groups {
        Some(g) => {
            let saved = nix::unistd::getgroups().map_err(io::Error::from)?;
            let gids: Vec<nix::unistd::Gid> =
                g.iter().map(|&v| nix::unistd::Gid::from_raw(v)).collect();
            nix::unistd::setgroups(&gids).map_err(|e| {
                io::Error::other(format!(
                    "taking the groups {g:?} its user namespace (record {}) denies it to set: {e}",
                    user.id
                ))
            })?;
            Some(saved)
        }
        None => None,
    };
    if user.nested {
        become_owner()?;
    }
    let r = sys::clone::fork_with_pids(ns.clone_flags, &ns.set_tid);
    // The creator takes its own groups back (the child keeps the ones it
    // was born with).
    if let (Some(saved), false) = (saved_groups, matches!(r, Ok(0))) {
        if let Err(e) = nix::unistd::setgroups(&saved) {
            return Err(io::Error::other(format!("restoring its own groups: {e}")));
        }
    }
    match r? {
        0 => {
            drop((up_r, down_w));
            child_wait(up_w, down_r);
            Ok(0)
        }
        child => {
            drop((up_w, down_r));
            let mut buf = [0u8; 4];
            let n = read_full(&up_r, &mut buf)?;
            if n != 4 {
                return Err(io::Error::other(format!(
                    "the task made with user namespace record {} died before its maps were written",
                    user.id
                )));
            }
            let host = i32::from_le_bytes(buf);
            super::freeze::test_pause("userns-maps");
            write_maps(host, user)?;
            nix::unistd::write(&down_w, b"1").map_err(io::Error::from)?;
            Ok(child)
        }
    }
}

/// A user namespace's owner must be mapped in its parent, which a
/// restorer's ids (kstate's) need not be: before it makes a nested one, the
/// restorer takes uid and gid 0 of its own namespace as its effective ids
/// (for good: the ids it had cannot be named from inside; its saved ones come
/// with the core restore), and stays dumpable, so that its /proc files and
/// its child's stay its own, to write the maps.
fn become_owner() -> io::Result<()> {
    let keep = u32::MAX;
    nix::unistd::setresgid(
        nix::unistd::Gid::from_raw(keep),
        nix::unistd::Gid::from_raw(0),
        nix::unistd::Gid::from_raw(keep),
    )
    .and_then(|()| {
        nix::unistd::setresuid(
            nix::unistd::Uid::from_raw(keep),
            nix::unistd::Uid::from_raw(0),
            nix::unistd::Uid::from_raw(keep),
        )
    })
    .and_then(|()| nix::sys::prctl::set_dumpable(true))
    .map_err(|e| {
        io::Error::other(format!(
            "taking uid and gid 0 of its user namespace, to own a nested one: {e}"
        ))
    })
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match nix::unistd::read(fd.as_fd(), &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// The child's side: tell the creator our pid as its /proc shows it, wait
/// for its word that the maps are written. If it fails instead, wait to be
/// killed: the creator reports the reason, and dies (or is killed) after.
fn child_wait(up_w: OwnedFd, down_r: OwnedFd) {
    let host = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
        .unwrap_or(0);
    let _ = nix::unistd::write(&up_w, &host.to_le_bytes());
    drop(up_w);
    let mut b = [0u8; 1];
    if matches!(read_full(&down_r, &mut b), Ok(1)) {
        return;
    }
    sys::clone::exit_now(1);
}

/// setgroups, uid_map and gid_map of the new user namespace of `pid` (as
/// this process's /proc shows it), in that order: "deny" must come before
/// gid_map.
fn write_maps(pid: i32, user: &UserPlan) -> io::Result<()> {
    let write = |file: &str, text: &[u8]| -> io::Result<()> {
        let path = format!("/proc/{pid}/{file}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| io::Write::write_all(&mut f, text))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "writing {:?} to {path} (user namespace record {}): {e}",
                        String::from_utf8_lossy(text).trim_end(),
                        user.id
                    ),
                )
            })
    };
    let text = |map: &[[u32; 3]]| -> Vec<u8> {
        map.iter()
            .map(|e| format!("{} {} {}\n", e[0], e[1], e[2]))
            .collect::<String>()
            .into_bytes()
    };
    if user.setgroups == Setgroups::Deny {
        write("setgroups", b"deny")?;
    }
    if !user.uid_map.is_empty() {
        write("uid_map", &text(&user.uid_map))?;
    }
    if !user.gid_map.is_empty() {
        write("gid_map", &text(&user.gid_map))?;
    }
    log::debug!(
        "restart: user namespace record {} made by task {pid} (uid_map {:?}, gid_map {:?})",
        user.id,
        user.uid_map,
        user.gid_map
    );
    Ok(())
}

/// Runs `f` on the task's core with its ids in its own user namespace's
/// terms (as the core restore must set them from inside), or as recorded
/// when it lives in the restarting process's. With `--join-ns user:…:UID,GID`
/// (`join`), the task, already in the joined namespace, takes UID and GID
/// instead, and, as a switch from root to another uid would, loses its
/// permitted, effective and ambient capabilities unless UID is 0. (Without
/// UID,GID the recorded ids are used as they are in the joined namespace:
/// right for an identity map.)
pub fn with_ns_creds<R>(
    ns: &NsPlan,
    core: &TaskCoreView<'_>,
    join: Option<(u32, u32)>,
    f: impl FnOnce(&TaskCoreView<'_>) -> R,
) -> R {
    let (mut uids, mut gids) = match &ns.creds {
        Some(c) => (c.uids.map(U32::new), c.gids.map(U32::new)),
        None => (core.rec.uids, core.rec.gids),
    };
    let groups: &[U32] = ns.creds.as_ref().map_or(core.groups, |c| &c.groups);
    let mut rec: TaskCoreRecord = *core.rec;
    if let Some((uid, gid)) = join {
        uids = [U32::new(uid); 4];
        gids = [U32::new(gid); 4];
        if uid != 0 {
            // caps: inheritable, permitted, effective, bounding, ambient.
            for k in [1, 2, 4] {
                rec.caps[k] = 0.into();
            }
        }
    } else if ns.creds.is_none() {
        return f(core);
    }
    rec.uids = uids;
    rec.gids = gids;
    let view = TaskCoreView {
        rec: &rec,
        groups,
        ..*core
    };
    f(&view)
}

/// Before a restorer writes the sysctls of an ipc namespace owned by a user
/// namespace of the tree's own: only that namespace's root may (the files
/// belong to it, and procfs gives no capability a way around that), so the
/// restorer takes that effective uid now; its saved ids come with the core.
/// Where 0 is not mapped, the files belong to the global root, which the
/// restorer still is.
pub fn become_ipc_owner(ns: &NsPlan) -> Result<(), String> {
    if ns.creds.is_none() {
        return Ok(());
    }
    match nix::unistd::setresuid(
        nix::unistd::Uid::from_raw(u32::MAX),
        nix::unistd::Uid::from_raw(0),
        nix::unistd::Uid::from_raw(u32::MAX),
    ) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => Ok(()),
        Err(e) => Err(format!(
            "taking the uid 0 of its user namespace to write its ipc sysctls: {e}"
        )),
    }
}

/// `--join-ns user` puts every task into the joined namespace: refused for
/// a tree with user namespaces of its own, before anything is done.
pub fn check_join(
    plan: &super::restart::Plan<'_>,
    join: &[super::restart::JoinNs],
) -> Result<(), RestartError> {
    let joins_user = join
        .iter()
        .any(|j| j.kind == crate::kstate::registry::NsKind::User);
    match plan.tasks.iter().find(|t| t.ns.creds.is_some()) {
        Some(t) if joins_user => Err(RestartError::BadOption(format!(
            "--join-ns user: task {} is in a user namespace of the tree's own, which restart makes",
            t.pid
        ))),
        _ => Ok(()),
    }
}
