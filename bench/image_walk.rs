//! Image validate + walk throughput, beside reading the same file.
//!
//! Builds an image of 100,000 objects (namespaces, nsproxies, tasks) with
//! `ImageWriter` in a temporary file, then measures in the same run:
//!
//! - `cat FILE > /dev/null` as a subprocess (and an empty subprocess, to show
//!   what spawning costs),
//! - an in-process `std::fs::read` of the file,
//! - an in-process mmap of the file, summing every byte,
//! - kstate: `ImageSource::open` + `Image::parse` + walking every object,
//!   and, to show where the time goes, parse alone, the walk alone and a bare
//!   CRC32 over the whole file.
//!
//! Before each method the file is read once (so it is in the page cache for
//! every method alike); each method then runs 7 times (`KSTATE_BENCH_REPS`) and the median is
//! reported. MB/s is 10^6 bytes per second.
//!
//! Run with `cargo bench --bench image_walk`. `KSTATE_BENCH_OBJECTS=N` changes
//! the number of objects (default 100,000).

use std::fs::File;
use std::hint::black_box;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kstate::image::format::{
    ns_flags, IdExtent, NsCommon, NsproxyRecord, PidNsRecord, TaskRecord, TimeNsRecord,
    UserNsRecord, UtsNsRecord,
};
use kstate::image::{HeaderInfo, Image, ImageSource, ImageWriter, Kind, Object, Ref};
use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::IntoBytes;

const DEFAULT_OBJECTS: usize = 100_000;
/// Timed runs per method (`KSTATE_BENCH_REPS` overrides).
const DEFAULT_REPS: usize = 7;
/// At most this many nsproxies ("a few hundred").
const NSPROXIES: usize = 300;

/// Removes the temporary image however the benchmark ends.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn common(flags: u32, ino: u64, owner: Ref) -> NsCommon {
    NsCommon {
        flags: U32::new(flags),
        users: U32::ZERO,
        dev: U64::new(4),
        ino: U64::new(ino),
        owner,
    }
}

fn ext(first: u32, lower: u32, count: u32) -> IdExtent {
    IdExtent {
        first: U32::new(first),
        lower_first: U32::new(lower),
        count: U32::new(count),
    }
}

