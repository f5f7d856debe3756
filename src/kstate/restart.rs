//! `kstate restart`: bring a checkpointed tree back to life.
//!
//! The order, and why:
//! 1. **Validate** the whole image (`Image::parse`) and build the plan: the
//!    tree, and each task's core, mm, mappings and fds. Nothing is changed
//!    on the system before this and the pre-flight checks pass.
//! 2. **Pre-flight**: capabilities, every pid free, every file still there
//!    with the same identity, every session and process group one that can
//!    be made again (led by a task of the tree, or kstate's own), the special
//!    mappings (vdso, vvar) of the same sizes on this kernel.
//! 3. **Resources**: kstate opens every file and creates every pipe (with
//!    its bytes in flight) itself, above all the fd numbers the tasks use, so
//!    that the tasks, forked from kstate, inherit them.
//! 4. **Tasks**: clone3 with set_tid creates the root with its pid; each
//!    task, running a copy of kstate, starts its session or the group it
//!    leads, creates its own children (so parents come first, the tree is
//!    real and sessions are inherited), puts its
//!    files at their numbers, closes the rest, sets cwd and umask, reports
//!    ready and blocks in read(2).
//! 5. **Address spaces**, from outside, with injected system calls (first,
//!    once every group leader exists, setpgid for a task that joins a group
//!    another task leads, maybe in another branch of the tree): the
//!    special mappings are moved to their saved addresses, everything else is
//!    unmapped, each saved mapping is mapped again and its pages written from
//!    the mapped image (one copy, by /proc/PID/mem); then the mm layout
//!    (PR_SET_MM_MAP), signal handlers, itimers, sigaltstack, personality,
//!    pending signals; credentials last.
//! 6. **Registers** (general and extended) and the signal mask are set, and
//!    every task is let go together (PTRACE_DETACH) once every one is ready.
//! 7. **Wait** for the root, as CRIU does, or detach (`--restore-detached`).
//!
//! Any failure kills every task made so far: every descendant of kstate,
//! again until none is left (kstate is their subreaper, so it reaps them
//! all), never a pid of the image that another process holds; and it closes
//! what it opened: nothing is left behind.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::image::format::{fd_kind, vma_kind, Ref};
use crate::image::reader::{FdView, MmView, Object, PipeView, TaskCoreView, TaskView, VmaView};
use crate::image::{Image, ImageSource};
use crate::kstate::registry::NsKind;
use crate::objects::{core as task_core, vma};
use crate::procfs;
use crate::sys::{self, ptrace};

/// How long the tasks may take to report ready, and to stop.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct RestartOptions {
    pub image: PathBuf,
    /// Do not wait for the root (`--restore-detached`).
    pub detached: bool,
    /// Write the root's pid here (`--pidfile`).
    pub pidfile: Option<PathBuf>,
    /// Existing namespaces to restore the tree into (`--join-ns`), opened
    /// and checked by [`parse_ns_options`].
    pub join: Vec<JoinNs>,
    /// Namespace types created anew and left unconfigured (`--empty-ns`).
    pub empty: Vec<NsKind>,
    /// `--external mnt[KEY]:PATH`: what to bind for each external mount.
    pub external: Vec<String>,
    /// `--external veth[INNER]:OUTER[@BRIDGE]`: outer ends of veths whose
    /// peer was outside the tree.
    pub external_veth: Vec<crate::objects::net_restore::ExternalVeth>,
}

/// One `--join-ns NS:PID|NS_FILE[:EXTRA]`: the namespace file, opened once
/// and kept as a descriptor until the tasks enter it.
#[derive(Debug)]
pub struct JoinNs {
    pub kind: NsKind,
    pub fd: OwnedFd,
    /// For a user namespace: the uid and gid to switch to once in it.
    pub ids: Option<(u32, u32)>,
    pub spec: String,
}

const JOINABLE: [NsKind; 7] = [
    NsKind::Net,
    NsKind::Uts,
    NsKind::Ipc,
    NsKind::Mnt,
    NsKind::Time,
    NsKind::Cgroup,
    NsKind::User,
];

fn ns_by_name(name: &str) -> Option<NsKind> {
    match name {
        "net" => Some(NsKind::Net),
        "uts" => Some(NsKind::Uts),
        "ipc" => Some(NsKind::Ipc),
        "mnt" => Some(NsKind::Mnt),
        "time" => Some(NsKind::Time),
        "cgroup" => Some(NsKind::Cgroup),
        "user" => Some(NsKind::User),
        "pid" => Some(NsKind::Pid),
        _ => None,
    }
}

/// Parses and checks `--join-ns` and `--empty-ns` before anything is done:
/// known types only, pid refused (a pid namespace can only be entered by a
/// new child), no type twice, none in both lists; each namespace file is
/// opened here, once, and must be a namespace of the type it is given as.
pub fn parse_ns_options(
    join: &[String],
    empty: &[String],
) -> Result<(Vec<JoinNs>, Vec<NsKind>), RestartError> {
    let bad = |spec: &str, why: String| RestartError::BadOption(format!("{spec}: {why}"));
    let mut out = Vec::new();
    for spec in join {
        let arg = format!("--join-ns {spec}");
        let (name, rest) = spec
            .split_once(':')
            .ok_or_else(|| bad(&arg, "expected NS:PID or NS:FILE".into()))?;
        let kind = ns_by_name(name)
            .ok_or_else(|| bad(&arg, format!("unknown namespace type {name:?}")))?;
        if kind == NsKind::Pid {
            return Err(bad(
                &arg,
                "a pid namespace cannot be joined: only a new child task can enter one".into(),
            ));
        }
        // EXTRA (UID,GID) only for user, after the last ':'.
        let (target, ids) = match rest.rsplit_once(':') {
            Some((t, extra)) if kind == NsKind::User && extra.contains(',') => {
                let (u, g) = extra.split_once(',').unwrap_or((extra, ""));
                let parse = |v: &str| {
                    v.parse::<u32>()
                        .map_err(|_| bad(&arg, format!("{extra:?} is not UID,GID")))
                };
                (t, Some((parse(u)?, parse(g)?)))
            }
            _ => (rest, None),
        };
        if out.iter().any(|j: &JoinNs| j.kind == kind) {
            return Err(bad(&arg, format!("the {name} namespace is given twice")));
        }
        let path = if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
            PathBuf::from(format!("/proc/{target}/ns/{name}"))
        } else {
            PathBuf::from(target)
        };
        let file = std::fs::File::open(&path)
            .map_err(|e| bad(&arg, format!("{}: {e}", path.display())))?;
        let fd: OwnedFd = file.into();
        match sys::ns_get_nstype(fd.as_fd()) {
            Ok(t) if t == kind.clone_flag() => {}
            Ok(_) => {
                return Err(bad(
                    &arg,
                    format!("{} is not a {name} namespace", path.display()),
                ))
            }
            Err(e) => {
                return Err(bad(
                    &arg,
                    format!("{} is not a namespace file ({e})", path.display()),
                ))
            }
        }
        out.push(JoinNs {
            kind,
            fd,
            ids,
            spec: spec.clone(),
        });
    }
    let mut empties = Vec::new();
    for name in empty {
        let arg = format!("--empty-ns {name}");
        let kind = ns_by_name(name)
            .ok_or_else(|| bad(&arg, format!("unknown namespace type {name:?}")))?;
        if kind != NsKind::Net {
            return Err(bad(
                &arg,
                "only the network namespace can be left empty".into(),
            ));
        }
        if out.iter().any(|j| j.kind == kind) {
            return Err(bad(
                &arg,
                format!("the {name} namespace is given to both --join-ns and --empty-ns"),
            ));
        }
        if empties.contains(&kind) {
            return Err(bad(&arg, format!("the {name} namespace is given twice")));
        }
        empties.push(kind);
    }
    debug_assert!(out.iter().all(|j| JOINABLE.contains(&j.kind)));
    Ok((out, empties))
}

/// Why a restart failed; each names the task, file or capability.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    #[error(transparent)]
    Open(#[from] crate::image::source::OpenError),
    #[error("{path}: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: crate::image::FormatError,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    BadOption(String),
    #[error("pid {pid} is already taken (by {comm:?}): cannot restore task {pid}")]
    PidTaken { pid: i32, comm: String },
    #[error("{path}: {what}")]
    File { path: String, what: String },
    #[error("restart needs {cap}: {why}")]
    Capability {
        cap: &'static str,
        why: &'static str,
    },
    #[error("task {pid}: {step}: {source}")]
    Task {
        pid: i32,
        step: String,
        #[source]
        source: io::Error,
    },
    #[error("task {pid}: {what}")]
    Restore { pid: i32, what: String },
    #[error(transparent)]
    Object(#[from] crate::objects::ObjectError),
    #[error("the tasks did not all report ready within {0} s")]
    Timeout(u64),
}

fn task_err(pid: i32, step: impl Into<String>) -> impl FnOnce(io::Error) -> RestartError {
    let step = step.into();
    move |source| RestartError::Task { pid, step, source }
}

/// One task of the plan, with everything the image says of it.
pub struct TaskPlan<'a> {
    pub task: TaskView<'a>,
    pub id: u32,
    pub pid: i32,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub core: Option<TaskCoreView<'a>>,
    pub mm: Option<MmView<'a>>,
    pub vmas: Vec<VmaView<'a>>,
    pub fds: Vec<FdView<'a>>,
    /// How the task is created into its namespaces.
    pub ns: NsPlan,
    /// Where its restorer maps the scratch area the restore's batches run
    /// from (`vma::scratch_for`; set just before the tasks are created).
    pub scratch: u64,
}

/// Clock offsets of a time namespace: (monotonic s, ns), (boottime s, ns).
pub type TimeOffsets = ((i64, i64), (i64, i64));

