//! The on-disk layout of a kstate image, version 1.
//!
//! Every structure here is `repr(C)`, little-endian (`zerocopy::little_endian`
//! field types, alignment 1) and has no implicit padding, so a record can be
//! borrowed straight from a mapped file. ARCHITECTURE.md describes the layout
//! record by record; keep the two in step.
//!
//! Rules every record follows:
//! - a record is a [`RecordHeader`] and a payload; the payload is a fixed part
//!   (`fixed_len` bytes, a struct below) followed by variable parts whose counts
//!   are fields of the fixed part, in the order the struct documents;
//! - fields are only ever appended to a fixed part: a reader that meets a
//!   shorter fixed part (an older writer) reads the missing fields as zero;
//! - a reference ([`Ref`]) names an earlier record by id; id 0 is UNDEF.

use zerocopy::little_endian::{I64, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// First bytes of every image. The `\x89` and `\n` catch text-mode mangling.
pub const MAGIC: [u8; 8] = *b"KSTATE\x89\n";
/// First bytes of the trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"KSTEND\x89\n";
/// Format major version: a reader refuses any other major.
pub const MAJOR: u16 = 1;
/// Format minor version: only appended fields or new optional kinds.
pub const MINOR: u16 = 3;
/// AUDIT_ARCH_X86_64, as in `<linux/audit.h>`.
pub const ARCH_X86_64: u32 = 0xC000_003E;
/// Records start on this alignment; padding between them is zero.
pub const RECORD_ALIGN: u64 = 8;
/// Extent data starts at a file offset that is a multiple of this.
pub const EXTENT_ALIGN: u64 = 4096;
/// Required-feature bits this reader understands (none yet in v1).
pub const KNOWN_REQUIRED_FEATURES: u64 = 0;

/// The file header, at offset 0.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct FileHeader {
    pub magic: [u8; 8],
    pub major: U16,
    pub minor: U16,
    /// Size of this header in bytes (128 in v1).
    pub header_len: U32,
    /// AUDIT_ARCH_* of the checkpointed tasks.
    pub arch: U32,
    pub page_size: U32,
    /// Features a reader must understand to use the image at all.
    pub required_features: U64,
    /// Features a reader may ignore.
    pub optional_features: U64,
    /// `uname -r` of the checkpointing kernel, NUL padded (information only).
    pub kernel_release: [u8; 64],
    pub reserved: [u8; 24],
}

/// The header in front of every record.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct RecordHeader {
    /// CRC32 (IEEE) of the rest of the record: this header after this
    /// field, then the payload. First, so that what it covers is one
    /// contiguous range of the file; every byte of a record is covered.
    pub crc: U32,
    /// A [`Kind`] value.
    pub kind: U16,
    /// The record's own version (1 for every kind in format 1.0).
    pub version: U16,
    /// Size of this header (32).
    pub header_len: U16,
    /// Length of the fixed part at the start of the payload.
    pub fixed_len: U16,
    /// Position of the record in the file, counted from 1.
    pub id: U32,
    /// Record flags: none are defined in v1, so it must be zero.
    pub flags: U32,
    pub reserved: U32,
    pub payload_len: U64,
}

impl RecordHeader {
    /// A CRC state fed this header after its `crc` field: feed it the
    /// payload and finalize to get the record's CRC.
    pub fn crc_start(&self) -> crc32fast::Hasher {
        let mut c = crc32fast::Hasher::new();
        c.update(&self.as_bytes()[4..]);
        c
    }

    /// The CRC of a record with this header and `payload`.
    pub fn crc_of(&self, payload: &[u8]) -> u32 {
        let mut c = self.crc_start();
        c.update(payload);
        c.finalize()
    }
}

/// One entry of the record index, which follows the last record.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct IndexEntry {
    /// File offset of the record header.
    pub offset: U64,
    pub kind: U16,
    pub version: U16,
    pub reserved: U32,
}

/// The last bytes of the file.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct Trailer {
    pub magic: [u8; 8],
    /// Length of the whole file, trailer included.
    pub total_len: U64,
    pub index_offset: U64,
    pub record_count: U32,
    /// CRC32 over the file header, the index, and this trailer up to this field.
    pub crc: U32,
}

/// A typed reference to an earlier record: its id and kind. All zero is UNDEF.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct Ref {
    pub id: U32,
    pub kind: U16,
    pub reserved: U16,
}