/// Writes a plausible tree: an external level-0 user and pid namespace, two
/// nested user namespaces, three nested pid namespaces, the other kinds
/// external and internal, a few hundred nsproxies, and tasks for the rest.
/// Returns the number of records written.
fn build_image(path: &Path, objects: usize) -> std::io::Result<usize> {
    let file = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let info = HeaderInfo {
        kernel_release: b"6.1.0-bench".to_vec(),
        ..HeaderInfo::default()
    };
    let mut w = ImageWriter::new(file, &info)?;
    let mut ino = 4_026_531_835u64;
    let mut next_ino = || {
        ino += 1;
        ino
    };

    // User namespaces: level 0 (external), 1 and 2.
    let mut user = Vec::new();
    for level in 0..3u32 {
        let external = level == 0;
        let (uid, gid): (Vec<IdExtent>, Vec<IdExtent>) = if external {
            (Vec::new(), Vec::new())
        } else {
            (
                vec![ext(0, 100_000 * level, 65_536)],
                vec![ext(0, 100_000 * level, 65_536), ext(65_536, 1_000, 1)],
            )
        };
        let rec = UserNsRecord {
            common: common(
                if external { ns_flags::EXTERNAL } else { 0 },
                next_ino(),
                user.last().copied().unwrap_or(Ref::UNDEF),
            ),
            level: U32::new(level),
            setgroups: U32::new(if external { 0 } else { 2 }),
            uid_extents: U32::new(uid.len() as u32),
            gid_extents: U32::new(gid.len() as u32),
        };
        user.push(w.push(Kind::UserNs, &rec, &[uid.as_bytes(), gid.as_bytes()])?);
    }

    // Pid namespaces: level 0 (external) to 3, each owned by a user namespace.
    let mut pid: Vec<Ref> = Vec::new();
    for level in 0..4u32 {
        let rec = PidNsRecord {
            common: common(
                if level == 0 { ns_flags::EXTERNAL } else { 0 },
                next_ino(),
                user[(level as usize).min(2)],
            ),
            parent: pid.last().copied().unwrap_or(Ref::UNDEF),
            level: U32::new(level),
            last_pid: U32::new(if level == 0 { 4_194_304 } else { 1_000_000 }),
        };
        pid.push(w.push(Kind::PidNs, &rec, &[])?);
    }

    // Uts namespaces, external and internal, with host and domain names.
    let mut uts = Vec::new();
    for (i, (host, domain)) in [
        (&b"build-host-01"[..], &b"(none)"[..]),
        (b"kstate-bench-container", b"example.org"),
    ]
    .into_iter()
    .enumerate()
    {
        let rec = UtsNsRecord {
            common: common(
                if i == 0 { ns_flags::EXTERNAL } else { 0 },
                next_ino(),
                user[i],
            ),
            hostname_len: U32::new(host.len() as u32),
            domainname_len: U32::new(domain.len() as u32),
        };
        uts.push(w.push(Kind::UtsNs, &rec, &[host, domain])?);
    }

    // ipc, mnt, net, cgroup: one external and one internal of each.
    let mut plain = Vec::new();
    for kind in [Kind::IpcNs, Kind::MntNs, Kind::NetNs, Kind::CgroupNs] {
        let mut pair = Vec::new();
        for (i, &owner) in user[..2].iter().enumerate() {
            let rec = common(
                if i == 0 { ns_flags::EXTERNAL } else { 0 },
                next_ino(),
                owner,
            );
            // An ipc namespace's record carries its sysctls (version 2).
            pair.push(if kind == Kind::IpcNs {
                let ipc = kstate::image::format::IpcNsRecord {
                    common: rec,
                    ..Default::default()
                };
                w.push(kind, &ipc, &[])?
            } else {
                w.push(kind, &rec, &[])?
            });
        }
        plain.push(pair);
    }

    // Time namespaces: the external one and one with clock offsets.
    let mut time = Vec::new();
    for (i, &owner) in user[..2].iter().enumerate() {
        let rec = TimeNsRecord {
            common: common(
                if i == 0 { ns_flags::EXTERNAL } else { 0 },
                next_ino(),
                owner,
            ),
            monotonic_sec: I64::new(if i == 0 { 0 } else { -86_400 }),
            monotonic_nsec: I64::new(if i == 0 { 0 } else { 250_000_000 }),
            boottime_sec: I64::new(if i == 0 { 0 } else { 3_600 }),
            boottime_nsec: I64::new(0),
        };
        time.push(w.push(Kind::TimeNs, &rec, &[])?);
    }

    let namespaces = w.record_count() as usize;
    assert!(
        objects >= namespaces + 2,
        "KSTATE_BENCH_OBJECTS must be at least {}",
        namespaces + 2
    );

    // Nsproxies: pid namespace level 1 to 3 (tasks with 2 to 4 pid levels).
    let n_nsproxies = NSPROXIES.min((objects - namespaces) / 10).max(1);
    let mut nsproxies = Vec::with_capacity(n_nsproxies);
    for i in 0..n_nsproxies {
        let level = 1 + i % 3;
        // A few members still share a namespace with the outside.
        let inner = usize::from(i % 7 != 0);
        let rec = NsproxyRecord {
            users: U32::ZERO,
            reserved: U32::ZERO,
            user: user[level.min(2)],
            uts: uts[inner],
            ipc: plain[0][inner],
            mnt: plain[1][1],
            pid: pid[level],
            pid_for_children: pid[if i % 5 == 0 {
                (level + 1).min(3)
            } else {
                level
            }],
            net: plain[2][inner],
            cgroup: plain[3][1],
            time: time[inner],
            time_for_children: time[inner],
        };
        nsproxies.push((w.push(Kind::Nsproxy, &rec, &[])?, level as u32 + 1));
    }

    // Tasks: a 4-ary tree, the root first, each task's parent earlier.
    const PROGRAMS: [(&[u8], &[u8]); 8] = [
        (b"bash", b"/usr/bin/bash"),
        (b"nginx", b"/usr/sbin/nginx"),
        (b"postgres", b"/usr/lib/postgresql/15/bin/postgres"),
        (b"python3", b"/usr/bin/python3.11"),
        (b"sleep", b"/usr/bin/sleep"),
        (b"sshd", b"/usr/sbin/sshd"),
        (b"java", b"/usr/lib/jvm/java-17-openjdk-amd64/bin/java"),
        (b"containerd-shim", b"/usr/bin/containerd-shim-runc-v2"),
    ];
    let n_tasks = objects - namespaces - n_nsproxies;
    let mut tasks: Vec<(Ref, u32)> = Vec::with_capacity(n_tasks);
    let mut pids = Vec::new();
    let mut threads = Vec::new();
    for i in 0..n_tasks {
        let (parent, ppid) = match i {
            0 => (Ref::UNDEF, 1),
            _ => tasks[(i - 1) / 4],
        };
        let (nsproxy, levels) = nsproxies[(i * 7919) % n_nsproxies];
        let levels = levels as usize;
        let outer = 1_000 + i as u32;
        // NSpid, outermost first: the pid shrinks in each nested namespace.
        let nspid: Vec<u32> = (0..levels).map(|l| outer / (1 << l) + 1).collect();
        let nthreads = if i % 16 == 0 { 1 + i % 4 } else { 1 };
        pids.clear();
        for array in 0..4 {
            // nspid, nstgid (the same), nspgid, nssid.
            let div = [1, 1, 4, 64][array];
            pids.extend(nspid.iter().map(|&p| U32::new(p / div + 1)));
        }
        threads.clear();
        for t in 0..nthreads as u32 {
            threads.extend(nspid.iter().map(|&p| U32::new(p + t * 100_003)));
        }
        let (comm_name, exe) = PROGRAMS[i % PROGRAMS.len()];
        let mut comm = [0u8; 16];
        let n = comm_name.len().min(15);
        comm[..n].copy_from_slice(&comm_name[..n]);
        let rec = TaskRecord {
            parent,
            nsproxy,
            ppid: U32::new(ppid),
            levels: U32::new(levels as u32),
            threads: U32::new(nthreads as u32),
            exe_len: U32::new(exe.len() as u32),
            flags: U32::ZERO,
            reserved: U32::ZERO,
            comm,
        };
        let r = w.push(
            Kind::Task,
            &rec,
            &[pids.as_bytes(), threads.as_bytes(), exe],
        )?;
        tasks.push((r, outer));
    }

    let records = w.record_count() as usize;
    let out = w.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(records)
}