/// How one task is created into its namespaces (see [`plan_namespaces`]).
#[derive(Clone, Debug, Default)]
pub struct NsPlan {
    /// CLONE_NEW* flags for the clone3 that creates it.
    pub clone_flags: u64,
    /// Its pids in the pid namespaces of the tree's own (innermost first),
    /// or its one pid when it lives in the restarting process's.
    pub set_tid: Vec<i32>,
    /// A new time namespace with these offsets ((monotonic s, ns),
    /// (boottime s, ns)); entered by the task itself (true) or left for its
    /// children (false).
    pub new_time: Option<(TimeOffsets, bool)>,
    /// Hostname and domainname of a new uts namespace it creates.
    pub names: Option<(Vec<u8>, Vec<u8>)>,
    /// The sysctls of a new ipc namespace it creates.
    pub ipc: Option<crate::objects::ipc_ns::IpcValues>,
    /// The init of a pid namespace of the tree's own: that namespace's
    /// last_pid, put back once every task exists.
    pub last_pid: Option<u32>,
    /// It lives in a pid namespace of the tree's own (its outermost pid is
    /// then whatever the restarting process's namespace gives).
    pub own_pid_ns: bool,
    /// A new user namespace it is created in (CLONE_NEWUSER), with its maps.
    pub user: Option<super::userns::UserPlan>,
    /// Its ids in its user namespace's terms, when that is the tree's own.
    pub creds: Option<super::userns::NsCreds>,
    /// Outer levels of the tree's own left out of `set_tid` (its creator
    /// has no capability there): the kernel's cursor gives them, and the
    /// task checks it got the recorded pids (`userns::check_pids`).
    pub free_levels: usize,
    /// The mnt_ns record of a new mount namespace it creates, whose mounts
    /// it makes before its children (`objects::mnt_ns::restore`).
    pub mnt: Option<u32>,
    /// Namespaces of the tree's own it enters once every task exists,
    /// made by another task that is not its ancestor (a namespace shared
    /// across branches): (CLONE_NEW* flag, name, index of the task that
    /// makes it). Its children, created before, enter them too.
    pub joins: Vec<(i32, &'static str, usize)>,
}
pub struct Plan<'a> {
    pub tasks: Vec<TaskPlan<'a>>,
    pub pipes: HashMap<u32, PipeView<'a>>,
    /// The mounts of the tree's own mount namespaces.
    pub mounts: crate::objects::mnt_ns::MountPlan<'a>,
}

/// Builds the plan; refuses what this version cannot restore.
pub fn plan<'a>(img: &Image<'a>) -> Result<Plan<'a>, RestartError> {
    let mut tasks: Vec<TaskPlan<'a>> = Vec::new();
    let mut by_id: HashMap<u32, usize> = HashMap::new();
    let mut pipes = HashMap::new();
    let unsupported = |s: String| RestartError::Unsupported(s);
    let fmt = |e| RestartError::Unsupported(format!("image: {e}"));
    use crate::image::Kind;
    let task_kinds = |k: Kind| {
        matches!(
            k,
            Kind::Task | Kind::TaskCore | Kind::Mm | Kind::Vma | Kind::Fd | Kind::Pipe
        )
    };
    for (id, obj) in img.objects_of(task_kinds) {
        let obj = obj.map_err(fmt)?;
        let owner = |r: Ref| by_id.get(&r.id.get()).copied();
        match obj {
            Object::Task(t) => {
                let pid = t.pid() as i32;
                if t.rec.threads.get() != 1 {
                    return Err(unsupported(format!(
                        "task {pid} has {} threads: restoring threads is not supported yet",
                        t.rec.threads.get()
                    )));
                }
                let parent = t.rec.parent.id().and_then(|p| by_id.get(&p).copied());
                let me = tasks.len();
                if let Some(p) = parent {
                    tasks[p].children.push(me);
                }
                by_id.insert(id, me);
                tasks.push(TaskPlan {
                    task: t,
                    id,
                    pid,
                    parent,
                    children: Vec::new(),
                    core: None,
                    mm: None,
                    vmas: Vec::new(),
                    scratch: 0,
                    fds: Vec::new(),
                    ns: NsPlan::default(),
                });
            }
            Object::TaskCore(c) => {
                if let Some(i) = owner(c.rec.task) {
                    tasks[i].core = Some(c);
                }
            }
            Object::Mm(m) => {
                if let Some(i) = owner(m.rec.task) {
                    tasks[i].mm = Some(m);
                }
            }
            Object::Vma(v) => {
                if let Some(i) = owner(v.rec.task) {
                    tasks[i].vmas.push(v);
                }
            }
            Object::Fd(f) => {
                if let Some(i) = owner(f.rec.task) {
                    tasks[i].fds.push(f);
                }
            }
            Object::Pipe(p) => {
                pipes.insert(id, p);
            }
            _ => {}
        }
    }
    if tasks.is_empty() {
        return Err(unsupported("the image holds no task".into()));
    }
    for t in &tasks {
        if t.core.is_none() || t.mm.is_none() {
            return Err(unsupported(format!(
                "task {}: the image has no task state (it was made by a kstate that recorded only namespaces)",
                t.pid
            )));
        }
    }
    plan_namespaces(img, &mut tasks)?;
    Ok(Plan {
        tasks,
        pipes,
        mounts: Default::default(),
    })
}

/// The ten namespace record ids of a task's nsproxy, in nsproxy order:
/// user, uts, ipc, mnt, pid, pid_for_children, net, cgroup, time,
/// time_for_children.
fn nsproxy_ids(img: &Image<'_>, t: &TaskView<'_>) -> Result<[u32; 10], RestartError> {
    let fmt = |e| RestartError::Unsupported(format!("image: {e}"));
    match img.resolve(t.rec.nsproxy).map_err(fmt)? {
        Object::Nsproxy(np) => Ok(np.refs().map(|(_, r, _)| r.id.get())),
        _ => Err(RestartError::Unsupported(
            "image: a task's nsproxy is not one".into(),
        )),
    }
}

/// Decides, task by task (parents first), how each is created into its
/// namespaces: a namespace of the restarting process's is inherited; one of
/// the tree's own is made by the first task that uses it (with a clone3
/// flag, or for time by the task itself) and inherited by its descendants.
/// User namespaces of the tree's own are planned by `userns::plan_user`
/// and what clone3 can give is checked by `userns::check`. What cannot be
/// made this way is refused before anything is done: a namespace shared by
/// tasks of different branches, pid_for_children unlike pid.
fn plan_namespaces(img: &Image<'_>, tasks: &mut [TaskPlan<'_>]) -> Result<(), RestartError> {
    const PID: usize = 4;
    const PFC: usize = 5;
    const TIME: usize = 8;
    const TFC: usize = 9;
    let plain: [(usize, &str, i32); 5] = [
        (1, "uts", libc::CLONE_NEWUTS),
        (2, "ipc", libc::CLONE_NEWIPC),
        (3, "mnt", libc::CLONE_NEWNS),
        (6, "net", libc::CLONE_NEWNET),
        (7, "cgroup", libc::CLONE_NEWCGROUP),
    ];
    let fmt = |e| RestartError::Unsupported(format!("image: {e}"));
    let external = |id: u32| -> Result<bool, RestartError> {
        Ok(img
            .object(id)
            .map_err(fmt)?
            .ns_common()
            .is_some_and(|c| c.is_external()))
    };
    let pid_ns = |id: u32| -> Result<crate::image::format::PidNsRecord, RestartError> {
        match img.object(id).map_err(fmt)? {
            Object::PidNs(r) => Ok(r),
            _ => Err(RestartError::Unsupported(
                "image: a pid namespace is not one".into(),
            )),
        }
    };
    let ids: Vec<[u32; 10]> = tasks
        .iter()
        .map(|t| nsproxy_ids(img, &t.task))
        .collect::<Result<_, _>>()?;
    let mut made: Vec<u32> = Vec::new();
    // Who makes each plain namespace of the tree's own, and which plain
    // namespaces each task is in when it is created (a task that joins one
    // later creates its children before that).
    let mut maker: HashMap<u32, usize> = HashMap::new();
    let mut born_in: Vec<[u32; 10]> = Vec::with_capacity(tasks.len());
    for i in 0..tasks.len() {
        let pid = tasks[i].pid;
        let refuse = |what: String| RestartError::Unsupported(format!("task {pid}: {what}"));
        let me = ids[i];
        let parent = tasks[i].parent.map(|p| ids[p]);
        let mut ns = NsPlan::default();
        super::userns::plan_user(img, &ids, tasks, i, &mut ns)?;
        if me[PFC] != me[PID] {
            return Err(refuse(
                "its pid_for_children differs from its pid namespace".into(),
            ));
        }
        let nspid: Vec<i32> = tasks[i].task.nspid.iter().map(|p| p.get() as i32).collect();
        if external(me[PID])? {
            if parent.is_some_and(|p| p[PID] != me[PID]) {
                return Err(refuse(
                    "it left its parent's pid namespace for an outside one".into(),
                ));
            }
            ns.set_tid = vec![nspid[0]];
        } else {
            ns.own_pid_ns = true;
            let rec = pid_ns(me[PID])?;
            if parent.is_none_or(|p| p[PID] != me[PID]) {
                let parent_ns = rec.parent.id.get();
                let from_parent = match parent {
                    Some(p) => p[PID] == parent_ns,
                    None => external(parent_ns)?,
                };
                if !from_parent || nspid.last() != Some(&1) {
                    return Err(refuse(
                        "its pid namespace is neither its parent's nor a new child of it with the task as init"
                            .into(),
                    ));
                }
                ns.clone_flags |= libc::CLONE_NEWPID as u64;
                ns.last_pid = Some(rec.last_pid.get());
            }
            // The levels of the tree's own, below the outermost external one.
            let mut own = 0;
            let mut cur = me[PID];
            while cur != 0 && !external(cur)? {
                own += 1;
                cur = pid_ns(cur)?.parent.id.get();
            }
            ns.set_tid = nspid.iter().rev().take(own).copied().collect();
        }
        let mut born = me;
        for (slot, name, flag) in plain {
            let target = me[slot];
            let inherited = tasks[i].parent.map(|p| born_in[p][slot]);
            if external(target)? {
                if inherited.is_some_and(|p| p != target) {
                    return Err(refuse(format!(
                        "it left its parent's {name} namespace for an outside one"
                    )));
                }
            } else if inherited != Some(target) {
                if let Some(&by) = maker.get(&target) {
                    // Made by a task of another branch: entered once every
                    // task exists (see `restore_all`).
                    if ns.user.is_some() || ns.creds.is_some() {
                        return Err(refuse(format!(
                            "its {name} namespace is shared with a task of another branch, \
                             in a user namespace of the tree's own: not supported yet"
                        )));
                    }
                    ns.joins.push((flag, name, by));
                    born[slot] = inherited.unwrap_or(0);
                    continue;
                }
                maker.insert(target, i);
                made.push(target);
                ns.clone_flags |= flag as u64;
                match img.object(target).map_err(fmt)? {
                    Object::UtsNs(u) => {
                        ns.names = Some((u.hostname.to_vec(), u.domainname.to_vec()))
                    }
                    Object::IpcNs(r) => ns.ipc = crate::objects::ipc_ns::values(&r),
                    Object::PlainNs(v) if v.kind == crate::image::Kind::MntNs => {
                        ns.mnt = Some(target)
                    }
                    _ => {}
                }
            }
        }
        // Time: the task's own comes from its parent's time_for_children
        // (kstate's for the root) or is new, entered by the task itself; its
        // time_for_children is its own, or new and left to its children.
        let offsets = |id: u32| -> Result<TimeOffsets, RestartError> {
            match img.object(id).map_err(fmt)? {
                Object::TimeNs(r) => Ok((
                    (r.monotonic_sec.get(), r.monotonic_nsec.get()),
                    (r.boottime_sec.get(), r.boottime_nsec.get()),
                )),
                _ => Err(RestartError::Unsupported(
                    "image: a time namespace is not one".into(),
                )),
            }
        };
        let time_ok = match parent {
            Some(p) => p[TFC] == me[TIME],
            None => external(me[TIME])?,
        };
        if !time_ok {
            if external(me[TIME])? || made.contains(&me[TIME]) {
                return Err(refuse(
                    "its time namespace is neither inherited nor new".into(),
                ));
            }
            made.push(me[TIME]);
            ns.new_time = Some((offsets(me[TIME])?, true));
        }
        if me[TFC] != me[TIME] {
            if ns.new_time.is_some() || external(me[TFC])? || made.contains(&me[TFC]) {
                return Err(refuse(
                    "its time_for_children namespace cannot be made".into(),
                ));
            }
            made.push(me[TFC]);
            ns.new_time = Some((offsets(me[TFC])?, false));
        }
        super::userns::check(img, &ids, tasks, i, &mut ns)?;
        born_in.push(born);
        tasks[i].ns = ns;
    }
    Ok(())
}

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_CHECKPOINT_RESTORE: u32 = 40;

