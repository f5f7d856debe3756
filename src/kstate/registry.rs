//! The object registry of a checkpoint: every kernel object the tree uses,
//! keyed by its kernel identity, recorded once however many tasks share it,
//! with a count of its users inside the tree.
//!
//! A namespace entry holds an open descriptor of the namespace, which pins
//! it for as long as the checkpoint runs (the userspace counterpart of the
//! in-kernel design's get_*_ns()).

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use crate::image::format::Setgroups;
use crate::image::{Kind, Ref};

/// The eight namespace types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    User,
    Pid,
    Uts,
    Ipc,
    Mnt,
    Net,
    Cgroup,
    Time,
}

impl NsKind {
    pub const ALL: [NsKind; 8] = [
        NsKind::User,
        NsKind::Pid,
        NsKind::Uts,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The record kind of this namespace type.
    pub fn image_kind(self) -> Kind {
        match self {
            NsKind::User => Kind::UserNs,
            NsKind::Pid => Kind::PidNs,
            NsKind::Uts => Kind::UtsNs,
            NsKind::Ipc => Kind::IpcNs,
            NsKind::Mnt => Kind::MntNs,
            NsKind::Net => Kind::NetNs,
            NsKind::Cgroup => Kind::CgroupNs,
            NsKind::Time => Kind::TimeNs,
        }
    }

    /// The type word the kernel prints in a namespace link (`pid:[…]`).
    pub fn link_type(self) -> &'static [u8] {
        match self {
            NsKind::User => b"user",
            NsKind::Pid => b"pid",
            NsKind::Uts => b"uts",
            NsKind::Ipc => b"ipc",
            NsKind::Mnt => b"mnt",
            NsKind::Net => b"net",
            NsKind::Cgroup => b"cgroup",
            NsKind::Time => b"time",
        }
    }

    pub fn from_link_type(t: &[u8]) -> Option<NsKind> {
        NsKind::ALL.into_iter().find(|k| k.link_type() == t)
    }

    /// The CLONE_NEW* flag, for setns(2).
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NsKind::User => libc::CLONE_NEWUSER,
            NsKind::Pid => libc::CLONE_NEWPID,
            NsKind::Uts => libc::CLONE_NEWUTS,
            NsKind::Ipc => libc::CLONE_NEWIPC,
            NsKind::Mnt => libc::CLONE_NEWNS,
            NsKind::Net => libc::CLONE_NEWNET,
            NsKind::Cgroup => libc::CLONE_NEWCGROUP,
            NsKind::Time => libc::CLONE_NEWTIME,
        }
    }
}

impl std::fmt::Display for NsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.image_kind().name())
    }
}

/// A namespace's kernel identity: type, and device + inode of its nsfs file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NsKey {
    pub kind: NsKind,
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for NsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:[{}]", self.kind, self.ino)
    }
}

/// What a namespace holds, by type (filled for namespaces inside the tree).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NsContents {
    /// External, or a type whose contents come in a later format version.
    #[default]
    None,
    User {
        uid_map: Vec<[u32; 3]>,
        gid_map: Vec<[u32; 3]>,
        setgroups: Setgroups,
    },
    Pid {
        last_pid: u32,
    },
    Uts {
        hostname: Vec<u8>,
        domainname: Vec<u8>,
    },
    Time {
        monotonic: (i64, i64),
        boottime: (i64, i64),
    },
    Ipc(crate::objects::ipc_ns::IpcValues),
}

/// One namespace in the registry.
#[derive(Debug)]
pub struct NsObject {
    pub key: NsKey,
    /// Pins the namespace while the checkpoint runs; also used to enter it.
    pub fd: OwnedFd,
    /// Nsproxy slots of tree tasks that use it.
    pub users: u32,
    /// Used by processes outside the tree.
    pub external: bool,
    /// Owning user namespace (for a user namespace: its parent).
    pub owner: Option<usize>,
    /// Parent (pid and user namespaces).
    pub parent: Option<usize>,
    /// Depth below the checkpointer's own namespace of this type.
    pub level: u32,
    pub contents: NsContents,
    /// Assigned when dumped.
    pub image_ref: Ref,
}

/// The namespaces one task uses, by registry index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NsproxyKey {
    pub user: usize,
    pub uts: usize,
    pub ipc: usize,
    pub mnt: usize,
    pub pid: usize,
    pub pid_for_children: usize,
    pub net: usize,
    pub cgroup: usize,
    pub time: usize,
    pub time_for_children: usize,
}