impl Ref {
    pub const UNDEF: Ref = Ref {
        id: U32::ZERO,
        kind: U16::ZERO,
        reserved: U16::ZERO,
    };

    pub fn new(kind: Kind, id: u32) -> Ref {
        Ref {
            id: U32::new(id),
            kind: U16::new(kind as u16),
            reserved: U16::ZERO,
        }
    }

    pub fn is_undef(&self) -> bool {
        self.id.get() == 0
    }

    /// The id, or `None` for UNDEF.
    pub fn id(&self) -> Option<u32> {
        match self.id.get() {
            0 => None,
            id => Some(id),
        }
    }
}

/// Record kinds. Stored as a raw `u16`; converted with [`Kind::from_raw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Kind {
    UserNs = 1,
    PidNs = 2,
    UtsNs = 3,
    IpcNs = 4,
    MntNs = 5,
    NetNs = 6,
    CgroupNs = 7,
    TimeNs = 8,
    Nsproxy = 9,
    Task = 10,
    /// Page-aligned bulk data (memory pages, from format 1.0 on).
    Extent = 11,
    /// Registers, signals, timers, credentials and limits of a task (1.1).
    TaskCore = 12,
    /// The mm of a task: its layout fields, auxv and exe (1.1).
    Mm = 13,
    /// One memory mapping of a task, with the runs of pages dumped (1.1).
    Vma = 14,
    /// A pipe and the bytes in flight in it (1.1).
    Pipe = 15,
    /// One entry of a task's fd table (1.1).
    Fd = 16,
    /// Network namespace contents (see image/net.rs): a link, an address,
    /// a route, a policy rule, a netns id, a sysctl.
    NetLink = 17,
    NetAddr = 18,
    NetRoute = 19,
    NetRule = 20,
    NetNsid = 21,
    /// Record version 2 (1.3) appends its flags.
    NetSysctl = 22,
    /// One mount of a mount namespace of the tree's own (1.2).
    Mount = 27,
    /// One file, directory or link of a tmpfs mount (1.2).
    MntFile = 28,
}

impl Kind {
    pub const ALL: [Kind; 24] = [
        Kind::UserNs,
        Kind::PidNs,
        Kind::UtsNs,
        Kind::IpcNs,
        Kind::MntNs,
        Kind::NetNs,
        Kind::CgroupNs,
        Kind::TimeNs,
        Kind::Nsproxy,
        Kind::Task,
        Kind::Extent,
        Kind::TaskCore,
        Kind::Mm,
        Kind::Vma,
        Kind::Pipe,
        Kind::Fd,
        Kind::NetLink,
        Kind::NetAddr,
        Kind::NetRoute,
        Kind::NetRule,
        Kind::NetNsid,
        Kind::NetSysctl,
        Kind::Mount,
        Kind::MntFile,
    ];

    pub fn from_raw(raw: u16) -> Option<Kind> {
        Some(match raw {
            1 => Kind::UserNs,
            2 => Kind::PidNs,
            3 => Kind::UtsNs,
            4 => Kind::IpcNs,
            5 => Kind::MntNs,
            6 => Kind::NetNs,
            7 => Kind::CgroupNs,
            8 => Kind::TimeNs,
            9 => Kind::Nsproxy,
            10 => Kind::Task,
            11 => Kind::Extent,
            12 => Kind::TaskCore,
            13 => Kind::Mm,
            14 => Kind::Vma,
            15 => Kind::Pipe,
            16 => Kind::Fd,
            17 => Kind::NetLink,
            18 => Kind::NetAddr,
            19 => Kind::NetRoute,
            20 => Kind::NetRule,
            21 => Kind::NetNsid,
            22 => Kind::NetSysctl,
            27 => Kind::Mount,
            28 => Kind::MntFile,
            _ => return None,
        })
    }