/// Everything that can be checked before the first change to the system.
pub fn preflight(plan: &Plan<'_>) -> Result<(), RestartError> {
    // kstate's /proc status, read once here and kept for the restorers
    // (`own_restorer`).
    let status = own_restorer().map(|r| &r.status[..]);
    let caps = status
        .and_then(|s| procfs::parse_hex_u64(procfs::field(s, b"CapEff")?))
        .unwrap_or_else(procfs::own_cap_eff);
    let has = |bit: u32| caps & (1u64 << bit) != 0;
    if !has(CAP_SYS_ADMIN) && !has(CAP_CHECKPOINT_RESTORE) {
        return Err(RestartError::Capability {
            cap: "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN",
            why: "clone3 with set_tid (the same pids) and PR_SET_MM_MAP need it",
        });
    }
    if !has(CAP_SYS_PTRACE) {
        return Err(RestartError::Capability {
            cap: "CAP_SYS_PTRACE",
            why: "kstate rebuilds each task through ptrace",
        });
    }
    let threads = status.and_then(|s| procfs::field(s, b"Threads").and_then(procfs::parse_u32));
    if threads != Some(1) {
        return Err(RestartError::Unsupported(
            "restart must run in a single-threaded process".into(),
        ));
    }
    let mut checked: std::collections::HashSet<(&[u8], u64, u64)> = Default::default();
    for t in &plan.tasks {
        let dir = procfs::pid_path(t.pid, "comm");
        if t.ns.own_pid_ns {
            // Its pids are all in fresh namespaces.
        } else if let Ok(comm) = std::fs::read(&dir) {
            return Err(RestartError::PidTaken {
                pid: t.pid,
                comm: procfs::show(procfs::trim(&comm)),
            });
        }
        for f in &t.fds {
            if f.rec.kind.get() == fd_kind::REGULAR {
                let user = || format!("task {} has it open as fd {}", t.pid, f.rec.fd.get());
                check_identity(f.path, f.rec.dev.get(), f.rec.ino.get(), user)?;
            }
            if f.rec.kind.get() == fd_kind::INHERITED {
                let fd = f.rec.fd.get() as RawFd;
                if !sys::fd_is_open(fd) {
                    return Err(RestartError::File {
                        path: format!("fd {fd}"),
                        what: format!(
                            "task {} inherits fd {fd} ({}), but kstate has no fd {fd} to give it",
                            t.pid,
                            procfs::show(f.path)
                        ),
                    });
                }
            }
        }
        for v in &t.vmas {
            // The same library is mapped by every task, several times:
            // each file is looked at once.
            if v.kind() == vma_kind::FILE
                && checked.insert((v.path, v.rec.dev.get(), v.rec.ino.get()))
            {
                let user = || format!("task {} maps it at {:#x}", t.pid, v.rec.start.get());
                check_identity(v.path, v.rec.dev.get(), v.rec.ino.get(), user)?;
            }
        }
    }
    check_groups(plan)?;
    vma::check_special_sizes(plan)?;
    Ok(())
}

/// Every session and process group must be one the restore can make: a
/// session is started by its leader (setsid) or inherited from the parent
/// (kstate's own for the root); a group is started by its leader, which
/// must be in the tree and in the same session, or is kstate's own.
fn check_groups(plan: &Plan<'_>) -> Result<(), RestartError> {
    let my_sid = nix::unistd::getsid(None).map_or(0, |p| p.as_raw());
    let my_pgid = nix::unistd::getpgrp().as_raw();
    let ids = |t: &TaskPlan<'_>| (t.task.nspgid[0].get() as i32, t.task.nssid[0].get() as i32);
    let by_pid: HashMap<i32, &TaskPlan<'_>> = plan.tasks.iter().map(|t| (t.pid, t)).collect();
    for t in &plan.tasks {
        let (pgid, sid) = ids(t);
        let pid = t.pid;
        let inherited = match t.parent {
            Some(p) => ids(&plan.tasks[p]).1,
            None => my_sid,
        };
        if sid == pid && pgid != pid {
            return Err(RestartError::Unsupported(format!(
                "task {pid} leads session {sid} but is in process group {pgid}"
            )));
        }
        if sid != pid && sid != inherited && t.parent.is_none() {
            return Err(RestartError::Unsupported(format!(
                "task {pid} (the root) was in session {sid}, but kstate runs in session {my_sid}: \
                 run kstate restart from a process of session {sid}, or have the root start its own"
            )));
        }
        if sid != pid && sid != inherited {
            return Err(RestartError::Unsupported(format!(
                "task {pid} is in session {sid}, which it neither leads nor inherits from its parent \
                 (in session {inherited}): restoring it needs a helper task, not supported yet"
            )));
        }
        if pgid == pid || (pgid == my_pgid && sid == my_sid) {
            continue;
        }
        match by_pid.get(&pgid) {
            Some(leader) if ids(leader) == (pgid, sid) => {}
            Some(_) => {
                return Err(RestartError::Unsupported(format!(
                    "task {pid} is in process group {pgid}, whose leader is in another group or session"
                )))
            }
            None => {
                return Err(RestartError::Unsupported(format!(
                    "task {pid} is in process group {pgid}, whose leader is not in the image \
                     (and kstate runs in group {my_pgid}, session {my_sid}): restoring it needs a \
                     helper task, not supported yet"
                )))
            }
        }
    }
    Ok(())
}

/// Checks that `path` is still the file checkpointed; `user` says who
/// needs it (for the message).
fn check_identity(
    path: &[u8],
    dev: u64,
    ino: u64,
    user: impl Fn() -> String,
) -> Result<(), RestartError> {
    let p = os_path(path);
    let shown = || procfs::show(path);
    match std::fs::metadata(p) {
        Err(e) => Err(RestartError::File {
            path: shown(),
            what: format!("is gone ({e}); {}", user()),
        }),
        Ok(m) if m.ino() != ino || m.dev() != dev && !is_map_dev_match(dev, m.dev()) => {
            Err(RestartError::File {
                path: shown(),
                what: format!(
                    "is not the file that was checkpointed (inode {} now, {ino} then); {}",
                    m.ino(),
                    user()
                ),
            })
        }
        Ok(_) => Ok(()),
    }
}

/// /proc/PID/maps shows devices as major:minor, fstat as dev_t: compare as
/// (major, minor).
fn is_map_dev_match(a: u64, b: u64) -> bool {
    let split = |d: u64| (libc::major(d), libc::minor(d));
    split(a) == split(b)
}

fn os_path(b: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(b))
}

/// A descriptor kstate holds for a task: installed as `target` in `task`.
struct Resource {
    task: usize,
    target: RawFd,
    cloexec: bool,
    fd: OwnedFd,
}

/// The descriptors kstate opens for the tasks, all above every target.
struct Resources {
    base: RawFd,
    ready_r: OwnedFd,
    ready_w: OwnedFd,
    hold_r: OwnedFd,
    /// Held open so that the tasks block in read(2) rather than see EOF.
    _hold_w: OwnedFd,
    list: Vec<Resource>,
    /// kstate's /proc (O_PATH, above the base): a task reads its pid as
    /// kstate sees it there, since its own /proc may be a proc of its
    /// restored pid namespace by then.
    proc: OwnedFd,
    /// `--join-ns` namespaces (above the base), entered by the root before
    /// it creates its children; a user namespace is entered by every task
    /// last of all, by an injected setns.
    joins: Vec<JoinNs>,
    empty: Vec<NsKind>,
    /// The image file (above the base), when the image is one: each task
    /// reads its pages from it (`vma::read_pages`), then closes it.
    image: Option<OwnedFd>,
    /// The signals kstate catches or ignores (SigCgt | SigIgn of its
    /// /proc status, bit N-1 for signal N; all when unreadable): the ones a
    /// restorer sets back to the default.
    own_signals: u64,
    /// When a thread of kstate prepares the root's mount namespace
    /// (`mnt_thread`): the pipe it reports on, read by the root.
    mnt_ready: Option<OwnedFd>,
}

fn dup_above(fd: &OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    sys::dup_above(fd.as_raw_fd(), min)
}