/// What the walk found: enough to keep every view field live.
#[derive(Debug, Default, PartialEq, Eq)]
struct WalkSummary {
    kinds: [u64; 17],
    pid_sum: u64,
    thread_pids: u64,
    name_bytes: u64,
    ref_sum: u64,
}

fn walk(img: &Image<'_>) -> WalkSummary {
    let mut s = WalkSummary::default();
    for (_, obj) in img.objects() {
        let obj = obj.expect("a validated image has valid objects");
        if let Some(c) = obj.ns_common() {
            s.ref_sum += u64::from(c.owner.id.get()) + c.ino.get();
        }
        match obj {
            Object::UserNs(v) => {
                s.kinds[Kind::UserNs as usize] += 1;
                s.pid_sum += v
                    .uid_map
                    .iter()
                    .map(|e| u64::from(e.count.get()))
                    .sum::<u64>();
                s.pid_sum += v
                    .gid_map
                    .iter()
                    .map(|e| u64::from(e.count.get()))
                    .sum::<u64>();
            }
            Object::PidNs(r) => {
                s.kinds[Kind::PidNs as usize] += 1;
                s.ref_sum += u64::from(r.parent.id.get()) + u64::from(r.level.get());
            }
            Object::UtsNs(v) => {
                s.kinds[Kind::UtsNs as usize] += 1;
                s.name_bytes += (v.hostname.len() + v.domainname.len()) as u64;
            }
            Object::TimeNs(r) => {
                s.kinds[Kind::TimeNs as usize] += 1;
                s.pid_sum += r.monotonic_sec.get() as u64;
            }
            Object::PlainNs(v) => s.kinds[v.kind as usize] += 1,
            Object::Nsproxy(r) => {
                s.kinds[Kind::Nsproxy as usize] += 1;
                s.ref_sum += r
                    .refs()
                    .iter()
                    .map(|(_, rf, _)| u64::from(rf.id.get()))
                    .sum::<u64>();
            }
            Object::Task(t) => {
                s.kinds[Kind::Task as usize] += 1;
                s.pid_sum += u64::from(t.pid());
                s.pid_sum += t.nspid.iter().map(|p| u64::from(p.get())).sum::<u64>();
                s.pid_sum += u64::from(t.nssid.last().map_or(0, |p| p.get()));
                s.thread_pids += t.thread_pids().count() as u64;
                s.name_bytes += (t.comm().len() + t.exe.len()) as u64;
                s.ref_sum += u64::from(t.rec.parent.id.get() + t.rec.nsproxy.id.get());
            }
            Object::Extent(e) => {
                s.kinds[Kind::Extent as usize] += 1;
                s.name_bytes += e.data.len() as u64;
            }
            // Task state records: the synthetic image holds none.
            other => s.kinds[other.kind() as usize] += 1,
        }
    }
    s
}

/// Reads the whole file once so it sits in the page cache.
fn warm(path: &Path) {
    black_box(std::fs::read(path).expect("read image"));
}

/// Warms the file, then times `f` `reps` times; returns the median.
fn measure(path: &Path, reps: usize, mut f: impl FnMut()) -> Duration {
    warm(path);
    let mut times: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[reps / 2]
}

fn run(cmd: &mut Command) {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("spawn subprocess");
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn open_parse(path: &Path) -> ImageSource {
    ImageSource::open(path).expect("open image")
}

/// A count from the environment, or `default` when unset.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive number, not {v:?}")),
        Err(_) => default,
    }
}