    /// The name used by `kstate show` and in errors.
    pub fn name(self) -> &'static str {
        match self {
            Kind::UserNs => "user_ns",
            Kind::PidNs => "pid_ns",
            Kind::UtsNs => "uts_ns",
            Kind::IpcNs => "ipc_ns",
            Kind::MntNs => "mnt_ns",
            Kind::NetNs => "net_ns",
            Kind::CgroupNs => "cgroup_ns",
            Kind::TimeNs => "time_ns",
            Kind::Nsproxy => "nsproxy",
            Kind::Task => "task",
            Kind::Extent => "extent",
            Kind::TaskCore => "task_core",
            Kind::Mm => "mm",
            Kind::Vma => "vma",
            Kind::Pipe => "pipe",
            Kind::Fd => "fd",
            Kind::NetLink => "net_link",
            Kind::NetAddr => "net_addr",
            Kind::NetRoute => "net_route",
            Kind::NetRule => "net_rule",
            Kind::NetNsid => "net_nsid",
            Kind::NetSysctl => "net_sysctl",
            Kind::Mount => "mount",
            Kind::MntFile => "mnt_file",
        }
    }

    /// True for the eight namespace kinds.
    pub fn is_namespace(self) -> bool {
        (self as u16) <= Kind::TimeNs as u16
    }

    /// The latest record version this build writes and reads.
    pub fn current_version(self) -> u16 {
        match self {
            Kind::IpcNs | Kind::NetSysctl => 2,
            _ => 1,
        }
    }

    /// Size of the fixed part of `version` (0 for a version that does not
    /// exist).
    pub fn fixed_len(self, version: u16) -> usize {
        match (self, version) {
            (Kind::IpcNs, 2) => core::mem::size_of::<IpcNsRecord>(),
            (Kind::NetSysctl, 2) => core::mem::size_of::<super::net::NetSysctlRecord>(),
            (_, 1) => self.min_fixed_len(),
            _ => 0,
        }
    }

    /// Size of the fixed part in version 1, the smallest a reader accepts.
    pub fn min_fixed_len(self) -> usize {
        use core::mem::size_of;
        match self {
            Kind::UserNs => size_of::<UserNsRecord>(),
            Kind::PidNs => size_of::<PidNsRecord>(),
            Kind::UtsNs => size_of::<UtsNsRecord>(),
            Kind::IpcNs | Kind::MntNs | Kind::NetNs | Kind::CgroupNs => size_of::<NsCommon>(),
            Kind::TimeNs => size_of::<TimeNsRecord>(),
            Kind::Nsproxy => size_of::<NsproxyRecord>(),
            Kind::Task => size_of::<TaskRecord>(),
            Kind::Extent => size_of::<ExtentRecord>(),
            Kind::TaskCore => size_of::<TaskCoreRecord>(),
            Kind::Mm => size_of::<MmRecord>(),
            Kind::Vma => size_of::<VmaRecord>(),
            Kind::Pipe => size_of::<PipeRecord>(),
            Kind::Fd => size_of::<FdRecord>(),
            Kind::NetLink => size_of::<super::net::NetLinkRecord>(),
            Kind::NetAddr => size_of::<super::net::NetAddrRecord>(),
            Kind::NetRoute => size_of::<super::net::NetRouteRecord>(),
            Kind::NetRule => size_of::<super::net::NetRuleRecord>(),
            Kind::NetNsid => size_of::<super::net::NetNsidRecord>(),
            Kind::NetSysctl => super::net::NET_SYSCTL_V1_LEN,
            Kind::Mount => size_of::<MountRecord>(),
            Kind::MntFile => size_of::<MntFileRecord>(),
        }
    }
}

impl core::fmt::Display for Kind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Flags shared by all namespace records.
pub mod ns_flags {
    /// Used by processes outside the tree: referenced, contents not dumped.
    pub const EXTERNAL: u32 = 1;
    pub const KNOWN: u32 = EXTERNAL;
}

/// The fixed prefix of every namespace record.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct NsCommon {
    /// [`ns_flags`].
    pub flags: U32,
    /// Tasks of the tree whose nsproxy uses this namespace.
    pub users: U32,
    /// Device and inode of the nsfs file at checkpoint (identity, information only).
    pub dev: U64,
    pub ino: U64,
    /// The owning user namespace (for a user namespace: its parent); UNDEF at
    /// the top of the hierarchy.
    pub owner: Ref,
}

impl NsCommon {
    pub fn is_external(&self) -> bool {
        self.flags.get() & ns_flags::EXTERNAL != 0
    }
}

/// A user namespace. Its parent is `common.owner`.
/// Variable parts: `uid_extents` × [`IdExtent`], then `gid_extents` × [`IdExtent`].
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct UserNsRecord {
    pub common: NsCommon,
    /// Depth: 0 for the topmost user namespace the checkpointer sees.
    pub level: U32,
    /// [`Setgroups`] as a raw value.
    pub setgroups: U32,
    pub uid_extents: U32,
    pub gid_extents: U32,
}

