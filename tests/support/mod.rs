//! Synthetic but valid kstate images for tests, benchmarks and fixtures.
//!
//! Nothing here makes a system call or needs privileges: images are built
//! with [`ImageWriter`] into a `Vec<u8>`. Every reference points backwards to
//! a record of the right kind, so [`kstate::image::Image::parse`] accepts
//! each image these functions return.
//!
//! Use it with `mod support;` from `tests/*.rs`, or with
//! `#[path = "../tests/support/mod.rs"] mod support;` from examples and
//! benchmarks. [`fixtures`] is the single source of `fixtures/images/`:
//! `examples/make_fixtures.rs` writes it and `tests/fuzz_corpus.rs` checks
//! the checked-in files against it.
#![allow(dead_code)]

use core::mem::{offset_of, size_of};

use kstate::image::format::{
    ns_flags, FileHeader, IdExtent, IndexEntry, Kind, NsCommon, NsproxyRecord, PidNsRecord,
    RecordHeader, Ref, Setgroups, TaskRecord, TimeNsRecord, Trailer, UserNsRecord, UtsNsRecord,
};
use kstate::image::{HeaderInfo, ImageWriter};
use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

/// The kernel release written into every synthetic header.
pub const KERNEL_RELEASE: &[u8] = b"6.1.0-kstate-synthetic";

/// The header every synthetic image carries.
pub fn header_info() -> HeaderInfo {
    HeaderInfo {
        kernel_release: KERNEL_RELEASE.to_vec(),
        ..HeaderInfo::default()
    }
}

/// The refs of one complete set of namespaces, as an nsproxy needs them.
#[derive(Clone, Copy, Debug)]
pub struct NsSet {
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

/// What [`Builder::task`] writes.
#[derive(Clone, Copy, Debug)]
pub struct TaskSpec<'a> {
    /// UNDEF for the root task.
    pub parent: Ref,
    pub nsproxy: Ref,
    pub ppid: u32,
    /// Pids outermost first; the length is the task's `levels`, which must
    /// be its pid namespace's level plus one.
    pub nspid: &'a [u32],
    /// Thread count (at least 1); thread i's pids are `nspid` + i.
    pub threads: u32,
    pub comm: &'a [u8],
    pub exe: &'a [u8],
}

impl<'a> TaskSpec<'a> {
    /// A single-threaded task named `init`.
    pub fn new(parent: Ref, nsproxy: Ref, ppid: u32, nspid: &'a [u32]) -> TaskSpec<'a> {
        TaskSpec {
            parent,
            nsproxy,
            ppid,
            nspid,
            threads: 1,
            comm: b"init",
            exe: b"/sbin/init",
        }
    }
}

/// A thin typed layer over [`ImageWriter`] writing into memory.
pub struct Builder {
    w: ImageWriter<Vec<u8>>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

fn common(flags: u32, users: u32, ino: u64, owner: Ref) -> NsCommon {
    NsCommon {
        flags: U32::new(flags),
        users: U32::new(users),
        dev: U64::new(4),
        ino: U64::new(ino),
        owner,
    }
}

fn ext(first: u32, lower_first: u32, count: u32) -> IdExtent {
    IdExtent {
        first: U32::new(first),
        lower_first: U32::new(lower_first),
        count: U32::new(count),
    }
}

fn u32s(v: &[u32]) -> Vec<U32> {
    v.iter().map(|x| U32::new(*x)).collect()
}

impl Builder {
    pub fn new() -> Builder {
        Builder::with_capacity(4096)
    }

    /// A builder whose output buffer is reserved up front (large images).
    pub fn with_capacity(bytes: usize) -> Builder {
        let w = ImageWriter::new(Vec::with_capacity(bytes), &header_info())
            .expect("writing to a Vec cannot fail");
        Builder { w }
    }

    fn ino(&self) -> u64 {
        0xEFFF_F000 + self.w.record_count() as u64
    }

    pub fn record_count(&self) -> u32 {
        self.w.record_count()
    }

    /// A user namespace; `owner` is its parent (UNDEF only for level 0).
    pub fn user_ns(
        &mut self,
        flags: u32,
        owner: Ref,
        level: u32,
        uid_map: &[IdExtent],
        gid_map: &[IdExtent],
    ) -> Ref {
        let rec = UserNsRecord {
            common: common(flags, 1, self.ino(), owner),
            level: U32::new(level),
            setgroups: U32::new(Setgroups::Deny as u32),
            uid_extents: U32::new(uid_map.len() as u32),
            gid_extents: U32::new(gid_map.len() as u32),
        };
        self.push(
            Kind::UserNs,
            &rec,
            &[uid_map.as_bytes(), gid_map.as_bytes()],
        )
    }

