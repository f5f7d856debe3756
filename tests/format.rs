//! Image format tests (no privileges needed): the engine's own dump read back
//! field by field, truncation at every byte and a flipped bit anywhere
//! refused without a panic, and `kstate show` of a corrupt image.

mod support;

use std::fs::File;
use std::os::fd::OwnedFd;

use kstate::image::format::{Kind, Setgroups};
use kstate::image::reader::Object;
use kstate::image::{FormatError, Image};
use kstate::kstate::checkpoint::dump;
use kstate::kstate::registry::{NsContents, NsKey, NsKind, NsproxyKey, Registry, TaskInfo};

fn pin() -> OwnedFd {
    // Any descriptor will do: the registry only holds it.
    File::open("/dev/null").expect("/dev/null").into()
}

fn ns(
    reg: &mut Registry,
    kind: NsKind,
    ino: u64,
    level: u32,
    owner: Option<usize>,
    parent: Option<usize>,
) -> usize {
    let i = reg.insert_ns(NsKey { kind, dev: 4, ino }, pin());
    let n = &mut reg.namespaces[i];
    n.level = level;
    n.owner = owner;
    n.parent = parent;
    i
}

/// A registry shaped like a real checkpoint: host namespaces external, a
/// user namespace, two nested pid namespaces, uts, time, and three tasks.
fn sample_registry() -> Registry {
    let mut reg = Registry::default();
    let host_user = ns(&mut reg, NsKind::User, 100, 0, None, None);
    reg.namespaces[host_user].external = true;
    let user = ns(
        &mut reg,
        NsKind::User,
        101,
        1,
        Some(host_user),
        Some(host_user),
    );
    reg.namespaces[user].contents = NsContents::User {
        uid_map: vec![[0, 100000, 65536]],
        gid_map: vec![[0, 100000, 65536], [70000, 5, 1]],
        setgroups: Setgroups::Deny,
    };
    let host_pid = ns(&mut reg, NsKind::Pid, 200, 0, Some(host_user), None);
    reg.namespaces[host_pid].external = true;
    let pid1 = ns(&mut reg, NsKind::Pid, 201, 1, Some(user), Some(host_pid));
    reg.namespaces[pid1].contents = NsContents::Pid { last_pid: 42 };
    let pid2 = ns(&mut reg, NsKind::Pid, 202, 2, Some(user), Some(pid1));
    reg.namespaces[pid2].contents = NsContents::Pid { last_pid: 3 };
    let uts = ns(&mut reg, NsKind::Uts, 300, 0, Some(user), None);
    reg.namespaces[uts].contents = NsContents::Uts {
        hostname: b"h\xffst".to_vec(),
        domainname: b"example".to_vec(),
    };
    let time = ns(&mut reg, NsKind::Time, 400, 0, Some(user), None);
    reg.namespaces[time].contents = NsContents::Time {
        monotonic: (-86400, 5),
        boottime: (3600, 999_999_999),
    };
    let host_time = ns(&mut reg, NsKind::Time, 401, 0, Some(host_user), None);
    reg.namespaces[host_time].external = true;
    let ipc = ns(&mut reg, NsKind::Ipc, 500, 0, Some(user), None);
    let mnt = ns(&mut reg, NsKind::Mnt, 501, 0, Some(user), None);
    let net = ns(&mut reg, NsKind::Net, 502, 0, Some(user), None);
    let cgroup = ns(&mut reg, NsKind::Cgroup, 503, 0, Some(user), None);
    let base = NsproxyKey {
        user,
        uts,
        ipc,
        mnt,
        pid: pid1,
        pid_for_children: pid1,
        net,
        cgroup,
        time: host_time,
        time_for_children: time,
    };
    let np_root = reg.use_nsproxy(base);
    let inner = NsproxyKey {
        pid: pid2,
        pid_for_children: pid2,
        time,
        ..base
    };
    let task = |pid: i32, nspid: Vec<u32>, ppid: u32| TaskInfo {
        pid,
        ppid,
        nstgid: nspid.clone(),
        nspgid: nspid.iter().map(|_| 0).collect(),
        nssid: nspid.clone(),
        threads: vec![nspid.clone()],
        nspid,
        comm: b"worker".to_vec(),
        exe: b"/usr/bin/w\xc3\xb6rker".to_vec(),
    };
    let root = reg.add_task(task(1000, vec![1000, 1], 999), None, np_root);
    let np_inner = reg.use_nsproxy(inner);
    let mid = reg.add_task(task(1001, vec![1001, 2, 1], 1000), Some(root), np_inner);
    let np_inner2 = reg.use_nsproxy(inner);
    assert_eq!(np_inner, np_inner2, "one nsproxy for both inner tasks");
    let mut leaf = task(1002, vec![1002, 3, 2], 1001);
    leaf.threads.push(vec![1003, 4, 3]);
    reg.add_task(leaf, Some(mid), np_inner2);
    reg
}