/// One line of uid_map or gid_map; `lower_first` is in the parent namespace.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct IdExtent {
    pub first: U32,
    pub lower_first: U32,
    pub count: U32,
}

/// The content of /proc/PID/setgroups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setgroups {
    Unknown = 0,
    Allow = 1,
    Deny = 2,
}

impl Setgroups {
    pub fn from_raw(raw: u32) -> Option<Setgroups> {
        match raw {
            0 => Some(Setgroups::Unknown),
            1 => Some(Setgroups::Allow),
            2 => Some(Setgroups::Deny),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Setgroups::Unknown => "unknown",
            Setgroups::Allow => "allow",
            Setgroups::Deny => "deny",
        }
    }
}

/// A pid namespace. Pid namespaces come by level, parent first: `parent` is
/// an earlier pid namespace exactly one level up, or UNDEF for the topmost.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct PidNsRecord {
    pub common: NsCommon,
    pub parent: Ref,
    pub level: U32,
    /// The last pid allocated in this namespace (its ns_last_pid).
    pub last_pid: U32,
}

/// A uts namespace. Variable parts: `hostname_len` bytes, then `domainname_len` bytes.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct UtsNsRecord {
    pub common: NsCommon,
    pub hostname_len: U32,
    pub domainname_len: U32,
}

/// The ipc sysctls an ipc namespace carries, in [`IPC_SYSCTLS`] order.
pub const IPC_SYSCTL_COUNT: usize = 16;

/// The files (under /proc/sys) of [`IpcNsRecord::sysctls`], in order.
pub const IPC_SYSCTLS: [&str; IPC_SYSCTL_COUNT] = [
    "kernel/msgmax",
    "kernel/msgmnb",
    "kernel/msgmni",
    "kernel/shmmax",
    "kernel/shmall",
    "kernel/shmmni",
    "kernel/shm_rmid_forced",
    "kernel/msg_next_id",
    "kernel/sem_next_id",
    "kernel/shm_next_id",
    "fs/mqueue/queues_max",
    "fs/mqueue/msg_max",
    "fs/mqueue/msgsize_max",
    "fs/mqueue/msg_default",
    "fs/mqueue/msgsize_default",
    "kernel/sem",
];

/// An ipc namespace. Version 1 was [`NsCommon`] alone; version 2 appends
/// the sysctls (a version-1 record reads with `recorded` 0: none known).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct IpcNsRecord {
    pub common: NsCommon,
    /// 1 when the values below were read (an internal namespace).
    pub recorded: U32,
    pub reserved: U32,
    /// Values of [`IPC_SYSCTLS`]; `kernel/sem`'s four numbers are the last
    /// entry and [`IpcNsRecord::sem`].
    pub sysctls: [I64; IPC_SYSCTL_COUNT - 1],
    /// kernel/sem: semmsl, semmns, semopm, semmni.
    pub sem: [I64; 4],
}

/// A time namespace with its clock offsets.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct TimeNsRecord {
    pub common: NsCommon,
    pub monotonic_sec: I64,
    pub monotonic_nsec: I64,
    pub boottime_sec: I64,
    pub boottime_nsec: I64,
}

/// The set of namespaces a task uses; shared by every task with the same set.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct NsproxyRecord {
    /// Tasks of the tree that use exactly this set.
    pub users: U32,
    pub reserved: U32,
    pub user: Ref,
    pub uts: Ref,
    pub ipc: Ref,
    pub mnt: Ref,
    pub pid: Ref,
    pub pid_for_children: Ref,
    pub net: Ref,
    pub cgroup: Ref,
    pub time: Ref,
    pub time_for_children: Ref,
}