fn open_resources(
    plan: &Plan<'_>,
    opts: &RestartOptions,
    src: &ImageSource,
) -> Result<Resources, RestartError> {
    let top = plan
        .tasks
        .iter()
        .flat_map(|t| t.fds.iter().map(|f| f.rec.fd.get() as RawFd))
        .max()
        .unwrap_or(2)
        .max(2);
    let base = top + 16;
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| task_err(0, "pipe2")(io::Error::from(e)))
    };
    let (ready_r, ready_w) = pipe()?;
    let (hold_r, hold_w) = pipe()?;
    let up = |fd: OwnedFd| dup_above(&fd, base).map_err(task_err(0, "F_DUPFD"));
    let (ready_r, ready_w, hold_r, hold_w) = (up(ready_r)?, up(ready_w)?, up(hold_r)?, up(hold_w)?);
    let mut pipes: HashMap<u32, (OwnedFd, OwnedFd)> = HashMap::new();
    let mut list = Vec::new();
    for (ti, t) in plan.tasks.iter().enumerate() {
        for f in &t.fds {
            let r = &f.rec;
            let target = r.fd.get() as RawFd;
            let flags = r.flags.get() as i32;
            let show = procfs::show(f.path);
            let fd: OwnedFd = match r.kind.get() {
                fd_kind::REGULAR | fd_kind::DEVICE => {
                    let path = os_path(f.path);
                    let acc = flags & libc::O_ACCMODE;
                    let file = std::fs::OpenOptions::new()
                        .read(acc == libc::O_RDONLY || acc == libc::O_RDWR)
                        .write(acc == libc::O_WRONLY || acc == libc::O_RDWR)
                        .custom_flags(
                            flags
                                & (libc::O_APPEND
                                    | libc::O_NONBLOCK
                                    | libc::O_DIRECT
                                    | libc::O_NOATIME),
                        )
                        .open(path)
                        .map_err(|e| RestartError::File {
                            path: show.clone(),
                            what: format!("cannot open it again for task {}: {e}", t.pid),
                        })?;
                    if r.kind.get() == fd_kind::REGULAR {
                        let m = file.metadata().map_err(task_err(t.pid, "fstat"))?;
                        if m.ino() != r.ino.get() {
                            return Err(RestartError::File {
                                path: show,
                                what: "changed between the checks and the restart".into(),
                            });
                        }
                        nix::unistd::lseek(&file, r.pos.get() as i64, nix::unistd::Whence::SeekSet)
                            .map_err(|e| {
                                task_err(t.pid, format!("lseek fd {target}"))(io::Error::from(e))
                            })?;
                    }
                    file.into()
                }
                fd_kind::PIPE_READ | fd_kind::PIPE_WRITE => {
                    let pid_ref = r.pipe.id.get();
                    let (pr, pw) = match pipes.entry(pid_ref) {
                        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                        std::collections::hash_map::Entry::Vacant(e) => {
                            let view = plan.pipes.get(&pid_ref).ok_or_else(|| {
                                RestartError::Unsupported(format!(
                                    "task {}: fd {target}: pipe record {pid_ref} missing",
                                    t.pid
                                ))
                            })?;
                            e.insert(
                                make_pipe(view)
                                    .map_err(task_err(t.pid, format!("pipe for fd {target}")))?,
                            )
                        }
                    };
                    let end = if r.kind.get() == fd_kind::PIPE_READ {
                        pr
                    } else {
                        pw
                    };
                    let fd = end.try_clone().map_err(task_err(t.pid, "dup pipe end"))?;
                    crate::objects::files::set_status_flags(&fd, r.flags.get())
                        .map_err(task_err(t.pid, format!("F_SETFL fd {target}")))?;
                    fd
                }
                fd_kind::INHERITED => sys::dup_above(target, base)
                    .map_err(task_err(t.pid, format!("inherit fd {target}")))?,
                other => {
                    return Err(RestartError::Unsupported(format!(
                        "task {}: fd {target} of unknown kind {other}",
                        t.pid
                    )))
                }
            };
            list.push(Resource {
                task: ti,
                target,
                cloexec: flags & libc::O_CLOEXEC != 0,
                fd: dup_above(&fd, base).map_err(task_err(t.pid, "F_DUPFD"))?,
            });
        }
    }
    let mut joins = Vec::new();
    for j in &opts.join {
        let fd = dup_above(&j.fd, base).map_err(task_err(0, format!("dup of {}", j.spec)))?;
        joins.push(JoinNs {
            kind: j.kind,
            fd,
            ids: j.ids,
            spec: j.spec.clone(),
        });
    }
    let proc: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open("/proc")
        .map_err(task_err(0, "open /proc"))?
        .into();
    let proc = dup_above(&proc, base).map_err(task_err(0, "F_DUPFD"))?;
    let image = src
        .file()
        .map(|f| sys::dup_above(f.as_raw_fd(), base))
        .transpose()
        .map_err(task_err(0, "F_DUPFD of the image file"))?;
    let own_signals = own_restorer()
        .map(|k| {
            ["SigCgt", "SigIgn"]
                .iter()
                .filter_map(|f| {
                    procfs::field(&k.status, f.as_bytes()).and_then(procfs::parse_hex_u64)
                })
                .fold(0, |a, b| a | b)
        })
        .unwrap_or(u64::MAX);
    Ok(Resources {
        own_signals,
        image,
        proc,
        base,
        ready_r,
        ready_w,
        hold_r,
        _hold_w: hold_w,
        list,
        joins,
        empty: opts.empty.clone(),
        mnt_ready: None,
    })
}

fn make_pipe(view: &PipeView<'_>) -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    sys::pipe::set_capacity(&w, view.rec.capacity.get())?;
    let mut off = 0;
    while off < view.data.len() {
        off += nix::unistd::write(&w, &view.data[off..])?;
    }
    Ok((r, w))
}

/// Kills every task made so far, unless disarmed. It kills kstate's
/// descendants, not the pids of the plan (one may be another process's, the
/// reason for the failure), again and again until none is left, since a
/// task may be forking its children meanwhile; kstate is their subreaper,
/// so it reaps them all, orphans included.
struct Cleanup {
    /// The tasks that reported ready (for the log).
    pids: Vec<i32>,
    armed: bool,
}

/// Every descendant of kstate, from /proc/self/task/*/children.
fn descendants() -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = vec![std::process::id() as i32];
    while let Some(pid) = stack.pop() {
        let tids = procfs::numeric_entries(&procfs::pid_path(pid, "task")).unwrap_or_default();
        for tid in tids {
            let path = procfs::pid_path(pid, &format!("task/{tid}/children"));
            let text = procfs::read(&path).unwrap_or_default();
            for w in procfs::words(&text) {
                if let Some(c) = procfs::parse_u32(w) {
                    out.push(c as i32);
                    stack.push(c as i32);
                }
            }
        }
    }
    out
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        if !self.armed {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut killed = 0;
        loop {
            let pids = descendants();
            for &pid in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            killed += pids.len();
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                    Err(nix::errno::Errno::ECHILD) => {
                        log::debug!(
                            "restart: cleaned up ({} tasks had reported ready, {killed} kills)",
                            self.pids.len()
                        );
                        return;
                    }
                    Ok(WaitStatus::StillAlive) => break,
                    Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                    Err(e) => {
                        log::warn!("restart: cleanup: waitpid: {e}");
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                log::warn!(
                    "restart: cleanup: tasks {:?} still there after 5 s",
                    descendants()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What each restorer child runs: it never returns.
fn restorer_child(plan: &Plan<'_>, res: &Resources, me: usize) -> ! {
    let code = match restorer_setup(plan, res, me) {
        Ok(()) => {
            // Blocks here until kstate takes over through ptrace.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(res.hold_r.as_fd(), &mut b);
            1
        }
        Err(msg) => {
            let _ = nix::unistd::write(
                res.ready_w.as_fd(),
                format!("E{} {msg}\n", plan.tasks[me].pid).as_bytes(),
            );
            1
        }
    };
    sys::clone::exit_now(code)
}

fn restorer_setup(plan: &Plan<'_>, res: &Resources, me: usize) -> Result<(), String> {
    let t = &plan.tasks[me];
    let me_pid = nix::unistd::getpid().as_raw();
    let want = t.task.nspid.last().map_or(0, |p| p.get() as i32);
    if me_pid != want {
        return Err(format!("got pid {me_pid}, not {want}"));
    }
    super::userns::check_pids(t)?;
    // Namespaces the task makes itself: time (with its offsets, written
    // before any task enters it), and the names of a new uts namespace.
    if let Some((((ms, mn), (bs, bn)), enter)) = &t.ns.new_time {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .map_err(|e| format!("unshare of a time namespace: {e}"))?;
        // One write(2) of both lines, on a file opened without O_CREAT or
        // O_TRUNC (procfs refuses those here).
        let text = format!("monotonic {ms} {mn}\nboottime {bs} {bn}\n");
        std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/self/timens_offsets")
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(|e| format!("timens_offsets: {e}"))?;
        if *enter {
            let f = std::fs::File::open("/proc/self/ns/time_for_children")
                .map_err(|e| format!("time_for_children: {e}"))?;
            nix::sched::setns(
                &f,
                nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
            )
            .map_err(|e| format!("entering its time namespace: {e}"))?;
        }
    }
    if let Some((host, domain)) = &t.ns.names {
        std::fs::write("/proc/sys/kernel/hostname", host).map_err(|e| format!("hostname: {e}"))?;
        std::fs::write("/proc/sys/kernel/domainname", domain)
            .map_err(|e| format!("domainname: {e}"))?;
    }
    // The mounts of a mount namespace of the tree's own, made by the task
    // that creates it (the init of its pid namespace, so that proc shows
    // the restored pids) before its children, who inherit them.
    if let Some(ns) = t.ns.mnt {
        if !res.joins.iter().any(|j| j.kind == NsKind::Mnt) {
            match (me, &res.mnt_ready) {
                (0, Some(ready)) => {
                    enter_prepared_mnt(ready, res)?;
                    crate::objects::mnt_ns::restore_own(&plan.mounts, ns)?;
                }
                _ => crate::objects::mnt_ns::restore(&plan.mounts, ns)?,
            }
        }
    }
    // Sessions and the groups a task leads are made here, before its
    // children (which inherit them); joining a group led by another task
    // waits until every task exists (`join_group`), since its leader may be
    // in another branch of the tree, not created yet.
    let (pgid, sid) = (t.task.nspgid[0].get() as i32, t.task.nssid[0].get() as i32);
    if sid == t.pid {
        nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    } else if pgid == t.pid {
        nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0))
            .map_err(|e| format!("setpgid: {e}"))?;
    }
    test_fail_in_task("setup", t.pid)?;
    if test_fail("die", t.pid).is_some() {
        // Test hook: die without a word, as a crash would.
        sys::clone::exit_now(9);
    }
    if me == 0 {
        // `--join-ns` and `--empty-ns`: the root enters (or makes) them
        // before its children, who inherit them. A user namespace comes
        // last, per task (see `restore_task`): entered now, it would take
        // away the right to choose pids in this one.
        for JoinNs { kind, fd, .. } in res.joins.iter().filter(|j| j.kind != NsKind::User) {
            let flag = nix::sched::CloneFlags::from_bits_retain(kind.clone_flag());
            nix::sched::setns(fd, flag)
                .map_err(|e| format!("setns into the {kind} of --join-ns: {e}"))?;
        }
        for kind in &res.empty {
            let flag = nix::sched::CloneFlags::from_bits_retain(kind.clone_flag());
            nix::sched::unshare(flag).map_err(|e| format!("unshare of an empty {kind}: {e}"))?;
        }
    }
    // The files its mappings need, the exe and ns_last_pid, opened here in
    // its own mount namespace, at the numbers kstate expects them
    // (`preopen_base` on), so that one batch does its whole restore; before
    // its children, who find them open and need open only the files their
    // parent's list does not begin with (`inherited_preopens`).
    let preopened = match preopens(t) {
        true => {
            let first = preopen_base(res);
            let list = vma::to_open(t, &extra_opens(t)).map_err(|e| e.to_string())?;
            let inherited = inherited_preopens(plan, me, &list);
            for (k, (path, flags)) in list.iter().enumerate().skip(inherited) {
                let acc = flags & libc::O_ACCMODE;
                let f = std::fs::OpenOptions::new()
                    .read(acc != libc::O_WRONLY)
                    .write(acc != libc::O_RDONLY)
                    .open(os_path(path))
                    .map_err(|e| {
                        format!(
                            "opening a file of its mappings failed: {}: {e}",
                            procfs::show(path)
                        )
                    })?;
                sys::dup3(f.as_raw_fd(), first + k as RawFd, libc::O_CLOEXEC)
                    .map_err(|e| format!("dup3 to fd {}: {e}", first + k as RawFd))?;
            }
            Some((first, list.len()))
        }
        false => None,
    };
    for &c in &t.children {
        let cpid = plan.tasks[c].pid;
        match super::userns::fork_task(&plan.tasks[c].ns) {
            Ok(0) => restorer_child(plan, res, c),
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return Err(format!(
                    "pid {cpid} is already taken: cannot restore its child task {cpid}"
                ))
            }
            Err(e) => return Err(format!("clone3 of child {cpid}: {e}")),
        }
    }
    // Files: put ours at their numbers, close everything else below the
    // base, then everything above it but the ready and hold pipes.
    let mut targets: Vec<RawFd> = Vec::new();
    for r in res.list.iter().filter(|r| r.task == me) {
        let flags = if r.cloexec {
            nix::fcntl::OFlag::O_CLOEXEC
        } else {
            nix::fcntl::OFlag::empty()
        };
        sys::dup3(r.fd.as_raw_fd(), r.target, flags.bits())
            .map_err(|e| format!("dup3 to fd {}: {e}", r.target))?;
        targets.push(r.target);
    }
    // One close_range per gap between the task's own descriptors.
    targets.sort_unstable();
    let mut next = 0;
    for &fd in targets.iter().filter(|&&fd| fd < res.base) {
        if fd > next {
            let _ = sys::clone::close_range(next as u32, fd as u32 - 1);
        }
        next = next.max(fd + 1);
    }
    if res.base > next {
        let _ = sys::clone::close_range(next as u32, res.base as u32 - 1);
    }
    // Up to the last possible fd: kstate may have inherited descriptors
    // anywhere, and none of them belongs to the task.
    let mut keep = vec![
        res.ready_w.as_raw_fd() as u32,
        res.hold_r.as_raw_fd() as u32,
        res.proc.as_raw_fd() as u32,
    ];
    keep.extend(res.image.as_ref().map(|f| f.as_raw_fd() as u32));
    keep.extend(
        res.joins
            .iter()
            .filter(|j| j.kind == NsKind::User)
            .map(|j| j.fd.as_raw_fd() as u32),
    );
    if let Some((first, n)) = preopened {
        keep.extend((first..first + n as RawFd).map(|fd| fd as u32));
    }
    keep.sort_unstable();
    let mut from = res.base as u32;
    for k in keep {
        if k > from {
            let _ = sys::clone::close_range(from, k - 1);
        }
        from = from.max(k + 1);
    }
    let _ = sys::clone::close_range(from, u32::MAX);
    // kstate's own signal handlers (the Rust runtime's) and what it
    // inherited ignored do not belong to the task: back to the defaults;
    // the saved ones are set later. Only those kstate has set (read once
    // before the first fork: `own_signals`), not all 64.
    for sig in 1..=64 {
        if res.own_signals & (1u64 << (sig - 1)) != 0 {
            sys::clone::reset_signal(sig);
        }
    }
    let core = t.core.as_ref().ok_or("no core")?;
    let cwd = os_path(core.cwd);
    std::env::set_current_dir(cwd).map_err(|e| format!("chdir {}: {e}", cwd.display()))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        core.rec.umask.get(),
    ));
    // Last, since in a user namespace of the tree's own only its root may
    // write them, and the restorer keeps kstate's ids until then.
    if let Some(values) = &t.ns.ipc {
        super::userns::become_ipc_owner(&t.ns)?;
        for (path, value) in crate::objects::ipc_ns::sysctl_writes(values) {
            std::fs::write(format!("/proc/sys/{path}"), value)
                .map_err(|e| format!("ipc sysctl {path}: {e}"))?;
        }
    }
    // The pid as kstate sees it (/proc is the restarting process's), which
    // differs from the image's when the task is in a pid namespace of its own.
    let host = nix::fcntl::readlinkat(res.proc.as_fd(), "self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
        .unwrap_or(0);
    // The scratch area the restore's batches will run from, where kstate
    // chose it (clear of the saved mappings and of kstate's).
    sys::vm::map_anon_at(
        t.scratch,
        vma::SCRATCH_LEN as usize,
        sys::inject::BATCH_PROT as i32,
    )
    .map_err(|e| format!("scratch area at {:#x}: {e}", t.scratch))?;
    // kstate's /proc stays open until the restore (which closes it with the
    // pipes): a task entering a namespace made by another branch opens it
    // there (`join_namespaces`).
    nix::unistd::write(
        res.ready_w.as_fd(),
        format!("R{} {host}\n", t.pid).as_bytes(),
    )
    .map_err(|e| format!("ready: {e}"))?;
    Ok(())
}