    /// A pid namespace one level below `parent` (UNDEF: level 0).
    pub fn pid_ns(
        &mut self,
        flags: u32,
        owner: Ref,
        parent: Ref,
        level: u32,
        last_pid: u32,
    ) -> Ref {
        let rec = PidNsRecord {
            common: common(flags, 1, self.ino(), owner),
            parent,
            level: U32::new(level),
            last_pid: U32::new(last_pid),
        };
        self.push(Kind::PidNs, &rec, &[])
    }

    pub fn uts_ns(&mut self, owner: Ref, hostname: &[u8], domainname: &[u8]) -> Ref {
        let rec = UtsNsRecord {
            common: common(0, 1, self.ino(), owner),
            hostname_len: U32::new(hostname.len() as u32),
            domainname_len: U32::new(domainname.len() as u32),
        };
        self.push(Kind::UtsNs, &rec, &[hostname, domainname])
    }

    /// An ipc, mnt, net or cgroup namespace.
    pub fn plain_ns(&mut self, kind: Kind, flags: u32, owner: Ref) -> Ref {
        let rec = common(flags, 1, self.ino(), owner);
        if kind == Kind::IpcNs {
            // Version 2 of the ipc record carries sysctls (none here).
            let ipc = kstate::image::format::IpcNsRecord {
                common: rec,
                ..Default::default()
            };
            return self.push(kind, &ipc, &[]);
        }
        self.push(kind, &rec, &[])
    }

    /// A time namespace with monotonic and boottime offsets.
    pub fn time_ns(
        &mut self,
        flags: u32,
        owner: Ref,
        monotonic: (i64, i64),
        boottime: (i64, i64),
    ) -> Ref {
        let rec = TimeNsRecord {
            common: common(flags, 1, self.ino(), owner),
            monotonic_sec: I64::new(monotonic.0),
            monotonic_nsec: I64::new(monotonic.1),
            boottime_sec: I64::new(boottime.0),
            boottime_nsec: I64::new(boottime.1),
        };
        self.push(Kind::TimeNs, &rec, &[])
    }

    pub fn nsproxy(&mut self, users: u32, s: &NsSet) -> Ref {
        let rec = NsproxyRecord {
            users: U32::new(users),
            reserved: U32::ZERO,
            user: s.user,
            uts: s.uts,
            ipc: s.ipc,
            mnt: s.mnt,
            pid: s.pid,
            pid_for_children: s.pid_for_children,
            net: s.net,
            cgroup: s.cgroup,
            time: s.time,
            time_for_children: s.time_for_children,
        };
        self.push(Kind::Nsproxy, &rec, &[])
    }

    /// A task (see [`TaskSpec`]).
    pub fn task(&mut self, t: &TaskSpec<'_>) -> Ref {
        let TaskSpec {
            parent,
            nsproxy,
            ppid,
            nspid,
            threads,
            comm,
            exe,
        } = *t;
        let levels = nspid.len();
        let mut rec = TaskRecord {
            parent,
            nsproxy,
            ppid: U32::new(ppid),
            levels: U32::new(levels as u32),
            threads: U32::new(threads),
            exe_len: U32::new(exe.len() as u32),
            ..TaskRecord::default()
        };
        let n = comm.len().min(rec.comm.len() - 1);
        rec.comm[..n].copy_from_slice(&comm[..n]);
        let pids = u32s(nspid);
        let mut tpids = Vec::with_capacity(threads as usize * levels);
        for t in 0..threads {
            tpids.extend(nspid.iter().map(|p| U32::new(p + t)));
        }
        let pids = pids.as_bytes();
        self.push(
            Kind::Task,
            &rec,
            &[pids, pids, pids, pids, tpids.as_bytes(), exe],
        )
    }

    pub fn extent(&mut self, owner: Ref, data: &[u8]) -> Ref {
        self.w
            .push_extent(owner, data)
            .expect("writing to a Vec cannot fail")
    }

    pub fn push<T: IntoBytes + zerocopy::Immutable>(
        &mut self,
        kind: Kind,
        fixed: &T,
        vars: &[&[u8]],
    ) -> Ref {
        self.w
            .push(kind, fixed, vars)
            .expect("writing to a Vec cannot fail")
    }

    /// Like [`Builder::push`], stamping an older record `version` (whose
    /// fixed part `fixed` must be).
    pub fn push_version<T: IntoBytes + zerocopy::Immutable>(
        &mut self,
        kind: Kind,
        version: u16,
        fixed: &T,
        vars: &[&[u8]],
    ) -> Ref {
        self.w
            .push_version(kind, version, fixed, vars)
            .expect("writing to a Vec cannot fail")
    }