impl NsproxyRecord {
    /// Each reference with its field name and the kind it must point to.
    pub fn refs(&self) -> [(&'static str, Ref, Kind); 10] {
        [
            ("user", self.user, Kind::UserNs),
            ("uts", self.uts, Kind::UtsNs),
            ("ipc", self.ipc, Kind::IpcNs),
            ("mnt", self.mnt, Kind::MntNs),
            ("pid", self.pid, Kind::PidNs),
            ("pid_for_children", self.pid_for_children, Kind::PidNs),
            ("net", self.net, Kind::NetNs),
            ("cgroup", self.cgroup, Kind::CgroupNs),
            ("time", self.time, Kind::TimeNs),
            ("time_for_children", self.time_for_children, Kind::TimeNs),
        ]
    }
}

/// A task (thread group). Tasks come parent first.
/// Variable parts, each `levels` × u32 unless said: `nspid`, `nstgid`,
/// `nspgid`, `nssid` (outermost level first, as in /proc/PID/status);
/// `threads` × `levels` × u32 (each thread's NSpid, the leader first);
/// `exe_len` bytes of the executable's path.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct TaskRecord {
    /// The parent task, UNDEF for the root of the tree.
    pub parent: Ref,
    pub nsproxy: Ref,
    /// Pid of the parent at the outermost level (information for the root).
    pub ppid: U32,
    /// Number of pid namespace levels the task is visible in.
    pub levels: U32,
    pub threads: U32,
    pub exe_len: U32,
    /// Task flags (none defined in v1).
    pub flags: U32,
    pub reserved: U32,
    pub comm: [u8; 16],
}

/// Page-aligned bulk data. Variable part: zero bytes up to the next multiple of
/// [`EXTENT_ALIGN`] in the file, then `data_len` bytes of data, so a restorer
/// can map or copy the data as whole pages straight from the file.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct ExtentRecord {
    /// Bytes of data (the payload less the fixed part).
    pub data_len: U64,
    /// What the data belongs to (UNDEF in v1: nothing refers to extents yet).
    pub owner: Ref,
}

/// `struct user_regs_struct` of `<sys/user.h>` (x86_64), in its order.
pub const USER_REGS_WORDS: usize = 27;

/// Flags of a [`TaskCoreRecord`].
pub mod task_core_flags {
    /// Stopped inside a system call (see ARCHITECTURE.md, restart).
    pub const IN_SYSCALL: u32 = 1;
    pub const NO_NEW_PRIVS: u32 = 2;
    pub const KNOWN: u32 = IN_SYSCALL | NO_NEW_PRIVS;
}

/// One signal handler: `struct sigaction` as the kernel keeps it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct Sigaction {
    pub signo: U32,
    pub reserved: U32,
    pub handler: U64,
    pub flags: U64,
    pub restorer: U64,
    pub mask: U64,
}

/// A pending signal: its siginfo as PTRACE_PEEKSIGINFO gives it.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct PendingSignal {
    /// 1 when queued to the whole thread group, 0 for the thread.
    pub shared: U32,
    pub reserved: U32,
    pub siginfo: [u8; 128],
}

/// Registers, signals, timers, credentials and limits of one task.
/// Variable parts: `xstate_len` bytes of NT_X86_XSTATE; `groups` × u32;
/// `sigactions` × [`Sigaction`]; `pending` × [`PendingSignal`]; `cwd_len`
/// bytes; `root_len` bytes.
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct TaskCoreRecord {
    pub task: Ref,
    /// `user_regs_struct` at the freeze, as read.
    pub regs: [U64; USER_REGS_WORDS],
    pub sigmask: U64,
    /// [`task_core_flags`].
    pub flags: U32,
    pub personality: U32,
    pub umask: U32,
    pub securebits: U32,
    /// Real, effective, saved and filesystem uids, then gids.
    pub uids: [U32; 4],
    pub gids: [U32; 4],
    /// Inheritable, permitted, effective, bounding, ambient capability sets.
    pub caps: [U64; 5],
    /// RLIMIT_* (16 of them): soft then hard, u64::MAX for unlimited.
    pub rlimits: [[U64; 2]; 16],
    /// ITIMER_REAL, VIRTUAL, PROF: interval sec, usec, value sec, usec.
    pub itimers: [[I64; 4]; 3],
    pub altstack_sp: U64,
    pub altstack_size: U64,
    pub altstack_flags: U32,
    pub xstate_len: U32,
    pub groups: U32,
    pub sigactions: U32,
    pub pending: U32,
    pub cwd_len: U32,
    pub root_len: U32,
    pub reserved: U32,
    /// The registered rseq area (PTRACE_GET_RSEQ_CONFIGURATION), 0 if none.
    pub rseq_abi: U64,
    pub rseq_len: U32,
    pub rseq_sig: U32,
}