/// The root's side of `mnt_thread`: waits for its report, then enters the
/// mount namespace it prepared, through kstate's descriptor of it
/// (`/proc/KSTATE/fd/N` in kstate's /proc).
fn enter_prepared_mnt(ready: &OwnedFd, res: &Resources) -> Result<(), String> {
    let mut msg = Vec::new();
    let mut chunk = [0u8; 512];
    while !msg.ends_with(b"\n") {
        match nix::unistd::read(ready.as_fd(), &mut chunk) {
            Ok(0) => break,
            Ok(k) => msg.extend_from_slice(&chunk[..k]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("waiting for its mount namespace: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&msg);
    let text = text.trim_end();
    let Some(at) = text.strip_prefix('K') else {
        return Err(match text.strip_prefix('E') {
            Some(err) => err.to_string(),
            None => "its mount namespace was not prepared".to_string(),
        });
    };
    let mut words = at.split(' ').map(|w| w.parse::<u32>().ok());
    let (Some(Some(kstate)), Some(Some(held))) = (words.next(), words.next()) else {
        return Err(format!(
            "a report on its mount namespace not understood: {text}"
        ));
    };
    let path = format!("{kstate}/fd/{held}");
    let fd = nix::fcntl::openat(
        res.proc.as_fd(),
        path.as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("opening its prepared mount namespace ({path}): {e}"))?;
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("entering its prepared mount namespace: {e}"))
}

/// Whether a thread of kstate may prepare the root's new mount namespace
/// beside its creation (`mnt_thread`): its record, when the root creates
/// one, no user namespace of the tree's own owns it and `--join-ns mnt`
/// does not replace it.
fn early_mnt(plan: &Plan<'_>, opts: &RestartOptions) -> Option<u32> {
    let root = &plan.tasks[0].ns;
    if root.clone_flags & libc::CLONE_NEWNS as u64 == 0
        || plan.tasks.iter().any(|t| t.ns.user.is_some())
        || opts.join.iter().any(|j| j.kind == NsKind::Mnt)
    {
        return None;
    }
    root.mnt
}

/// Prepares the root's mount namespace `ns` from a thread of kstate while
/// the root is created (its other namespaces, the clone3 itself): a copy
/// of kstate's made by unshare(2) in this thread alone, the inherited
/// mounts brought to the recorded ones (`mnt_ns::prepare_inherited`: the
/// umounts and their waits for the namespace lock's grace period off the
/// root's path). Reports `K<kstate pid> <fd>` (the descriptor that holds
/// the namespace, in kstate's table) or `E<error>` on `done`. Returns that
/// descriptor, closed when the thread is joined.
fn mnt_thread(
    mounts: crate::objects::mnt_ns::MountPlan<'_>,
    ns: u32,
    done: OwnedFd,
) -> Option<OwnedFd> {
    let made = (|| -> Result<OwnedFd, String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS | nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("unshare of a mount namespace: {e}"))?;
        let fd: OwnedFd = std::fs::File::open("/proc/thread-self/ns/mnt")
            .map_err(|e| format!("opening the new mount namespace: {e}"))?
            .into();
        crate::objects::mnt_ns::prepare_inherited(&mounts, ns)?;
        log::debug!("restart: mount namespace #{ns} prepared beside the root's creation");
        Ok(fd)
    })();
    let (msg, fd) = match made {
        Ok(fd) => (
            format!("K{} {}\n", std::process::id(), fd.as_raw_fd()),
            Some(fd),
        ),
        Err(e) => (format!("E{e}\n"), None),
    };
    // The root may be gone already: its error comes through the ready pipe.
    let _ = nix::unistd::write(&done, msg.as_bytes());
    fd
}

/// Puts the task into the group it was in, when it does not lead it: run
/// once every task exists (and so every group leader has made its group in
/// `restorer_setup`), by an injected setpgid(0, pgid) in the task itself.
fn join_group(
    t: &TaskPlan<'_>,
    pids: &HashMap<i32, i32>,
    b: &mut sys::inject::Batch,
) -> Result<(), RestartError> {
    let pid = t.pid;
    let image_pgid = t.task.nspgid[0].get() as i32;
    let pgid = pids.get(&image_pgid).copied().unwrap_or(image_pgid);
    let now = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
        .map_err(|e| task_err(pid, "getpgid")(io::Error::from(e)))?;
    if now.as_raw() == pgid {
        return Ok(());
    }
    // setpgid takes the group as the task itself sees it.
    let in_task = if t.ns.own_pid_ns {
        t.task.nspgid.last().map_or(0, |g| g.get() as i32)
    } else {
        pgid
    };
    if in_task == 0 {
        return Err(RestartError::Restore {
            pid,
            what: format!("its process group {image_pgid} is led from outside its pid namespace"),
        });
    }
    b.push(
        "setpgid (joining its process group)",
        libc::SYS_setpgid,
        [0, in_task as u64, 0, 0, 0, 0],
    );
    Ok(())
}

/// Test hook: with `KSTATE_TEST_FAIL_AT=POINT:PID[,…]`, the restore of task
/// PID fails at POINT: `setup` (in the task, once its session and group are
/// made, before its children) or `restore` (in kstate, once its address
/// space is restored). Returns the message to fail with.
fn test_fail(point: &str, pid: i32) -> Option<String> {
    // Read once (the restorers, forks of kstate, inherit what was read).
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var_os("KSTATE_TEST_FAIL_AT").map(|v| v.to_string_lossy().into_owned())
    });
    let at = at.as_deref()?;
    let want = format!("{point}:{pid}");
    at.split(',')
        .any(|p| p == want)
        .then(|| format!("made to fail at {point} (KSTATE_TEST_FAIL_AT)"))
}