    pub fn finish(self) -> Vec<u8> {
        self.w.finish().expect("writing to a Vec cannot fail")
    }

    /// An external level-0 user ns and an internal level-1 one mapping
    /// 0..65536 to 100000.., in that order. Returns (outer, inner).
    pub fn user_pair(&mut self) -> (Ref, Ref) {
        let outer = self.user_ns(ns_flags::EXTERNAL, Ref::UNDEF, 0, &[], &[]);
        let map = [ext(0, 100_000, 65_536)];
        let inner = self.user_ns(0, outer, 1, &map, &map);
        (outer, inner)
    }

    /// One namespace of every non-pid kind owned by `owner`, and the pid
    /// namespace(s) given, as an [`NsSet`] (time_for_children = time).
    pub fn ns_set(&mut self, user: Ref, pid: Ref, pid_for_children: Ref) -> NsSet {
        let uts = self.uts_ns(user, b"kstate-test", b"example.org");
        let ipc = self.plain_ns(Kind::IpcNs, 0, user);
        let mnt = self.plain_ns(Kind::MntNs, 0, user);
        let net = self.plain_ns(Kind::NetNs, 0, user);
        let cgroup = self.plain_ns(Kind::CgroupNs, 0, user);
        let time = self.time_ns(0, user, (0, 0), (0, 0));
        NsSet {
            user,
            uts,
            ipc,
            mnt,
            pid,
            pid_for_children,
            net,
            cgroup,
            time,
            time_for_children: time,
        }
    }
}

/// The smallest image with a task: one user ns, one pid ns, one namespace of
/// every other kind (an nsproxy may not leave any UNDEF), an nsproxy and a
/// root task. Ids: 1 user, 2 pid, 3 uts, 4 ipc, 5 mnt, 6 net, 7 cgroup,
/// 8 time, 9 nsproxy, 10 task.
pub fn image_minimal() -> Vec<u8> {
    let mut b = Builder::new();
    let user = b.user_ns(
        0,
        Ref::UNDEF,
        0,
        &[ext(0, 0, u32::MAX)],
        &[ext(0, 0, u32::MAX)],
    );
    let pid = b.pid_ns(0, user, Ref::UNDEF, 0, 1);
    let set = b.ns_set(user, pid, pid);
    let np = b.nsproxy(1, &set);
    b.task(&TaskSpec::new(Ref::UNDEF, np, 0, &[1]));
    b.finish()
}

/// A minimal tree whose net namespace (record 6) holds one of each network
/// record: lo, a veth pair, an address, a route, a rule, an id for a second
/// (external) net namespace, and two sysctls (one changed by the workload,
/// one flagged as a new namespace has it).
pub fn image_net() -> Vec<u8> {
    use kstate::image::net::*;
    use zerocopy::little_endian::I32;
    let mut b = Builder::new();
    let user = b.user_ns(
        0,
        Ref::UNDEF,
        0,
        &[ext(0, 0, u32::MAX)],
        &[ext(0, 0, u32::MAX)],
    );
    let pid = b.pid_ns(0, user, Ref::UNDEF, 0, 1);
    let set = b.ns_set(user, pid, pid);
    let np = b.nsproxy(1, &set);
    b.task(&TaskSpec::new(Ref::UNDEF, np, 0, &[1]));
    let net = set.net;
    let other = b.plain_ns(Kind::NetNs, ns_flags::EXTERNAL, user);
    let link = |ifindex: u32, kind: u32, peer: u32, name: &[u8]| NetLinkRecord {
        netns: net,
        peer_ns: if peer != 0 { net } else { Ref::UNDEF },
        ifindex: U32::new(ifindex),
        peer_ifindex: U32::new(peer),
        kind: U32::new(kind),
        flags: U32::new(0x1043),
        mtu: U32::new(1500),
        txqlen: U32::new(1000),
        hwaddr_len: U32::new(6),
        hwaddr: [2; 32],
        name_len: U32::new(name.len() as u32),
        ..Default::default()
    };
    b.push(
        Kind::NetLink,
        &link(1, link_kind::LOOPBACK, 0, b"lo"),
        &[b"lo", b""],
    );
    b.push(
        Kind::NetLink,
        &link(2, link_kind::VETH, 3, b"va"),
        &[b"va", b""],
    );
    b.push(
        Kind::NetLink,
        &link(3, link_kind::VETH, 2, b"vb"),
        &[b"vb", b""],
    );
    let mut local = [0u8; 16];
    local[..4].copy_from_slice(&[10, 1, 0, 1]);
    let addr = NetAddrRecord {
        netns: net,
        ifindex: U32::new(2),
        family: libc::AF_INET as u8,
        prefix_len: 24,
        flags: U32::new(0x80),
        valid: U32::new(u32::MAX),
        preferred: U32::new(u32::MAX),
        present: U32::new(addr_present::LOCAL | addr_present::ADDRESS),
        local,
        address: local,
        label_len: U32::new(2),
        ..Default::default()
    };
    b.push(Kind::NetAddr, &addr, &[b"va"]);
    let route = NetRouteRecord {
        netns: net,
        family: libc::AF_INET as u8,
        dst_len: 16,
        protocol: 3,
        rtype: 1,
        table: U32::new(254),
        oif: U32::new(2),
        present: U32::new(route_present::DST | route_present::GATEWAY | route_present::OIF),
        dst: local,
        gateway: local,
        ..Default::default()
    };
    b.push(Kind::NetRoute, &route, &[]);
    let rule = NetRuleRecord {
        netns: net,
        family: libc::AF_INET as u8,
        action: 1,
        table: U32::new(100),
        priority: U32::new(1000),
        present: U32::new(rule_present::PRIORITY),
        ..Default::default()
    };
    b.push(Kind::NetRule, &rule, &[b"", b""]);
    let nsid = NetNsidRecord {
        netns: net,
        peer: other,
        nsid: I32::new(4),
        reserved: U32::ZERO,
    };
    b.push(Kind::NetNsid, &nsid, &[]);
    // One changed by the workload, one as a new namespace has it.
    for (name, value, flags) in [
        (&b"ipv4/conf/all/forwarding"[..], &b"1"[..], 0),
        (b"ipv4/conf/all/log_martians", b"0", sysctl_flags::AS_NEW),
    ] {
        let sysctl = NetSysctlRecord {
            netns: net,
            name_len: U32::new(name.len() as u32),
            value_len: U32::new(value.len() as u32),
            flags: U32::new(flags),
            reserved: U32::ZERO,
        };
        b.push(Kind::NetSysctl, &sysctl, &[name, value]);
    }
    b.finish()
}

/// An image with no records at all (header, empty index, trailer).
pub fn image_empty() -> Vec<u8> {
    Builder::new().finish()
}

/// A nested tree: `levels` pid namespace levels (level 0 external), an
/// external level-0 and an internal level-1 user ns, uts/ipc/mnt/net/cgroup,
/// two time namespaces (the second with offsets), one nsproxy per pid level
/// and `tasks_per_level` tasks per level, the first being the root.
pub fn image_nested(levels: u32, tasks_per_level: u32) -> Vec<u8> {
    assert!(
        (1..=33).contains(&levels),
        "pid namespaces nest 1 to 33 levels deep"
    );
    let mut b = Builder::new();
    let (outer, inner) = b.user_pair();
    let mut pidns = vec![b.pid_ns(ns_flags::EXTERNAL, outer, Ref::UNDEF, 0, 4_000_000)];
    for l in 1..levels {
        let prev = pidns[l as usize - 1];
        pidns.push(b.pid_ns(0, inner, prev, l, 100 + l));
    }
    let uts = b.uts_ns(inner, b"kstate-nested", b"example.org");
    let ipc = b.plain_ns(Kind::IpcNs, 0, inner);
    let mnt = b.plain_ns(Kind::MntNs, 0, inner);
    let net = b.plain_ns(Kind::NetNs, 0, inner);
    let cgroup = b.plain_ns(Kind::CgroupNs, 0, inner);
    let time_host = b.time_ns(ns_flags::EXTERNAL, outer, (0, 0), (0, 0));
    let time_off = b.time_ns(0, inner, (-3600, 250_000_000), (86_400, 999_999_999));
    let mut proxies = Vec::new();
    for l in 0..levels as usize {
        let pid = pidns[l];
        let set = NsSet {
            user: if l == 0 { outer } else { inner },
            uts,
            ipc,
            mnt,
            pid,
            pid_for_children: *pidns.get(l + 1).unwrap_or(&pid),
            net,
            cgroup,
            time: if l == 0 { time_host } else { time_off },
            time_for_children: time_off,
        };
        proxies.push(b.nsproxy(tasks_per_level, &set));
    }
    // Task k of level l has pid 10000+100l+10k outside and (l-i)*100+10k+1
    // at level i, so the first task of each inner level is its init (pid 1).
    let mut parent = Ref::UNDEF;
    let mut ppid = 0;
    for (l, np) in proxies.iter().enumerate() {
        let mut first = None;
        for k in 0..tasks_per_level {
            let nspid: Vec<u32> = (0..=l)
                .map(|i| match i {
                    0 => 10_000 + 100 * l as u32 + 10 * k,
                    _ => (l - i) as u32 * 100 + 10 * k + 1,
                })
                .collect();
            let comm = format!("t{l}.{k}");
            let t = b.task(&TaskSpec {
                threads: 1 + k % 3,
                comm: comm.as_bytes(),
                exe: b"/usr/bin/sleep",
                ..TaskSpec::new(parent, *np, ppid, &nspid)
            });
            if first.is_none() {
                first = Some((t, nspid[0]));
                if parent.is_undef() {
                    // Later tasks of level 0 are children of the root.
                    parent = t;
                    ppid = nspid[0];
                }
            }
        }
        if let Some((t, pid)) = first {
            parent = t;
            ppid = pid;
        }
    }
    b.finish()
}

/// The page-aligned data of [`image_with_extent`]: one page with a pattern.
pub fn extent_data() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 + i / 256) as u8).collect()
}