/// The mm of one task. Variable parts: `auxv_words` × u64, `exe_len` bytes.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct MmRecord {
    pub task: Ref,
    pub start_code: U64,
    pub end_code: U64,
    pub start_data: U64,
    pub end_data: U64,
    pub start_brk: U64,
    pub brk: U64,
    pub start_stack: U64,
    pub arg_start: U64,
    pub arg_end: U64,
    pub env_start: U64,
    pub env_end: U64,
    pub auxv_words: U32,
    pub exe_len: U32,
}

/// Kinds of mapping, stored in bits 8..16 of [`VmaRecord::flags`].
pub mod vma_kind {
    pub const ANON: u32 = 0;
    pub const FILE: u32 = 1;
    pub const HEAP: u32 = 2;
    pub const STACK: u32 = 3;
    pub const VDSO: u32 = 4;
    pub const VVAR: u32 = 5;
    pub const VVAR_VCLOCK: u32 = 6;
    pub const VSYSCALL: u32 = 7;
    pub const MAX: u32 = VSYSCALL;
}

/// Flags of a [`VmaRecord`].
pub mod vma_flags {
    pub const SHARED: u32 = 1;
    pub const KIND_SHIFT: u32 = 8;
    pub const KIND_MASK: u32 = 0xff << KIND_SHIFT;
    pub const KNOWN: u32 = SHARED | KIND_MASK;
}

/// One run of dumped pages of a mapping.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    Immutable,
    KnownLayout,
    Unaligned,
)]
#[repr(C)]
pub struct PageRunRecord {
    pub start: U64,
    pub pages: U64,
}

/// One mapping of a task. Variable parts: `path_len` bytes, then `runs` ×
/// [`PageRunRecord`]; the runs' pages, in order, are the data of `pages`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct VmaRecord {
    pub task: Ref,
    /// An extent holding the dumped pages, UNDEF when none are.
    pub pages: Ref,
    pub start: U64,
    pub end: U64,
    pub pgoff: U64,
    pub dev: U64,
    pub ino: U64,
    /// PROT_READ | PROT_WRITE | PROT_EXEC.
    pub prot: U32,
    /// [`vma_flags`].
    pub flags: U32,
    pub path_len: U32,
    pub runs: U32,
}

/// A pipe. Variable part: `data_len` bytes in flight.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct PipeRecord {
    pub ino: U64,
    pub capacity: U32,
    pub data_len: U32,
}

/// What an fd refers to ([`FdRecord::kind`]).
pub mod fd_kind {
    pub const REGULAR: u32 = 1;
    pub const DEVICE: u32 = 2;
    pub const PIPE_READ: u32 = 3;
    pub const PIPE_WRITE: u32 = 4;
    pub const INHERITED: u32 = 5;
    pub const MAX: u32 = INHERITED;
}

/// One fd of a task. Variable part: `path_len` bytes.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct FdRecord {
    pub task: Ref,
    /// The pipe, for pipe ends; UNDEF otherwise.
    pub pipe: Ref,
    pub fd: U32,
    /// [`fd_kind`].
    pub kind: U32,
    /// Open flags (O_ACCMODE, O_APPEND, O_NONBLOCK, O_CLOEXEC, …).
    pub flags: U32,
    pub mode: U32,
    pub pos: U64,
    pub dev: U64,
    pub ino: U64,
    pub size: U64,
    pub path_len: U32,
    pub reserved: U32,
}

/// How a recorded mount is made again ([`MountRecord::how`]).
pub mod mount_how {
    /// A copy of a mount of the checkpointing process's own namespace
    /// (same mount point, device, root, type, source and options): the
    /// restarting process's copy is kept; only its propagation is set.
    pub const INHERITED: u32 = 1;
    /// A new superblock: mounted by type (proc, sysfs, tmpfs, devpts, mqueue).
    pub const NEW: u32 = 2;
    /// A bind mount of (a directory of) the earlier mount `bind_of`.
    pub const BIND: u32 = 3;
    /// Marked external (`--external mnt[MOUNTPOINT]:KEY`): the restart binds
    /// the path given for KEY there.
    pub const EXTERNAL: u32 = 4;
    pub const MAX: u32 = EXTERNAL;
}

/// Propagation of a recorded mount ([`MountRecord::propagation`]).
pub mod mount_prop {
    /// In a peer group (`peer_group`, or the outside one's).
    pub const SHARED: u32 = 1;
    /// A slave of a peer group (`master_group`, or an outside one).
    pub const SLAVE: u32 = 2;
    pub const UNBINDABLE: u32 = 4;
    /// Its peer group has members in the checkpointing process's namespace.
    pub const SHARED_OUTSIDE: u32 = 8;
    /// Its master group is not one of the namespace's own.
    pub const SLAVE_OUTSIDE: u32 = 16;
    pub const KNOWN: u32 = 31;
}