fn test_fail_in_task(point: &str, pid: i32) -> Result<(), String> {
    test_fail(point, pid).map_or(Ok(()), Err)
}

/// Waits for a "ready" line from every task.
fn wait_ready(
    res: &Resources,
    plan: &Plan<'_>,
    cleanup: &mut Cleanup,
) -> Result<HashMap<i32, i32>, RestartError> {
    let mut host: HashMap<i32, i32> = HashMap::new();
    let n = plan.tasks.len();
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut buf = Vec::new();
    let mut ready: Vec<i32> = Vec::with_capacity(n);
    let mut chunk = [0u8; 4096];
    while ready.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let missing: Vec<i32> = plan
                .tasks
                .iter()
                .map(|t| t.pid)
                .filter(|p| !ready.contains(p))
                .collect();
            return Err(RestartError::Restore {
                pid: missing.first().copied().unwrap_or(0),
                what: format!(
                    "not ready within {} s (tasks not ready: {missing:?})",
                    READY_TIMEOUT.as_secs()
                ),
            });
        }
        // Poll in short slices: a task that dies without a word (killed,
        // or crashed before it could report) is noticed at once, since
        // kstate is the subreaper of every task it makes.
        let slice = left.min(Duration::from_millis(50));
        if !sys::poll_in(res.ready_r.as_raw_fd(), slice).map_err(task_err(0, "poll"))? {
            // A dead task stays a zombie under its parent, itself blocked:
            // look for one among kstate's descendants.
            for pid in descendants() {
                let stat = procfs::read(&procfs::pid_path(pid, "stat")).unwrap_or_default();
                let state = stat
                    .iter()
                    .rposition(|&b| b == b')')
                    .and_then(|i| stat.get(i + 2))
                    .copied();
                // A task that failed says why before it exits: read that
                // first if it is there.
                let said = sys::poll_in(res.ready_r.as_raw_fd(), Duration::ZERO).unwrap_or(false);
                if state == Some(b'Z') && !said {
                    return Err(RestartError::Restore {
                        pid,
                        what: "a task being restored died before it was ready".into(),
                    });
                }
            }
            continue;
        }
        let k = nix::unistd::read(res.ready_r.as_fd(), &mut chunk)
            .map_err(|e| task_err(0, "read ready")(io::Error::from(e)))?;
        buf.extend_from_slice(&chunk[..k]);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            let (tag, rest) = line.split_at(1.min(line.len()));
            let mut words = rest.splitn(2, ' ');
            let pid: i32 = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if tag == "R" {
                let actual = words
                    .next()
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(pid);
                host.insert(pid, actual);
                cleanup.pids.push(actual);
                ready.push(pid);
            } else {
                return Err(RestartError::Restore {
                    pid,
                    what: words.next().unwrap_or("failed").to_string(),
                });
            }
        }
    }
    Ok(host)
}

fn wait_stopped(pid: i32) -> Result<(), RestartError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    match ptrace::wait_until(pid, deadline).map_err(task_err(pid, "waitpid"))? {
        Some(ptrace::Stop::Event { .. }) | Some(ptrace::Stop::Signal(_)) => Ok(()),
        Some(other) => Err(RestartError::Restore {
            pid,
            what: format!("died while being restored: {other:?}"),
        }),
        None => Err(RestartError::Timeout(READY_TIMEOUT.as_secs())),
    }
}

/// The restorer pipes and `--join-ns user` descriptor a restored task must
/// close or use, as kstate's own numbers (the same in every task).
#[derive(Clone, Copy)]
struct TaskFds {
    /// The ready and hold pipes and kstate's /proc.
    close: [RawFd; 3],
    proc: RawFd,
    user: Option<(RawFd, Option<(u32, u32)>)>,
    /// The image file, when the tasks read their pages from it.
    image: Option<RawFd>,
    /// Where the files a restorer opens for its restore start
    /// ([`preopen_base`]).
    preopen: RawFd,
}

fn inject_err(pid: i32) -> impl Fn(sys::inject::InjectError) -> RestartError {
    move |e| RestartError::Restore {
        pid,
        what: e.to_string(),
    }
}

/// Rebuilds every stopped restorer task into the checkpointed one. Each
/// task's address space is rebuilt and its core put back in two batches of
/// injected calls (see `sys::inject::Batch`): the first clears the
/// restorer's mappings, moves the specials and opens the files the saved
/// mappings need; the second makes the mappings and does everything else,
/// credentials last; then the pages are written and the registers set.
/// The stages go over all tasks in turn, each batch started in every task
/// before the first is awaited, so that the tasks run their batches side by
/// side while kstate prepares the next or writes pages.
fn restore_all(
    img: &Image<'_>,
    plan: &Plan<'_>,
    pids: &HashMap<i32, i32>,
    fds: TaskFds,
    own: &[crate::objects::mm::Vma],
) -> Result<(), RestartError> {
    // Every restorer is a fork of kstate: the same [vdso], at the same place.
    let vdso = own
        .iter()
        .find(|v| v.kind == crate::objects::mm::VmaKind::Vdso)
        .map(|v| (v.start, v.end));
    let syscall_ip = sys::inject::Injector::own_syscall_ip(vdso).map_err(inject_err(0))?;
    // 1. The first batch, started in every task: the whole restore but the
    // pages kstate writes itself, when the restorer opened the files its
    // mappings need (`preopen`); else the first half, which opens them.
    let mut first = Vec::with_capacity(plan.tasks.len());
    for t in &plan.tasks {
        log::debug!("restore: task {}", t.pid);
        let ierr = inject_err(t.pid);
        let mut inj = sys::inject::Injector::with_syscall_ip(t.pid, syscall_ip).map_err(&ierr)?;
        join_namespaces(plan, t, &mut inj, fds.proc)?;
        let opened = preopens(t).then_some(fds.preopen as u64);
        let (prepared, batch) = vma::prepare(t, &inj, own, &extra_opens(t), opened)?;
        if opened.is_some() {
            let layout = prepared.layout(None, &mut inj);
            let (b, checks) = second_batch(img, t, batch, &layout, pids, fds)?;
            let started = inj.start(b).map_err(&ierr)?;
            first.push((t, inj, First::Whole(checks), started));
        } else {
            let started = inj.start(batch).map_err(&ierr)?;
            first.push((t, inj, First::Half(prepared), started));
        }
    }
    // 2. As each first half ends, the second one.
    let mut second = Vec::with_capacity(first.len());
    for (t, mut inj, what, started) in first {
        let pid = t.pid;
        let ierr = inject_err(pid);
        let prepared = match what {
            First::Whole(checks) => {
                second.push((t, inj, checks, started, true));
                continue;
            }
            First::Half(prepared) => prepared,
        };
        let res = inj.complete(started).map_err(|e| match e {
            sys::inject::InjectError::Syscall {
                call: "open",
                errno,
                ..
            } => RestartError::Restore {
                pid,
                what: format!(
                    "opening a file of its mappings failed: {}",
                    io::Error::from_raw_os_error(errno)
                ),
            },
            e => ierr(e),
        })?;
        let layout = prepared.layout(Some(&res), &mut inj);
        if let Some(what) = test_fail("restore", pid) {
            return Err(RestartError::Restore { pid, what });
        }
        let b = sys::inject::Batch::new(layout.scratch, vma::SCRATCH_LEN as usize);
        let (b, checks) = second_batch(img, t, b, &layout, pids, fds)?;
        let started = inj.start(b).map_err(&ierr)?;
        second.push((t, inj, checks, started, false));
    }
    // 3. The pages, then the scratch area unmapped (started in every task,
    // then awaited).
    let mut work = Vec::with_capacity(second.len());
    for (t, mut inj, checks, started, whole) in second {
        let pid = t.pid;
        let ierr = inject_err(pid);
        let res = inj.complete(started).map_err(&ierr)?;
        if whole {
            if let Some(what) = test_fail("restore", pid) {
                return Err(RestartError::Restore { pid, what });
            }
        }
        let (core_checks, reads) = checks;
        core_checks.verify(pid, &res)?;
        reads.verify(pid, &res)?;
        vma::fill(img, t, &mut inj, fds.image.is_some())?;
        // The scratch area goes by a last call, single-stepped: the task
        // is then left for its own registers (one stop, not three).
        let args = [t.scratch, vma::SCRATCH_LEN, 0, 0, 0, 0];
        let ip = inj.syscall_ip();
        let end = match inj
            .last_call_start("munmap (the scratch area)", libc::SYS_munmap, args)
            .map_err(&ierr)?
        {
            Ok(last) => End::Last(last),
            Err(mut inj) => {
                inj.start_call(libc::SYS_munmap, args).map_err(&ierr)?;
                End::Session(Box::new(inj))
            }
        };
        work.push((t, end, ip));
    }
    // 4. The last calls awaited (or, for a task that had a signal held
    // back, the injection session ended: back in an event stop).
    let mut finishing = Vec::with_capacity(work.len());
    for (t, end, ip) in work {
        let ierr = inject_err(t.pid);
        match end {
            End::Last(last) => {
                last.complete().map_err(&ierr)?;
                finishing.push((t, None, ip));
            }
            End::Session(mut inj) => {
                inj.complete_call("munmap").map_err(&ierr)?;
                finishing.push((t, Some(inj.finish_start().map_err(&ierr)?), ip));
            }
        }
    }
    // 5. The registers.
    for (t, f, ip) in finishing {
        let pid = t.pid;
        if let Some(f) = f {
            f.complete().map_err(inject_err(pid))?;
        }
        let core = t.core.as_ref().ok_or_else(|| RestartError::Restore {
            pid,
            what: "no core record".into(),
        })?;
        put_back_sigtrap(pid, core, ip)?;
        task_core::restore_registers(pid, core)?;
        log::debug!("restore: task {pid} ready");
    }
    Ok(())
}

/// What the first batch of a task's restore is ([`restore_all`]).
enum First {
    /// The whole restore (the restorer opened the files).
    Whole(SecondChecks),
    /// The first half, which opens the files.
    Half(vma::Prepared),
}

/// The paths a task opens for its restore beyond its mappings' files:
/// ns_last_pid for the init of a pid namespace of the tree's own.
fn extra_opens(t: &TaskPlan<'_>) -> Vec<(&'static [u8], i32)> {
    if t.ns.last_pid.is_some() {
        vec![(b"/proc/sys/kernel/ns_last_pid", libc::O_WRONLY)]
    } else {
        Vec::new()
    }
}