/// A minimal tree followed by an extent owned by its task, and an unowned
/// extent with no data.
pub fn image_with_extent() -> Vec<u8> {
    let mut b = Builder::new();
    let (outer, inner) = b.user_pair();
    let pid = b.pid_ns(0, outer, Ref::UNDEF, 0, 1);
    let set = b.ns_set(inner, pid, pid);
    let np = b.nsproxy(1, &set);
    let t = b.task(&TaskSpec::new(Ref::UNDEF, np, 0, &[1]));
    b.extent(t, &extent_data());
    b.extent(Ref::UNDEF, &[]);
    b.finish()
}

/// One mount record of mount namespace `ns`.
#[allow(clippy::too_many_arguments)]
pub fn mount(
    b: &mut Builder,
    ns: Ref,
    pid_ns: Ref,
    index: u32,
    how: u32,
    bind_of: u32,
    mountpoint: &[u8],
    root: &[u8],
    fstype: &[u8],
    source: &[u8],
) -> Ref {
    use kstate::image::format::{mount_flags, MountRecord, MOUNT_NONE};
    let len = |v: &[u8]| U32::new(v.len() as u32);
    let options: &[u8] = b"rw,size=64k";
    let rec = MountRecord {
        mnt_ns: ns,
        pid_ns,
        index: U32::new(index),
        parent: U32::new(if index == 0 { MOUNT_NONE } else { 0 }),
        how: U32::new(how),
        bind_of: U32::new(bind_of),
        mnt_flags: U32::new(mount_flags::NOSUID | mount_flags::RELATIME),
        propagation: U32::new(1),
        peer_group: U32::new(1),
        dev: U64::new(if index == 0 { 0xfe00 } else { 0 }),
        mountpoint_len: len(mountpoint),
        root_len: len(root),
        fstype_len: len(fstype),
        source_len: len(source),
        options_len: len(options),
        ..Default::default()
    };
    b.push(
        Kind::Mount,
        &rec,
        &[mountpoint, root, fstype, source, options, b""],
    )
}