fn sample_image() -> (Registry, Vec<u8>) {
    let mut reg = sample_registry();
    let mut bytes = Vec::new();
    dump(&mut reg, &mut bytes).expect("dump into memory");
    (reg, bytes)
}

#[test]
fn dump_then_parse_gives_back_the_graph() {
    let (reg, bytes) = sample_image();
    let img = Image::parse(&bytes).expect("the engine's own image parses");
    assert_eq!(
        img.record_count() as usize,
        reg.namespaces.len() + reg.nsproxies.len() + reg.tasks.len()
    );
    // Namespaces: each once, with its contents, owner and parent.
    for n in &reg.namespaces {
        let id = n.image_ref.id().expect("dumped");
        let obj = img.object(id).unwrap();
        let common = obj.ns_common().expect("a namespace record");
        assert_eq!(img.kind_of(id), Some(n.key.kind.image_kind()));
        assert_eq!(common.ino.get(), n.key.ino);
        assert_eq!(common.is_external(), n.external);
        assert_eq!(common.users.get(), n.users);
        assert_eq!(
            common.owner,
            n.owner
                .map_or(kstate::image::Ref::UNDEF, |o| reg.namespaces[o].image_ref)
        );
        match (&n.contents, obj) {
            (
                NsContents::User {
                    uid_map,
                    gid_map,
                    setgroups,
                },
                Object::UserNs(v),
            ) => {
                let m = |e: &[kstate::image::format::IdExtent]| -> Vec<[u32; 3]> {
                    e.iter()
                        .map(|x| [x.first.get(), x.lower_first.get(), x.count.get()])
                        .collect()
                };
                assert_eq!(&m(v.uid_map), uid_map);
                assert_eq!(&m(v.gid_map), gid_map);
                assert_eq!(v.rec.setgroups.get(), *setgroups as u32);
                assert_eq!(v.rec.level.get(), n.level);
            }
            (NsContents::Pid { last_pid }, Object::PidNs(r)) => {
                assert_eq!(r.last_pid.get(), *last_pid);
                assert_eq!(r.level.get(), n.level);
                assert_eq!(
                    r.parent,
                    n.parent
                        .map_or(kstate::image::Ref::UNDEF, |p| reg.namespaces[p].image_ref)
                );
            }
            (
                NsContents::Uts {
                    hostname,
                    domainname,
                },
                Object::UtsNs(v),
            ) => {
                assert_eq!(v.hostname, &hostname[..]);
                assert_eq!(v.domainname, &domainname[..]);
            }
            (
                NsContents::Time {
                    monotonic,
                    boottime,
                },
                Object::TimeNs(r),
            ) => {
                assert_eq!((r.monotonic_sec.get(), r.monotonic_nsec.get()), *monotonic);
                assert_eq!((r.boottime_sec.get(), r.boottime_nsec.get()), *boottime);
            }
            (NsContents::None, _) => {}
            (c, o) => panic!("{} came back as {o:?}, was {c:?}", n.key),
        }
    }
    // Nsproxies: each set once, with its users and the right namespaces.
    for np in &reg.nsproxies {
        let Object::Nsproxy(r) = img.resolve(np.image_ref).unwrap() else {
            panic!("nsproxy record expected")
        };
        assert_eq!(r.users.get(), np.users);
        let refs: Vec<_> = r.refs().iter().map(|(_, rf, _)| *rf).collect();
        let want: Vec<_> = np
            .key
            .slots()
            .iter()
            .map(|&s| reg.namespaces[s].image_ref)
            .collect();
        assert_eq!(refs, want);
    }
    // Tasks: every field back, parents first.
    for t in &reg.tasks {
        let Object::Task(v) = img.resolve(t.image_ref).unwrap() else {
            panic!("task record expected")
        };
        let u = |s: &[zerocopy::little_endian::U32]| s.iter().map(|x| x.get()).collect::<Vec<_>>();
        assert_eq!(u(v.nspid), t.info.nspid);
        assert_eq!(u(v.nstgid), t.info.nstgid);
        assert_eq!(u(v.nspgid), t.info.nspgid);
        assert_eq!(u(v.nssid), t.info.nssid);
        assert_eq!(v.thread_pids().map(u).collect::<Vec<_>>(), t.info.threads);
        assert_eq!(v.comm(), &t.info.comm[..]);
        assert_eq!(v.exe, &t.info.exe[..]);
        assert_eq!(v.rec.ppid.get(), t.info.ppid);
        assert_eq!(
            v.rec.parent,
            t.parent
                .map_or(kstate::image::Ref::UNDEF, |p| reg.tasks[p].image_ref)
        );
        assert_eq!(v.rec.nsproxy, reg.nsproxies[t.nsproxy].image_ref);
        if let Some(p) = v.rec.parent.id() {
            assert!(p < t.image_ref.id.get(), "parent first");
        }
    }
    // The order rules: user before pid before the rest, nsproxies, tasks.
    let kinds: Vec<Kind> = (1..=img.record_count())
        .map(|id| img.kind_of(id).unwrap())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort_by_key(|k| match k {
        Kind::UserNs => 0,
        Kind::PidNs => 1,
        Kind::Nsproxy => 3,
        Kind::Task => 4,
        _ => 2,
    });
    assert_eq!(kinds, sorted);
}