fn main() {
    let objects = env_count("KSTATE_BENCH_OBJECTS", DEFAULT_OBJECTS);
    let reps = env_count("KSTATE_BENCH_REPS", DEFAULT_REPS);
    let path = std::env::temp_dir().join(format!(
        "kstate-bench-image_walk-{}.img",
        std::process::id()
    ));
    let _guard = TempFile(path.clone());

    let t = Instant::now();
    let records = build_image(&path, objects).expect("write image");
    let build = t.elapsed();
    let size = std::fs::metadata(&path).expect("stat image").len();
    let mb = size as f64 / 1e6;

    // The image must validate, and the walk must see every record.
    let src = open_parse(&path);
    let img = Image::parse(src.bytes()).expect("Image::parse rejects the benchmark image");
    assert_eq!(img.record_count() as usize, records);
    let expected = walk(&img);
    assert_eq!(expected.kinds.iter().sum::<u64>(), records as u64);
    drop(src);

    println!(
        "image_walk: {records} objects ({} nsproxies, {} tasks, {} namespaces)",
        expected.kinds[Kind::Nsproxy as usize],
        expected.kinds[Kind::Task as usize],
        records as u64
            - expected.kinds[Kind::Nsproxy as usize]
            - expected.kinds[Kind::Task as usize],
    );
    println!(
        "file: {} ({size} bytes, {mb:.2} MB, {:.1} bytes/object), written in {:.1} ms",
        path.display(),
        size as f64 / records as f64,
        build.as_secs_f64() * 1e3
    );
    println!("each row: file warmed by one read, then median of {reps} runs; MB = 10^6 bytes\n");

    let spawn = measure(&path, reps, || run(Command::new("cat").arg("/dev/null")));
    let cat = measure(&path, reps, || run(Command::new("cat").arg(&path)));
    let fs_read = measure(&path, reps, || {
        black_box(std::fs::read(&path).expect("read image"));
    });
    let mmap_sum = measure(&path, reps, || {
        let src = open_parse(&path);
        let bytes = src.bytes();
        let words = bytes.chunks_exact(8);
        let tail = words.remainder().iter().map(|&b| u64::from(b)).sum::<u64>();
        let sum = words
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
            .fold(tail, u64::wrapping_add);
        black_box(sum);
    });
    let kstate = measure(&path, reps, || {
        let src = open_parse(&path);
        let img = Image::parse(black_box(src.bytes())).expect("parse");
        let s = walk(&img);
        assert_eq!(black_box(s), expected);
    });

    // Breakdown of the kstate row.
    let parse_only = measure(&path, reps, || {
        let src = open_parse(&path);
        black_box(Image::parse(black_box(src.bytes())).expect("parse"));
    });
    let src = open_parse(&path);
    let img = Image::parse(src.bytes()).expect("parse");
    let walk_only = measure(&path, reps, || {
        black_box(walk(black_box(&img)));
    });
    let crc_only = measure(&path, reps, || {
        black_box(crc32fast::hash(black_box(src.bytes())));
    });
    drop(src);

    let mbps = |d: Duration| mb / d.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9}",
        "method", "median ms", "MB/s", "vs cat", "vs read"
    );
    let row = |name: &str, d: Duration, whole_file: bool| {
        if whole_file {
            println!(
                "{name:<52} {:>9.2} {:>9.0} {:>8.2}x {:>8.2}x",
                ms(d),
                mbps(d),
                mbps(d) / mbps(cat),
                mbps(d) / mbps(fs_read)
            );
        } else {
            println!("{name:<52} {:>9.2} {:>9} {:>9} {:>9}", ms(d), "-", "-", "-");
        }
    };
    row("(a)   cat FILE > /dev/null (subprocess)", cat, true);
    row("      spawn only: cat /dev/null > /dev/null", spawn, false);
    row("(a')  std::fs::read into a Vec (in process)", fs_read, true);
    row(
        "(a'') mmap (ImageSource::open) + sum all bytes",
        mmap_sum,
        true,
    );
    row("(b)   kstate: open + Image::parse + walk all", kstate, true);
    row("      of which: open + Image::parse only", parse_only, true);
    row("      of which: walk only (img.objects())", walk_only, true);
    row(
        "      for scale: crc32fast::hash(whole file)",
        crc_only,
        true,
    );

    let ratio = mbps(kstate) / mbps(cat);
    match cat.checked_sub(spawn).filter(|d| !d.is_zero()) {
        Some(d) => println!("\ncat minus spawn: {:.2} ms ({:.0} MB/s)", ms(d), mbps(d)),
        None => println!("\ncat minus spawn: not measurable (noise larger than the read)"),
    }
    println!(
        "aim (kstate >= 0.5 x cat throughput): {} ({ratio:.2}x cat, {:.2}x in-process read)",
        if ratio >= 0.5 { "MET" } else { "NOT MET" },
        mbps(kstate) / mbps(fs_read)
    );
}