/// One tmpfs entry of mount `m`.
pub fn mnt_file(
    b: &mut Builder,
    m: Ref,
    path: &[u8],
    mode: u32,
    data: &[u8],
    target: &[u8],
) -> Ref {
    let extent = if data.is_empty() {
        Ref::UNDEF
    } else {
        b.extent(m, data)
    };
    let rec = kstate::image::format::MntFileRecord {
        mount: m,
        data: extent,
        mode: U32::new(mode),
        uid: U32::new(1000),
        gid: U32::new(1000),
        data_crc: U32::new(if data.is_empty() {
            0
        } else {
            crc32fast::hash(data)
        }),
        size: U64::new(data.len() as u64),
        mtime_sec: I64::new(1_700_000_000),
        mtime_nsec: I64::new(5),
        path_len: U32::new(path.len() as u32),
        target_len: U32::new(target.len() as u32),
        ..Default::default()
    };
    b.push(Kind::MntFile, &rec, &[path, target])
}

/// A minimal tree whose mount namespace holds an inherited root, a new
/// proc (showing its pid namespace), a tmpfs with a directory, a file
/// and a link, and a bind of the tmpfs's directory. `bad_path` replaces
/// the file's path (for a malformed fixture).
pub fn image_with_mounts(bad_path: Option<&[u8]>) -> Vec<u8> {
    mounts_image(bad_path, false)
}

/// valid-mounts with one more tmpfs file whose data is the first file's
/// extent, which is then not the record just before it (a crafted image
/// could point any number of entries at one large extent).
pub fn image_with_shared_tmpfs_extent() -> Vec<u8> {
    mounts_image(None, true)
}