/// How many of the files task `me`'s restorer opens for its restore it
/// finds open already, inherited from its parent's restorer at the same
/// descriptors: the files of mappings both lists begin with, when it is in
/// its parent's mount namespace and user namespace (the same paths name the
/// same files, opened with the same rights) — the children of one program
/// map the same files. The rest of the parent's are closed with everything
/// else it does not keep.
fn inherited_preopens(plan: &Plan<'_>, me: usize, list: &[(&[u8], i32)]) -> usize {
    let t = &plan.tasks[me];
    let Some(p) = t.parent.filter(|&p| preopens(&plan.tasks[p])) else {
        return 0;
    };
    if t.ns.mnt.is_some() || t.ns.user.is_some() {
        return 0;
    }
    // Not the extra ones (ns_last_pid), last in the list: which
    // namespace's that file writes is fixed when it is opened.
    let files = list.len().saturating_sub(extra_opens(t).len());
    let Ok(theirs) = vma::to_open(&plan.tasks[p], &[]) else {
        return 0;
    };
    list[..files]
        .iter()
        .zip(&theirs)
        .take_while(|(a, b)| a == b)
        .count()
}

/// Whether task `t`'s restorer opens the files of its restore itself
/// (`vma::to_open`), so that one batch does the whole restore: not when
/// it enters a namespace of another branch first (a mount namespace there
/// would change what the paths name).
fn preopens(t: &TaskPlan<'_>) -> bool {
    t.ns.joins.is_empty()
}

/// The first descriptor of the files a restorer opens for its restore:
/// past every descriptor it keeps (the only ones left above the base).
fn preopen_base(res: &Resources) -> RawFd {
    [
        Some(res.ready_w.as_raw_fd()),
        Some(res.hold_r.as_raw_fd()),
        Some(res.proc.as_raw_fd()),
        res.image.as_ref().map(|f| f.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    .chain(res.joins.iter().map(|j| j.fd.as_raw_fd()))
    .max()
    .unwrap_or(res.base)
    .max(res.base)
        + 1
}

/// Puts back task `pid`'s own SIGTRAP action, when it has one: the kernel
/// resets an ignored (or blocked) SIGTRAP to the default when it forces
/// the traps of the restore on the task (the runner's int3, the last
/// call's single step). One more session, whose calls are traced (stops
/// that raise no signal), sets it again; the trap the task is stopped in
/// is dropped, not queued again. Through the `syscall` instruction at `ip`
/// (the moved vdso's).
fn put_back_sigtrap(pid: i32, core: &TaskCoreView<'_>, ip: u64) -> Result<(), RestartError> {
    let Some(sa) = core
        .sigactions
        .iter()
        .find(|s| s.signo.get() == libc::SIGTRAP as u32)
    else {
        return Ok(());
    };
    let ierr = inject_err(pid);
    let mut inj = sys::inject::Injector::after_trap(pid, ip).map_err(&ierr)?;
    let raw = [
        sa.handler.get(),
        sa.flags.get(),
        sa.restorer.get(),
        sa.mask.get(),
    ];
    let bytes = zerocopy::IntoBytes::as_bytes(&raw);
    let at = inj.scratch(bytes.len()).map_err(&ierr)?;
    inj.write_mem(at, bytes).map_err(&ierr)?;
    inj.call(
        "rt_sigaction (SIGTRAP, after the restore's traps)",
        libc::SYS_rt_sigaction,
        [libc::SIGTRAP as u64, at, 0, 8, 0, 0],
    )
    .map_err(&ierr)?;
    inj.finish().map_err(&ierr)?;
    log::debug!("restore: task {pid}: its SIGTRAP action put back");
    Ok(())
}

/// How a task's injection ends ([`restore_all`], stage 3).
enum End {
    Last(sys::inject::LastCall),
    Session(Box<sys::inject::Injector>),
}

/// Enters the namespaces task `t` shares with a task of another branch
/// (`NsPlan::joins`), which that task made: by injected calls, each
/// namespace opened through kstate's /proc (`proc`, inherited) as the
/// maker's, before the first batch (whose opens must resolve in the task's
/// own mount namespace). Entering a mount namespace moves the root and
/// working directory to its root: the saved working directory is entered
/// again.
fn join_namespaces(
    plan: &Plan<'_>,
    t: &TaskPlan<'_>,
    inj: &mut sys::inject::Injector,
    proc: RawFd,
) -> Result<(), RestartError> {
    let pid = t.pid;
    let ierr = inject_err(pid);
    let mut mnt = false;
    for &(flag, name, by) in &t.ns.joins {
        let maker = plan.tasks.get(by).map_or(0, |m| m.pid);
        log::debug!("restore: task {pid} enters the {name} namespace of task {maker}");
        let path = format!("{maker}/ns/{name}\0");
        inj.write_mem(t.scratch, path.as_bytes()).map_err(&ierr)?;
        let fd = inj
            .call(
                "openat (a namespace of another branch)",
                libc::SYS_openat,
                [
                    proc as u64,
                    t.scratch,
                    (libc::O_RDONLY | libc::O_CLOEXEC) as u64,
                    0,
                    0,
                    0,
                ],
            )
            .map_err(&ierr)?;
        let r = inj.call(
            "setns (a namespace of another branch)",
            libc::SYS_setns,
            [fd, flag as u64, 0, 0, 0, 0],
        );
        inj.call("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0])
            .map_err(&ierr)?;
        r.map_err(&ierr)?;
        mnt |= flag == libc::CLONE_NEWNS;
    }
    if mnt {
        let core = t.core.as_ref().ok_or_else(|| RestartError::Restore {
            pid,
            what: "no core record".into(),
        })?;
        let mut cwd = core.cwd.to_vec();
        cwd.push(0);
        inj.write_mem(t.scratch, &cwd).map_err(&ierr)?;
        inj.call("chdir", libc::SYS_chdir, [t.scratch, 0, 0, 0, 0, 0])
            .map_err(&ierr)?;
    }
    Ok(())
}

/// The second batch of task `t`'s restore: its mappings and mm, its
/// process group, ns_last_pid, the restorer pipes closed, comm,
/// `--join-ns user`, then the core with the credentials last.
type SecondChecks = (task_core::CoreChecks, vma::PageReads);

fn second_batch(
    img: &Image<'_>,
    t: &TaskPlan<'_>,
    mut b: sys::inject::Batch,
    layout: &vma::Layout,
    pids: &HashMap<i32, i32>,
    fds: TaskFds,
) -> Result<(sys::inject::Batch, SecondChecks), RestartError> {
    let pid = t.pid;
    let core = t.core.as_ref().ok_or_else(|| RestartError::Restore {
        pid,
        what: "no core record".into(),
    })?;
    join_group(t, pids, &mut b)?;
    vma::map(t, layout, &mut b, fds.image.is_some())?;
    let reads = match fds.image {
        Some(fd) => {
            let r = vma::read_pages(img, t, fd as u64, &mut b)?;
            b.push(
                "close (the image)",
                libc::SYS_close,
                [fd as u64, 0, 0, 0, 0, 0],
            );
            r
        }
        None => vma::PageReads::default(),
    };
    if let (Some(last), Some(&fd)) = (t.ns.last_pid, layout.extra_fds.first()) {
        // The init of a pid namespace of the tree's own: its last_pid, now
        // that every task exists (ns_last_pid is the writer's namespace's).
        let text = last.to_string();
        let at = b.data(text.as_bytes());
        b.push(
            "write ns_last_pid",
            libc::SYS_write,
            [fd, at, text.len() as u64, 0, 0, 0],
        );
        b.push("close", libc::SYS_close, [fd, 0, 0, 0, 0, 0]);
    }
    for fd in fds.close {
        b.push(
            "close (restorer pipe)",
            libc::SYS_close,
            [fd as u64, 0, 0, 0, 0, 0],
        );
    }
    // The comm (the restorer's is "kstate").
    let mut comm = [0u8; 16];
    let c = t.task.comm();
    comm[..c.len().min(15)].copy_from_slice(&c[..c.len().min(15)]);
    let at = b.data(&comm);
    b.push(
        "prctl(PR_SET_NAME)",
        libc::SYS_prctl,
        [libc::PR_SET_NAME as u64, at, 0, 0, 0, 0],
    );
    if let Some((fd, _)) = fds.user {
        // `--join-ns user:…[:UID,GID]`, before the credentials: after them
        // the task may lack the right to enter it.
        b.push(
            "setns (user)",
            libc::SYS_setns,
            [fd as u64, libc::CLONE_NEWUSER as u64, 0, 0, 0, 0],
        );
        b.push("close", libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
    }
    let join_ids = fds.user.and_then(|(_, ids)| ids);
    // A restorer in kstate's own user namespace has kstate's capabilities
    // and setgroups state (read once, `own_restorer`); others are read.
    let known = own_restorer()
        .filter(|_| t.ns.user.is_none() && t.ns.creds.is_none())
        .map(|k| (k, t.task.nspid.last().map_or(0, |p| p.get() as u64)));
    let checks = super::userns::with_ns_creds(&t.ns, core, join_ids, |core| {
        task_core::restore(pid, core, &mut b, known)
    })?;
    Ok((b, (checks, reads)))
}

/// kstate's own /proc status and setgroups state, read once: what every
/// restorer outside a user namespace of the tree's own has (`None` if they
/// cannot be read: each task's are read then).
fn own_restorer() -> Option<&'static task_core::Restorer> {
    static OWN: std::sync::OnceLock<Option<task_core::Restorer>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        let path = PathBuf::from("/proc/self/status");
        let status = procfs::read(&path).ok()?;
        let setgroups_denied = procfs::read(Path::new("/proc/self/setgroups"))
            .is_ok_and(|s| procfs::trim(&s) == b"deny");
        Some(task_core::Restorer {
            path,
            status,
            setgroups_denied,
        })
    })
    .as_ref()
}

/// Restarts the tree of `opts.image`. Returns the root's exit code when
/// waiting for it, 0 when detached.
pub fn restart(opts: &RestartOptions) -> Result<i32, RestartError> {
    let t0 = Instant::now();
    let phase = |what: &str| {
        log::debug!(
            "restart: {what} at {:.2} ms",
            t0.elapsed().as_secs_f64() * 1e3
        )
    };
    let src = ImageSource::open(&opts.image)?;
    let img = Image::parse(src.bytes()).map_err(|source| RestartError::Format {
        path: opts.image.clone(),
        source,
    })?;
    phase("image validated");
    let mut plan = plan(&img)?;
    super::userns::check_join(&plan, &opts.join)?;
    plan_mounts(&img, &mut plan, opts)?;
    phase("planned");
    preflight(&plan)?;
    crate::objects::net_restore::preflight(&img, &opts.external_veth)?;
    super::freeze::test_pause("after-checks");
    // The test hooks' variable, read once here so that every restorer
    // inherits it.
    let _ = test_fail("", 0);
    phase("checks passed");
    let early = early_net(&img, &plan, opts)?;
    // The network namespace of the root, when the tree has only that one,
    // is configured by a thread of its own while the tasks are created and
    // restored (`net_thread`); the scope ends when that thread does, on
    // every path.
    std::thread::scope(|s| restart_tasks(s, &img, &src, plan, opts, early, t0))
}

/// The rest of [`restart`], once every check passed: the tasks created,
/// the network configured, the tasks restored and let go.
fn restart_tasks<'s, 'a: 's>(
    s: &'s std::thread::Scope<'s, '_>,
    img: &'s Image<'a>,
    src: &ImageSource,
    mut plan: Plan<'a>,
    opts: &'s RestartOptions,
    early: Option<u32>,
    t0: Instant,
) -> Result<i32, RestartError> {
    let phase = |what: &str| {
        log::debug!(
            "restart: {what} at {:.2} ms",
            t0.elapsed().as_secs_f64() * 1e3
        )
    };
    let mut res = open_resources(&plan, opts, src)?;
    phase("resources opened");
    sys::set_child_subreaper().map_err(task_err(0, "PR_SET_CHILD_SUBREAPER"))?;
    let mut cleanup = Cleanup {
        pids: Vec::new(),
        armed: true,
    };
    let own = vma::own_maps()?;
    let own_ranges: Vec<(u64, u64)> = own.iter().map(|v| (v.start, v.end)).collect();
    for t in plan.tasks.iter_mut() {
        t.scratch = vma::scratch_for(t, &own_ranges)?;
    }
    let root = plan.tasks[0].pid;
    // The root's mount namespace, prepared by a thread beside its creation
    // (`mnt_thread`): the root is then created in kstate's and enters it.
    let mnt_job = match early_mnt(&plan, opts) {
        Some(ns) => {
            let (ready, done) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| task_err(root, "pipe")(io::Error::from(e)))?;
            res.mnt_ready = Some(ready);
            plan.tasks[0].ns.clone_flags &= !(libc::CLONE_NEWNS as u64);
            let mounts = plan.mounts.clone();
            Some(s.spawn(move || mnt_thread(mounts, ns, done)))
        }
        None => None,
    };
    log::debug!("restart: checks passed; creating the root task {root}");
    let mut net_job = None;
    match super::userns::fork_task(&plan.tasks[0].ns) {
        Ok(0) => restorer_child(&plan, &res, 0),
        Ok(host_pid) => {
            cleanup.pids.push(root);
            // The root's network namespace exists from here on.
            if let Some(id) = early {
                net_job = net_thread(s, img, opts, id, host_pid);
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            return Err(RestartError::PidTaken {
                pid: root,
                comm: "a task that appeared after the checks".into(),
            })
        }
        Err(e) => return Err(task_err(root, "clone3 with set_tid")(e)),
    }
    let host = wait_ready(&res, &plan, &mut cleanup)?;
    phase("every task created");
    // The root is in its mount namespace: kstate's hold on it goes.
    drop(mnt_job.map(|h| h.join()));
    // From here on kstate knows each task by the pid it sees it as (the
    // same as the image's, unless the task is in a pid namespace of its own).
    let by_image: HashMap<i32, i32> = host.clone();
    for t in plan.tasks.iter_mut() {
        t.pid = by_image.get(&t.pid).copied().unwrap_or(t.pid);
    }
    let root = plan.tasks[0].pid;
    // The early one, if any, was opened when the root was made: should that
    // have failed, it is configured here with the others.
    let early = early.filter(|_| net_job.is_some());
    let net_guard = restore_net(img, &plan, opts, early)?;
    cleanup.pids.sort_unstable();
    cleanup.pids.dedup();
    // Every task is seized and asked to stop first, then each stop is
    // awaited: the stops happen meanwhile, side by side.
    for t in &plan.tasks {
        ptrace::seize(t.pid).map_err(task_err(t.pid, "PTRACE_SEIZE"))?;
        ptrace::interrupt(t.pid).map_err(task_err(t.pid, "PTRACE_INTERRUPT"))?;
    }
    for t in &plan.tasks {
        wait_stopped(t.pid)?;
    }
    phase("every task seized");
    let fds = TaskFds {
        close: [
            res.ready_w.as_raw_fd(),
            res.hold_r.as_raw_fd(),
            res.proc.as_raw_fd(),
        ],
        proc: res.proc.as_raw_fd(),
        user: res
            .joins
            .iter()
            .find(|j| j.kind == NsKind::User)
            .map(|j| (j.fd.as_raw_fd(), j.ids)),
        image: res.image.as_ref().map(|f| f.as_raw_fd()),
        preopen: preopen_base(&res),
    };
    restore_all(img, &plan, &by_image, fds, &own)?;
    phase("every task restored");
    let early_guard = match net_job {
        Some(h) => Some(h.join().unwrap_or_else(|_| {
            Err(RestartError::Restore {
                pid: root,
                what: "the network configuration thread panicked".into(),
            })
        })?),
        None => None,
    };
    phase("network configured");
    for t in &plan.tasks {
        ptrace::detach(t.pid, 0).map_err(task_err(t.pid, "PTRACE_DETACH"))?;
    }
    phase("every task detached");
    drop(res);
    cleanup.armed = false;
    net_guard.disarm();
    if let Some(g) = early_guard {
        g.disarm();
    }
    if let Some(p) = &opts.pidfile {
        std::fs::write(p, format!("{root}\n")).map_err(|e| RestartError::File {
            path: p.display().to_string(),
            what: format!("cannot write the pidfile: {e}"),
        })?;
    }
    log::info!("restart: {} tasks running, root {root}", plan.tasks.len());
    if opts.detached {
        return Ok(0);
    }
    wait_root(root)
}