impl NsproxyKey {
    pub fn slots(&self) -> [usize; 10] {
        [
            self.user,
            self.uts,
            self.ipc,
            self.mnt,
            self.pid,
            self.pid_for_children,
            self.net,
            self.cgroup,
            self.time,
            self.time_for_children,
        ]
    }
}

#[derive(Debug)]
pub struct NsproxyObject {
    pub key: NsproxyKey,
    pub users: u32,
    pub image_ref: Ref,
}

/// What kstate records of a task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: i32,
    pub ppid: u32,
    pub nspid: Vec<u32>,
    pub nstgid: Vec<u32>,
    pub nspgid: Vec<u32>,
    pub nssid: Vec<u32>,
    pub comm: Vec<u8>,
    pub exe: Vec<u8>,
    /// Each thread's NSpid, the leader first.
    pub threads: Vec<Vec<u32>>,
}

/// A task's own state (core, memory, files), collected for restart.
#[derive(Debug)]
pub struct TaskState {
    pub core: crate::objects::core::CoreInfo,
    pub mm: crate::objects::mm::MmInfo,
    pub fds: Vec<crate::objects::files::FdInfo>,
}

#[derive(Debug)]
pub struct TaskObject {
    pub info: TaskInfo,
    pub state: Option<TaskState>,
    /// Registry index of the parent task; `None` for the root.
    pub parent: Option<usize>,
    pub nsproxy: usize,
    pub image_ref: Ref,
}

/// Every object of one checkpoint.
#[derive(Debug, Default)]
pub struct Registry {
    pub namespaces: Vec<NsObject>,
    ns_index: HashMap<NsKey, usize>,
    pub nsproxies: Vec<NsproxyObject>,
    nsproxy_index: HashMap<NsproxyKey, usize>,
    pub tasks: Vec<TaskObject>,
    task_index: HashMap<i32, usize>,
    /// The mounts of each mount namespace of the tree's own.
    pub mount_tables: Vec<crate::objects::mnt_ns::MountTable>,
    /// Every pipe the tree's fds refer to, once each.
    pub pipes: Vec<crate::objects::files::PipeInfo>,
    /// The contents of the tree's own network namespaces.
    pub net: Vec<crate::objects::net::NetContents>,
}

impl Registry {
    pub fn find_ns(&self, key: &NsKey) -> Option<usize> {
        self.ns_index.get(key).copied()
    }

    /// Adds a namespace not seen before; returns its index.
    pub fn insert_ns(&mut self, key: NsKey, fd: OwnedFd) -> usize {
        if let Some(i) = self.find_ns(&key) {
            return i;
        }
        let i = self.namespaces.len();
        log::debug!("collect: {key} registered");
        self.namespaces.push(NsObject {
            key,
            fd,
            users: 0,
            external: false,
            owner: None,
            parent: None,
            level: 0,
            contents: NsContents::None,
            image_ref: Ref::UNDEF,
        });
        self.ns_index.insert(key, i);
        i
    }

    /// Records a task's use of an nsproxy: the nsproxy once, and one more
    /// user for it and for each namespace in it.
    pub fn use_nsproxy(&mut self, key: NsproxyKey) -> usize {
        let i = match self.nsproxy_index.get(&key) {
            Some(&i) => i,
            None => {
                let i = self.nsproxies.len();
                self.nsproxies.push(NsproxyObject {
                    key,
                    users: 0,
                    image_ref: Ref::UNDEF,
                });
                self.nsproxy_index.insert(key, i);
                log::debug!("collect: nsproxy {i} registered");
                i
            }
        };
        self.nsproxies[i].users += 1;
        let mut slots = key.slots();
        slots.sort_unstable();
        let mut last = None;
        for s in slots {
            // A namespace in two slots (pid and pid_for_children) counts once.
            if last != Some(s) {
                self.namespaces[s].users += 1;
            }
            last = Some(s);
        }
        i
    }

    pub fn add_task(&mut self, info: TaskInfo, parent: Option<usize>, nsproxy: usize) -> usize {
        let i = self.tasks.len();
        log::debug!(
            "collect: task {} ({}) registered",
            info.pid,
            crate::procfs::show(&info.comm)
        );
        self.task_index.insert(info.pid, i);
        self.tasks.push(TaskObject {
            info,
            state: None,
            parent,
            nsproxy,
            image_ref: Ref::UNDEF,
        });
        i
    }

    pub fn find_task(&self, pid: i32) -> Option<usize> {
        self.task_index.get(&pid).copied()
    }

    /// Index of a namespace by kind and inode (links show no device).
    pub fn inode_index(&self) -> HashMap<(NsKind, u64), usize> {
        self.namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| ((n.key.kind, n.key.ino), i))
            .collect()
    }
}