fn mounts_image(bad_path: Option<&[u8]>, share: bool) -> Vec<u8> {
    use kstate::image::format::{mount_how, MOUNT_NONE};
    let mut b = Builder::new();
    let (outer, inner) = b.user_pair();
    let pid = b.pid_ns(0, outer, Ref::UNDEF, 0, 1);
    let set = b.ns_set(inner, pid, pid);
    let np = b.nsproxy(1, &set);
    b.task(&TaskSpec::new(Ref::UNDEF, np, 0, &[1]));
    let mnt = set.mnt;
    let n = MOUNT_NONE;
    mount(
        &mut b,
        mnt,
        Ref::UNDEF,
        0,
        mount_how::INHERITED,
        n,
        b"/",
        b"/",
        b"ext4",
        b"/dev/vda",
    );
    mount(
        &mut b,
        mnt,
        pid,
        1,
        mount_how::NEW,
        n,
        b"/proc",
        b"/",
        b"proc",
        b"proc",
    );
    let t = mount(
        &mut b,
        mnt,
        Ref::UNDEF,
        2,
        mount_how::NEW,
        n,
        b"/mnt/t",
        b"/",
        b"tmpfs",
        b"kst",
    );
    mnt_file(&mut b, t, b"", 0o40755, b"", b"");
    mnt_file(&mut b, t, b"sub", 0o40700, b"", b"");
    let file = mnt_file(
        &mut b,
        t,
        bad_path.unwrap_or(b"sub/file"),
        0o100640,
        b"alpha\n",
        b"",
    );
    if share {
        let data = b"alpha\n";
        let rec = kstate::image::format::MntFileRecord {
            mount: t,
            data: Ref::new(Kind::Extent, file.id.get() - 1),
            mode: U32::new(0o100640),
            uid: U32::new(1000),
            gid: U32::new(1000),
            data_crc: U32::new(crc32fast::hash(data)),
            size: U64::new(data.len() as u64),
            mtime_sec: I64::new(1_700_000_000),
            mtime_nsec: I64::new(5),
            path_len: U32::new(5),
            ..Default::default()
        };
        b.push(Kind::MntFile, &rec, &[b"other", b""]);
    }
    mnt_file(&mut b, t, b"link", 0o120777, b"", b"sub/file");
    mount(
        &mut b,
        mnt,
        Ref::UNDEF,
        3,
        mount_how::BIND,
        2,
        b"/mnt/b",
        b"/sub",
        b"tmpfs",
        b"kst",
    );
    b.finish()
}

/// A large, flat image: one set of namespaces, one nsproxy and `n_tasks`
/// tasks forming a tree (task i's parent is task (i-1)/8). Built in O(n).
pub fn image_many(n_tasks: usize) -> Vec<u8> {
    let mut b = Builder::with_capacity(2048 + n_tasks * 160);
    let (outer, inner) = b.user_pair();
    let pid0 = b.pid_ns(ns_flags::EXTERNAL, outer, Ref::UNDEF, 0, 4_000_000);
    let pid1 = b.pid_ns(0, inner, pid0, 1, n_tasks as u32);
    let set = b.ns_set(inner, pid1, pid1);
    let np = b.nsproxy(n_tasks as u32, &set);
    let mut tasks: Vec<(Ref, u32)> = Vec::with_capacity(n_tasks);
    for i in 0..n_tasks {
        let (parent, ppid) = match i {
            0 => (Ref::UNDEF, 1),
            _ => tasks[(i - 1) / 8],
        };
        let pid = 200_000 + i as u32;
        let t = b.task(&TaskSpec {
            comm: b"worker",
            exe: b"/usr/bin/worker",
            ..TaskSpec::new(parent, np, ppid, &[pid, i as u32 + 1])
        });
        tasks.push((t, pid));
    }
    b.finish()
}

// ---------------------------------------------------------------------------
// Raw access for corrupting images, without the reader (which refuses them).

fn rd_u64(img: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(img[off..off + 8].try_into().unwrap())
}

fn rd_u16(img: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(img[off..off + 2].try_into().unwrap())
}

/// Offsets of the index entries, from the trailer of a well-framed image.
fn index_offset(img: &[u8]) -> (usize, usize) {
    let t = img.len() - size_of::<Trailer>();
    let index = rd_u64(img, t + offset_of!(Trailer, index_offset)) as usize;
    let count = (t - index) / size_of::<IndexEntry>();
    (index, count)
}

/// The file offset of record `id`'s header.
pub fn record_offset(img: &[u8], id: u32) -> usize {
    let (index, count) = index_offset(img);
    assert!(id >= 1 && id as usize <= count, "no record {id}");
    let e = index + (id as usize - 1) * size_of::<IndexEntry>();
    rd_u64(img, e + offset_of!(IndexEntry, offset)) as usize
}