#[test]
fn truncation_at_every_byte_is_refused() {
    let (_, bytes) = sample_image();
    for len in 0..bytes.len() {
        let err = Image::parse(&bytes[..len])
            .err()
            .unwrap_or_else(|| panic!("truncated to {len} bytes: accepted"));
        match err {
            FormatError::TooShort { .. }
            | FormatError::LengthMismatch { .. }
            | FormatError::BadTrailerMagic { .. } => {}
            other => panic!("truncated to {len}: unexpected {other:?}"),
        }
    }
    // Extra bytes at the end (a spliced image) are refused too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&bytes[bytes.len() - 32..]);
    assert!(matches!(
        Image::parse(&longer),
        Err(FormatError::LengthMismatch { .. })
    ));
}

#[test]
fn a_flipped_bit_anywhere_is_refused() {
    for bytes in [sample_image().1, support::image_with_extent()] {
        let mut b = bytes.clone();
        for bit in 0..bytes.len() * 8 {
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Image::parse(&b).is_err(),
                "bit {bit} (byte {:#x}) flipped: accepted",
                bit / 8
            );
            b[bit / 8] ^= 1 << (bit % 8);
        }
        assert!(Image::parse(&b).is_ok());
    }
}

#[test]
fn header_errors_have_their_own_variants() {
    let (_, bytes) = sample_image();
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(
        Image::parse(&b),
        Err(FormatError::BadMagic { .. })
    ));
    let mut b = bytes.clone();
    b[8] = 2; // major
    assert!(matches!(
        Image::parse(&b),
        Err(FormatError::UnsupportedMajor { major: 2, .. })
    ));
    let mut b = bytes.clone();
    b[24] = 0x80; // required_features
    assert!(matches!(
        Image::parse(&b),
        Err(FormatError::UnknownRequiredFeatures { bits: 0x80 })
    ));
    assert!(matches!(
        Image::parse(b"XYZ"),
        Err(FormatError::BadMagic { .. })
    ));
    assert!(matches!(
        Image::parse(b"KST"),
        Err(FormatError::TooShort { .. })
    ));
    assert!(matches!(
        Image::parse(b""),
        Err(FormatError::TooShort { .. })
    ));
}