/// Per-mount flags kept in [`MountRecord::mnt_flags`]: the MS_* values of
/// `<sys/mount.h>`; no atime bit means strictatime.
pub mod mount_flags {
    pub const RDONLY: u32 = 1;
    pub const NOSUID: u32 = 2;
    pub const NODEV: u32 = 4;
    pub const NOEXEC: u32 = 8;
    pub const NOSYMFOLLOW: u32 = 256;
    pub const NOATIME: u32 = 1024;
    pub const NODIRATIME: u32 = 2048;
    pub const RELATIME: u32 = 1 << 21;
    pub const KNOWN: u32 =
        RDONLY | NOSUID | NODEV | NOEXEC | NOSYMFOLLOW | NOATIME | NODIRATIME | RELATIME;
}

/// `index`, `parent` or `bind_of` of a [`MountRecord`] that names no mount.
pub const MOUNT_NONE: u32 = u32::MAX;

/// One mount of a mount namespace of the tree's own, in the namespace's
/// order (mount records of a namespace come in its /proc/PID/mountinfo
/// order, `index` counting from 0). Variable parts: `mountpoint_len`,
/// `root_len`, `fstype_len`, `source_len`, `options_len` (superblock
/// options), `key_len` (external key) bytes, in that order.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct MountRecord {
    pub mnt_ns: Ref,
    /// For proc: the pid namespace it shows, when known; UNDEF otherwise.
    pub pid_ns: Ref,
    pub index: U32,
    /// Index of the parent mount, [`MOUNT_NONE`] when it is not in the list.
    pub parent: U32,
    /// [`mount_how`].
    pub how: U32,
    /// For a bind: index of the earlier mount it was bound from.
    pub bind_of: U32,
    /// [`mount_flags`].
    pub mnt_flags: U32,
    /// [`mount_prop`].
    pub propagation: U32,
    /// The namespace's own peer groups, numbered from 1 in order of first
    /// appearance; 0 for none (or an outside group).
    pub peer_group: U32,
    pub master_group: U32,
    /// Device of an inherited mount (to find it again at restart); 0 else.
    pub dev: U64,
    pub mountpoint_len: U32,
    pub root_len: U32,
    pub fstype_len: U32,
    pub source_len: U32,
    pub options_len: U32,
    pub key_len: U32,
}

/// One entry of a tmpfs mount's contents, parents before children. The
/// data of a regular file is the extent `data`. Variable parts:
/// `path_len` bytes (relative to the mount's root, "" for the root
/// itself), `target_len` bytes (a symlink's target).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned)]
#[repr(C)]
pub struct MntFileRecord {
    pub mount: Ref,
    pub data: Ref,
    /// st_mode: type and permission bits.
    pub mode: U32,
    pub uid: U32,
    pub gid: U32,
    /// CRC32 (IEEE) of the data, 0 when there is none.
    pub data_crc: U32,
    pub size: U64,
    pub rdev: U64,
    pub mtime_sec: I64,
    pub mtime_nsec: I64,
    pub path_len: U32,
    pub target_len: U32,
}

const _: () = {
    assert!(core::mem::size_of::<MountRecord>() % 8 == 0);
    assert!(core::mem::size_of::<MntFileRecord>() % 8 == 0);
};

const _: () = {
    assert!(core::mem::offset_of!(RecordHeader, crc) == 0);
    assert!(core::mem::size_of::<FileHeader>() == 128);
    assert!(core::mem::size_of::<RecordHeader>() == 32);
    assert!(core::mem::size_of::<IndexEntry>() == 16);
    assert!(core::mem::size_of::<Trailer>() == 32);
    assert!(core::mem::size_of::<Ref>() == 8);
    assert!(core::mem::size_of::<NsCommon>() == 32);
    assert!(core::mem::size_of::<ExtentRecord>() % 8 == 0);
    assert!(core::mem::size_of::<TaskCoreRecord>() % 8 == 0);
    assert!(core::mem::size_of::<MmRecord>() % 8 == 0);
    assert!(core::mem::size_of::<VmaRecord>() % 8 == 0);
    assert!(core::mem::size_of::<FdRecord>() % 8 == 0);
};