/// The mounts of the tree's own mount namespaces, and the checks only the
/// whole plan allows: each namespace's proc mounts show the pid namespace
/// of the task that makes it, each external mount has its path.
fn plan_mounts<'a>(
    img: &Image<'a>,
    plan: &mut Plan<'a>,
    opts: &RestartOptions,
) -> Result<(), RestartError> {
    use crate::objects::mnt_ns;
    plan.mounts = mnt_ns::plan(img, &opts.external).map_err(RestartError::Unsupported)?;
    if opts.join.iter().any(|j| j.kind == NsKind::Mnt) {
        return Ok(());
    }
    for t in &plan.tasks {
        if let Some(ns) = t.ns.mnt {
            let pid_ns = nsproxy_ids(img, &t.task)?[4];
            mnt_ns::check_maker(&plan.mounts, ns, pid_ns, t.pid)
                .map_err(RestartError::Unsupported)?;
        }
    }
    Ok(())
}

/// Configures the tree's own network namespaces (objects/net_restore.rs),
/// each reached through the first restored task that lives in it; the
/// root's is left alone when `--join-ns net` or `--empty-ns net` replaced it.
fn restore_net(
    img: &Image<'_>,
    plan: &Plan<'_>,
    opts: &RestartOptions,
    done: Option<u32>,
) -> Result<crate::objects::net_restore::NetGuard, RestartError> {
    let replaced =
        opts.empty.contains(&NsKind::Net) || opts.join.iter().any(|j| j.kind == NsKind::Net);
    let mut netns: HashMap<u32, OwnedFd> = HashMap::new();
    // The root's namespace, and with it every task's that inherited it.
    let skip = replaced
        .then(|| nsproxy_ids(img, &plan.tasks[0].task))
        .transpose()?
        .map(|ids| ids[6]);
    for t in &plan.tasks {
        let net = nsproxy_ids(img, &t.task)?[6];
        if netns.contains_key(&net) || skip == Some(net) || done == Some(net) {
            continue;
        }
        let external = img
            .object(net)
            .ok()
            .and_then(|o| o.ns_common().map(|c| c.is_external()))
            .unwrap_or(true);
        if external {
            continue;
        }
        let path = format!("/proc/{}/ns/net", t.pid);
        let fd = std::fs::File::open(&path).map_err(|e| RestartError::File {
            path: path.clone(),
            what: format!("cannot open the network namespace of task {}: {e}", t.pid),
        })?;
        netns.insert(net, fd.into());
    }
    Ok(crate::objects::net_restore::restore(
        img,
        &netns,
        &opts.external_veth,
    )?)
}

/// The network namespace a thread may configure while the tasks are made
/// ([`net_thread`]): the root's, when it creates it and it is the tree's
/// only one (no other to make first, no veth to reach across), outside any
/// user namespace of the tree's own, and not replaced by `--join-ns net`
/// or `--empty-ns net`.
fn early_net(
    img: &Image<'_>,
    plan: &Plan<'_>,
    opts: &RestartOptions,
) -> Result<Option<u32>, RestartError> {
    let replaced =
        opts.empty.contains(&NsKind::Net) || opts.join.iter().any(|j| j.kind == NsKind::Net);
    let root = &plan.tasks[0];
    if replaced
        || root.ns.clone_flags & libc::CLONE_NEWNET as u64 == 0
        || plan.tasks.iter().any(|t| t.ns.user.is_some())
    {
        return Ok(None);
    }
    let id = nsproxy_ids(img, &root.task)?[6];
    for t in &plan.tasks[1..] {
        let net = nsproxy_ids(img, &t.task)?[6];
        let external = img
            .object(net)
            .ok()
            .and_then(|o| o.ns_common().map(|c| c.is_external()))
            .unwrap_or(false);
        if net != id && !external {
            return Ok(None);
        }
    }
    Ok(Some(id))
}

/// Configures network namespace `id`, the one root task `host_pid` was
/// just created in, from a thread of its own (`objects/net_restore.rs`),
/// side by side with the creation and restore of the tasks; joined before
/// they are let go. `None` if the namespace cannot be opened (the root
/// already died: its error comes through the ready pipe).
fn net_thread<'s>(
    s: &'s std::thread::Scope<'s, '_>,
    img: &'s Image<'_>,
    opts: &'s RestartOptions,
    id: u32,
    host_pid: i32,
) -> Option<
    std::thread::ScopedJoinHandle<'s, Result<crate::objects::net_restore::NetGuard, RestartError>>,
> {
    let path = format!("/proc/{host_pid}/ns/net");
    let fd: OwnedFd = std::fs::File::open(&path).ok()?.into();
    Some(s.spawn(move || {
        let netns = HashMap::from([(id, fd)]);
        let guard = crate::objects::net_restore::restore(img, &netns, &opts.external_veth)?;
        log::debug!("restart: net_ns #{id} configured beside the tasks");
        Ok(guard)
    }))
}

/// Waits for the root, reaping orphans meanwhile; returns its exit code
/// (128 + signal when killed, as shells do).
fn wait_root(root: i32) -> Result<i32, RestartError> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == root => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p.as_raw() == root => {
                return Ok(128 + sig as i32)
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(task_err(root, "waitpid")(io::Error::from(e))),
        }
    }
}