#[test]
fn show_of_a_corrupt_image_names_record_and_field() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("show-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_kstate");
    for (name, field) in [
        ("bad-forward-ref.kst", "field `"),
        ("bad-ref-kind.kst", "field `"),
        ("bad-pidns-level.kst", "field `"),
        ("bad-count.kst", "field `"),
        ("bad-bitflip.kst", "field `crc`"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/images")
            .join(name);
        for args in [
            vec!["show", path.to_str().unwrap()],
            vec!["show", "--json", path.to_str().unwrap()],
        ] {
            let out = std::process::Command::new(bin)
                .args(&args)
                .output()
                .expect("run kstate");
            assert!(!out.status.success(), "{name}: show must fail");
            assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
            assert!(
                err.contains("record ") && err.contains(field),
                "{name}: names record and field: {err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn undef_refs_must_be_all_zero() {
    use core::mem::offset_of;
    use kstate::image::format::ExtentRecord;
    let mut b = support::image_with_extent();
    let e = support::nth_of_kind(&b, Kind::Extent, 1);
    support::patch_payload(
        &mut b,
        e,
        offset_of!(ExtentRecord, owner) + 4,
        &[5, 0, 7, 0],
    );
    assert!(
        matches!(
            Image::parse(&b),
            Err(FormatError::NonZero { field: "owner", .. })
        ),
        "{:?}",
        Image::parse(&b).err()
    );
}

#[test]
fn a_known_version_has_exactly_its_fixed_part() {
    use core::mem::offset_of;
    use kstate::image::format::RecordHeader;
    use zerocopy::FromBytes;
    let (_, mut b) = sample_image();
    // Make a task's fixed part claim 4 more bytes (taken from its variable
    // part), with a correct CRC: only the fixed_len rule can catch it.
    let id = support::nth_of_kind(&b, Kind::Task, 0);
    let off = support::record_offset(&b, id);
    let fl = off + offset_of!(RecordHeader, fixed_len);
    let v = u16::from_le_bytes([b[fl], b[fl + 1]]) + 4;
    b[fl..fl + 2].copy_from_slice(&v.to_le_bytes());
    let (h, _) = RecordHeader::read_from_prefix(&b[off..]).unwrap();
    let crc = h.crc_of(&b[support::payload_range(&b, id)]);
    let c = off + offset_of!(RecordHeader, crc);
    b[c..c + 4].copy_from_slice(&crc.to_le_bytes());
    assert!(
        matches!(
            Image::parse(&b),
            Err(FormatError::Invalid {
                field: "fixed_len",
                ..
            })
        ),
        "{:?}",
        Image::parse(&b).err()
    );
}

#[test]
fn an_older_shorter_record_reads_with_defaults() {
    use kstate::image::format::{NsCommon, Ref};
    use kstate::image::{HeaderInfo, ImageWriter};
    use zerocopy::little_endian::{U32, U64};
    // An ipc namespace as format 1.0 wrote it (record version 1: NsCommon
    // alone), beside one of version 2 with its sysctls.
    let mut w = ImageWriter::new(Vec::new(), &HeaderInfo::default()).unwrap();
    let common = NsCommon {
        flags: U32::new(0),
        users: U32::new(1),
        dev: U64::new(4),
        ino: U64::new(99),
        owner: Ref::UNDEF,
    };
    let old = w.push_version(Kind::IpcNs, 1, &common, &[]).unwrap();
    let mut rec = kstate::image::format::IpcNsRecord {
        common,
        ..Default::default()
    };
    rec.recorded = U32::new(1);
    rec.sysctls[0] = zerocopy::little_endian::I64::new(12345);
    let new = w.push(Kind::IpcNs, &rec, &[]).unwrap();
    let bytes = w.finish().unwrap();
    let img = Image::parse(&bytes).expect("both versions are valid");
    let Ok(Object::IpcNs(r)) = img.resolve(old) else {
        panic!("ipc record")
    };
    assert_eq!(r.common.ino.get(), 99);
    assert_eq!(r.recorded.get(), 0, "the appended fields read as zero");
    assert_eq!(kstate::objects::ipc_ns::values(&r), None);
    let Ok(Object::IpcNs(r)) = img.resolve(new) else {
        panic!("ipc record")
    };
    assert_eq!(
        kstate::objects::ipc_ns::values(&r).map(|v| v.0[0]),
        Some(12345)
    );
    // A version-1 record may not carry the version-2 fixed part.
    let mut w = ImageWriter::new(Vec::new(), &HeaderInfo::default()).unwrap();
    w.push_version(Kind::IpcNs, 1, &rec, &[]).unwrap();
    let bytes = w.finish().unwrap();
    assert!(matches!(
        Image::parse(&bytes),
        Err(FormatError::Invalid {
            field: "fixed_len",
            ..
        })
    ));
}

/// A net_sysctl record as format 1.2 wrote it (version 1, no flags) reads
/// with no flag set; a version-2 one keeps its AS_NEW bit; unknown flag bits
/// and a non-zero reserved field are refused, naming the field.
#[test]
fn a_version_1_sysctl_record_reads_without_flags_and_unknown_flags_are_refused() {
    use core::mem::offset_of;
    use kstate::image::format::Ref;
    use kstate::image::net::{sysctl_flags, NetSysctlRecord, NetView, NET_SYSCTL_V1_LEN};
    use zerocopy::little_endian::U32;
    use zerocopy::IntoBytes;
    let mut b = support::Builder::new();
    let user = b.user_ns(0, Ref::UNDEF, 0, &[], &[]);
    let pid = b.pid_ns(0, user, Ref::UNDEF, 0, 1);
    let set = b.ns_set(user, pid, pid);
    let np = b.nsproxy(1, &set);
    b.task(&support::TaskSpec::new(Ref::UNDEF, np, 0, &[1]));
    let (name, value): (&[u8], &[u8]) = (b"ipv4/conf/all/forwarding", b"1");
    let rec = NetSysctlRecord {
        netns: set.net,
        name_len: U32::new(name.len() as u32),
        value_len: U32::new(value.len() as u32),
        flags: U32::new(sysctl_flags::AS_NEW),
        reserved: U32::ZERO,
    };
    let v1: [u8; NET_SYSCTL_V1_LEN] = rec.as_bytes()[..NET_SYSCTL_V1_LEN].try_into().unwrap();
    let old = b.push_version(Kind::NetSysctl, 1, &v1, &[name, value]);
    let new = b.push(Kind::NetSysctl, &rec, &[name, value]);
    let bytes = b.finish();
    let img = Image::parse(&bytes).expect("both versions are valid");
    let sysctl = |r: Ref| match img.resolve(r) {
        Ok(Object::Net(NetView::Sysctl(s))) => (s.rec, s.name.to_vec(), s.value.to_vec()),
        other => panic!("a sysctl record: {other:?}"),
    };
    let (r, n, v) = sysctl(old);
    assert_eq!((n.as_slice(), v.as_slice()), (name, value));
    assert_eq!(r.flags.get(), 0, "a version-1 record has no flags");
    let (r, n, _) = sysctl(new);
    assert_eq!(n, name);
    assert_eq!(r.flags.get(), sysctl_flags::AS_NEW);
    let shown = kstate::kstate::show::to_json(&img).unwrap();
    let objs = shown["objects"].as_array().unwrap();
    assert_eq!(objs[old.id.get() as usize - 1]["as_new"], false);
    assert_eq!(objs[new.id.get() as usize - 1]["as_new"], true);

    // A version-1 record may not carry the version-2 fixed part.
    let mut b = support::Builder::new();
    let user = b.user_ns(0, Ref::UNDEF, 0, &[], &[]);
    let pid = b.pid_ns(0, user, Ref::UNDEF, 0, 1);
    let set = b.ns_set(user, pid, pid);
    let rec = NetSysctlRecord {
        netns: set.net,
        ..rec
    };
    b.push_version(Kind::NetSysctl, 1, &rec, &[name, value]);
    assert!(matches!(
        Image::parse(&b.finish()),
        Err(FormatError::Invalid {
            field: "fixed_len",
            ..
        })
    ));

    // Unknown flag bits, a non-zero reserved field.
    let good = support::image_net();
    let id = support::nth_of_kind(&good, Kind::NetSysctl, 0);
    for (at, value, field) in [
        (offset_of!(NetSysctlRecord, flags), 2u32, "flags"),
        (offset_of!(NetSysctlRecord, flags), 0x8000_0001, "flags"),
        (offset_of!(NetSysctlRecord, reserved), 1, "reserved"),
    ] {
        let mut img = good.clone();
        support::patch_payload(&mut img, id, at, &value.to_le_bytes());
        let Err(e) = Image::parse(&img) else {
            panic!("{value:#x} at {at}: accepted")
        };
        let named = match &e {
            FormatError::Invalid { field, .. } | FormatError::NonZero { field, .. } => *field,
            _ => "",
        };
        assert_eq!(named, field, "{value:#x} at {at}: {e}");
        if field == "flags" {
            assert!(e.to_string().contains("unknown bits"), "{e}");
        }
    }
}

/// The mounts of a mount namespace and a tmpfs's entries, dumped by the
/// engine and read back field by field.
#[test]
fn mount_tables_dump_and_read_back() {
    use kstate::image::format::{mount_flags, mount_how, mount_prop, MOUNT_NONE};
    use kstate::objects::mnt_ns::{FileEntry, MountInfo, MountTable};
    let mut reg = sample_registry();
    let mnt = (0..reg.namespaces.len())
        .find(|&i| reg.namespaces[i].key.kind == NsKind::Mnt && !reg.namespaces[i].external)
        .expect("an internal mnt ns");
    let pid = (0..reg.namespaces.len())
        .find(|&i| reg.namespaces[i].key.kind == NsKind::Pid && !reg.namespaces[i].external)
        .expect("an internal pid ns");
    let root = MountInfo {
        how: mount_how::INHERITED,
        parent: MOUNT_NONE,
        bind_of: MOUNT_NONE,
        mnt_flags: mount_flags::RELATIME,
        propagation: mount_prop::SHARED | mount_prop::SHARED_OUTSIDE,
        dev: 0xfe00,
        mountpoint: b"/".to_vec(),
        root: b"/".to_vec(),
        fstype: b"ext4".to_vec(),
        source: b"/dev/vda".to_vec(),
        options: b"rw".to_vec(),
        ..MountInfo::default()
    };
    let proc = MountInfo {
        how: mount_how::NEW,
        parent: 0,
        pid_ns: Some(pid),
        mnt_flags: mount_flags::NOSUID | mount_flags::NOEXEC,
        mountpoint: b"/proc".to_vec(),
        fstype: b"proc".to_vec(),
        source: b"proc".to_vec(),
        ..root.clone()
    };
    let file = FileEntry {
        path: b"dir with space/f".to_vec(),
        mode: 0o100600,
        uid: 7,
        gid: 8,
        size: 5,
        mtime: (1_700_000_000, 42),
        data: b"hello".to_vec(),
        ..FileEntry::default()
    };
    let tmpfs = MountInfo {
        how: mount_how::NEW,
        parent: 0,
        propagation: mount_prop::UNBINDABLE,
        dev: 0,
        mountpoint: b"/mnt/t".to_vec(),
        fstype: b"tmpfs".to_vec(),
        source: b"kst".to_vec(),
        options: b"rw,size=64k".to_vec(),
        files: vec![
            FileEntry {
                mode: 0o40755,
                ..FileEntry::default()
            },
            FileEntry {
                path: b"dir with space".to_vec(),
                mode: 0o40700,
                ..FileEntry::default()
            },
            file.clone(),
        ],
        ..root.clone()
    };
    let bind = MountInfo {
        how: mount_how::BIND,
        bind_of: 2,
        root: b"/dir with space".to_vec(),
        mountpoint: b"/mnt/b".to_vec(),
        files: Vec::new(),
        ..tmpfs.clone()
    };
    reg.mount_tables.push(MountTable {
        ns: mnt,
        mounts: vec![root, proc, tmpfs, bind],
    });
    let mut bytes = Vec::new();
    dump(&mut reg, &mut bytes).expect("dump into memory");
    let img = Image::parse(&bytes).expect("the engine's own image parses");
    let mut mounts = Vec::new();
    let mut files = Vec::new();
    for (_, obj) in img.objects() {
        match obj.expect("object") {
            Object::Mount(m) => mounts.push(m),
            Object::MntFile(f) => files.push(f),
            _ => {}
        }
    }
    let table = &reg.mount_tables[0];
    assert_eq!(mounts.len(), 4);
    for (i, (v, m)) in mounts.iter().zip(&table.mounts).enumerate() {
        assert_eq!(v.rec.index.get(), i as u32);
        assert_eq!(v.rec.mnt_ns, reg.namespaces[mnt].image_ref);
        assert_eq!(v.rec.how.get(), m.how);
        assert_eq!(v.rec.parent.get(), m.parent);
        assert_eq!(v.rec.bind_of.get(), m.bind_of);
        assert_eq!(v.rec.mnt_flags.get(), m.mnt_flags);
        assert_eq!(v.rec.propagation.get(), m.propagation);
        assert_eq!(v.rec.dev.get(), m.dev);
        assert_eq!(
            (v.mountpoint, v.root, v.fstype, v.source, v.options),
            (
                &m.mountpoint[..],
                &m.root[..],
                &m.fstype[..],
                &m.source[..],
                &m.options[..]
            )
        );
    }
    assert_eq!(mounts[1].rec.pid_ns, reg.namespaces[pid].image_ref);
    assert_eq!(files.len(), 3);
    let f = &files[2];
    assert_eq!(f.path, &file.path[..]);
    assert_eq!(
        (f.rec.mode.get(), f.rec.uid.get(), f.rec.gid.get()),
        (0o100600, 7, 8)
    );
    assert_eq!((f.rec.mtime_sec.get(), f.rec.mtime_nsec.get()), file.mtime);
    match img.resolve(f.rec.data).expect("the file's extent") {
        Object::Extent(e) => assert_eq!(e.data, b"hello"),
        other => panic!("data is a {:?}", other.kind()),
    }
    // show and diff know the new kinds: an image equals itself.
    let json = kstate::kstate::show::to_json(&img).expect("json");
    assert!(json.to_string().contains("\"how\":\"bind\""));
    assert!(kstate::kstate::diff::diff(&img, &img, true)
        .expect("diff")
        .is_empty());
}

/// An extent whose CRC is computed while its data streams (read once) is
/// valid only once the CRC is written in place; `finish` refuses to leave
/// it out, and the same bytes streamed the two-pass way give the same image.
#[test]
fn deferred_extent_crc_is_patched_in_place() {
    use kstate::image::format::Ref;
    use kstate::image::{HeaderInfo, ImageWriter};
    let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i * 7 % 251) as u8).collect();
    let stream = |sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>| {
        data.chunks(1000).try_for_each(&mut *sink)
    };
    let mut w = ImageWriter::new(Vec::new(), &HeaderInfo::default()).unwrap();
    w.allow_patches();
    assert!(w.can_patch());
    let r = w
        .push_extent_deferred(Ref::UNDEF, data.len() as u64, stream)
        .unwrap();
    let (mut bytes, patches) = w.finish_patched().unwrap();
    assert_eq!(patches.len(), 1);
    assert!(
        matches!(Image::parse(&bytes), Err(FormatError::RecordCrc { .. })),
        "unpatched, the record's CRC is wrong"
    );
    for (at, crc) in &patches {
        let at = *at as usize;
        bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    }
    let img = Image::parse(&bytes).expect("patched image");
    let Ok(Object::Extent(e)) = img.resolve(r) else {
        panic!("extent record")
    };
    assert_eq!(e.data, &data[..]);
    // Two passes (CRC first) write the very same bytes.
    let mut w = ImageWriter::new(Vec::new(), &HeaderInfo::default()).unwrap();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&data);
    w.push_extent_streamed(Ref::UNDEF, data.len() as u64, &crc, stream)
        .unwrap();
    assert_eq!(w.finish().unwrap(), bytes);
    // finish() will not drop a pending CRC.
    let mut w = ImageWriter::new(Vec::new(), &HeaderInfo::default()).unwrap();
    w.allow_patches();
    w.push_extent_deferred(Ref::UNDEF, data.len() as u64, stream)
        .unwrap();
    assert!(w.finish().is_err());
}