/// The id of the `nth` (from 0) record of `kind`.
pub fn nth_of_kind(img: &[u8], kind: Kind, nth: usize) -> u32 {
    let (index, count) = index_offset(img);
    (1..=count as u32)
        .filter(|id| {
            let e = index + (*id as usize - 1) * size_of::<IndexEntry>();
            rd_u16(img, e + offset_of!(IndexEntry, kind)) == kind as u16
        })
        .nth(nth)
        .unwrap_or_else(|| panic!("no {kind} number {nth}"))
}

/// The file range of record `id`'s payload.
pub fn payload_range(img: &[u8], id: u32) -> core::ops::Range<usize> {
    let off = record_offset(img, id);
    let len = rd_u64(img, off + offset_of!(RecordHeader, payload_len)) as usize;
    let start = off + size_of::<RecordHeader>();
    start..start + len
}

/// Overwrites `bytes` at `at` within record `id`'s payload and recomputes
/// that record's CRC, so only the semantic checks can notice. The
/// trailer CRC covers the header and index only, so it stays valid.
pub fn patch_payload(img: &mut [u8], id: u32, at: usize, bytes: &[u8]) {
    let range = payload_range(img, id);
    assert!(at + bytes.len() <= range.len(), "patch beyond the payload");
    img[range.start + at..range.start + at + bytes.len()].copy_from_slice(bytes);
    let off = record_offset(img, id);
    let (h, _) = RecordHeader::read_from_prefix(&img[off..]).expect("record header");
    let crc = h.crc_of(&img[range.clone()]);
    let c = off + offset_of!(RecordHeader, crc);
    img[c..c + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites a [`Ref`] field at `at` in record `id`'s payload.
pub fn patch_ref(img: &mut [u8], id: u32, at: usize, r: Ref) {
    patch_payload(img, id, at, r.as_bytes());
}

/// Byte offset of a namespace record's `owner` in its payload.
pub const OWNER_AT: usize = offset_of!(NsCommon, owner);

// ---------------------------------------------------------------------------
// The checked-in fixtures of `fixtures/images/`.

/// One fixture file: its name, contents and what it is.
pub struct Fixture {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub about: &'static str,
}

fn fx(name: &'static str, bytes: Vec<u8>, about: &'static str) -> Fixture {
    Fixture { name, bytes, about }
}

/// Every fixture, deterministically. `valid-*` parse, `bad-*` are refused.
pub fn fixtures() -> Vec<Fixture> {
    let minimal = image_minimal();
    let nested = image_nested(3, 2);
    let mut v = vec![
        fx("valid-empty.kst", image_empty(), "no records: header, empty index, trailer"),
        fx(
            "valid-minimal.kst",
            minimal.clone(),
            "1 user ns, 1 pid ns, one ns of each other kind (an nsproxy may not hold UNDEF), 1 nsproxy, 1 root task",
        ),
        fx(
            "valid-nested.kst",
            nested.clone(),
            "image_nested(3, 2): external + level-1 user ns with maps, 3 pid ns levels, 2 time ns (one with offsets), 3 nsproxies, 6 tasks with 1-3 threads",
        ),
        fx(
            "valid-extent.kst",
            image_with_extent(),
            "a minimal tree plus a one-page extent owned by the task and an empty unowned extent",
        ),
        fx("valid-many.kst", image_many(64), "image_many(64): 64 tasks in a tree sharing one nsproxy"),
        fx(
            "valid-mounts.kst",
            image_with_mounts(None),
            "a minimal tree whose mount ns has an inherited root, a new proc, a tmpfs with a dir, a file (data in an extent) and a link, and a bind",
        ),
        fx(
            "bad-mnt-path.kst",
            image_with_mounts(Some(b"sub/../../etc/passwd")),
            "valid-mounts with a tmpfs file path that climbs out of its mount",
        ),
        fx(
            "bad-mnt-shared-extent.kst",
            image_with_shared_tmpfs_extent(),
            "valid-mounts with a second tmpfs file whose data is the first one's extent",
        ),
    ];

    let mut b = minimal.clone();
    b[0] ^= 0x20;
    v.push(fx(
        "bad-magic.kst",
        b,
        "valid-minimal with the first magic byte changed",
    ));

    let mut b = minimal.clone();
    b[offset_of!(FileHeader, major)..][..2].copy_from_slice(&2u16.to_le_bytes());
    v.push(fx("bad-major.kst", b, "valid-minimal with format major 2"));

    let b = nested[..nested.len() / 2].to_vec();
    v.push(fx(
        "bad-truncated.kst",
        b,
        "the first half of valid-nested (no trailer)",
    ));

    let mut b = nested.clone();
    let uts = nth_of_kind(&b, Kind::UtsNs, 0);
    let host = payload_range(&b, uts).start + size_of::<UtsNsRecord>();
    b[host] ^= 0x01;
    v.push(fx(
        "bad-bitflip.kst",
        b,
        "valid-nested with one bit of the uts hostname flipped (record CRC)",
    ));

    let np = nth_of_kind(&minimal, Kind::Nsproxy, 0);
    let task = nth_of_kind(&minimal, Kind::Task, 0);

    let mut b = minimal.clone();
    patch_ref(
        &mut b,
        np,
        offset_of!(NsproxyRecord, pid),
        Ref::new(Kind::PidNs, task),
    );
    v.push(fx(
        "bad-forward-ref.kst",
        b,
        "valid-minimal with nsproxy.pid naming the later task record (CRC fixed)",
    ));

    let mut b = minimal.clone();
    patch_ref(
        &mut b,
        task,
        offset_of!(TaskRecord, nsproxy),
        Ref::new(Kind::Nsproxy, 77),
    );
    v.push(fx(
        "bad-ref-missing.kst",
        b,
        "valid-minimal with task.nsproxy naming record 77, which does not exist (CRC fixed)",
    ));

    let mut b = minimal.clone();
    let ipc = nth_of_kind(&minimal, Kind::IpcNs, 0);
    patch_ref(
        &mut b,
        np,
        offset_of!(NsproxyRecord, uts),
        Ref::new(Kind::UtsNs, ipc),
    );
    v.push(fx(
        "bad-ref-kind.kst",
        b,
        "valid-minimal with nsproxy.uts naming the ipc ns record (CRC fixed)",
    ));

    let mut b = nested.clone();
    let pid2 = nth_of_kind(&nested, Kind::PidNs, 2);
    patch_payload(
        &mut b,
        pid2,
        offset_of!(PidNsRecord, level),
        &3u32.to_le_bytes(),
    );
    v.push(fx(
        "bad-pidns-level.kst",
        b,
        "valid-nested with the level-2 pid ns claiming level 3 (CRC fixed)",
    ));

    let mut b = nested.clone();
    let inner = nth_of_kind(&nested, Kind::UserNs, 1);
    patch_payload(
        &mut b,
        inner,
        offset_of!(UserNsRecord, uid_extents),
        &340u32.to_le_bytes(),
    );
    v.push(fx("bad-count.kst", b, "valid-nested with the level-1 user ns claiming 340 uid extents, more than the file holds (CRC fixed)"));

    let net = image_net();
    v.push(fx(
        "valid-net.kst",
        net.clone(),
        "valid-minimal plus one of each network record (links lo and a veth pair, address, route, rule, netns id, two sysctls: one changed, one as a new namespace has it)",
    ));
    let mut b = net;
    let sysctl = nth_of_kind(&b, Kind::NetSysctl, 0);
    // The name follows the fixed part; patch_payload keeps the CRC right,
    // so that the path check is what refuses it.
    let at = size_of::<kstate::image::net::NetSysctlRecord>();
    patch_payload(&mut b, sysctl, at, b"../");
    v.push(fx(
        "bad-net-sysctl.kst",
        b,
        "valid-net with its first sysctl's name made to start with ../ (a path out of /proc/sys/net; CRC fixed)",
    ));

    let mut b = minimal;
    let rc = b.len() - size_of::<Trailer>() + offset_of!(Trailer, record_count);
    b[rc..rc + 4].copy_from_slice(&0x00ff_ffffu32.to_le_bytes());
    v.push(fx(
        "bad-record-count.kst",
        b,
        "valid-minimal with the trailer claiming 16M records",
    ));

    v
}

/// The README of `fixtures/images/`, listing [`fixtures`].
pub fn fixtures_readme() -> String {
    let mut s = String::from(
        "# Image fixtures\n\n\
         Generated by `cargo run --example make_fixtures` from `fixtures()` in\n\
         `tests/support/mod.rs`; do not edit by hand. `cargo test --test fuzz_corpus`\n\
         fails when these files differ from what the generator produces, replays\n\
         them through `Image::parse` and `show::to_json`, and checks the error\n\
         variant of each `bad-*` file. They also seed the `parse` fuzz target.\n\n\
         The `bad-*` files that break a reference, a level or a count have their\n\
         record's CRC recomputed (`patch_payload`), so the semantic check\n\
         is what refuses them; the trailer CRC covers only header and index.\n\n",
    );
    for f in fixtures() {
        s.push_str(&format!(
            "- `{}` ({} bytes): {}\n",
            f.name,
            f.bytes.len(),
            f.about
        ));
    }
    s
}
