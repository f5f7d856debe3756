//! Checkpoint and restart of two workloads, kstate beside CRIU and beside
//! the kernel's floor, in the same run.
//!
//! Workloads (`bench/workloads/*.c`, built here with `cc -O2` into
//! `CARGO_TARGET_TMPDIR`), each run under `fixtures/reaper.c` (a subreaper of
//! our own, so a killed tree's pids are free again at once):
//!
//! - `mem256`: one process with 256 MiB of private anonymous memory filled
//!   with xorshift64 data, sleeping;
//! - `tree50`: 50 sleeping processes in 3 generations (1 + 7 + 7×6).
//!
//! For each of `KSTATE_BENCH_REPS` (default 5) rounds: `sync` (so that no
//! writeback of earlier rounds lands on the timed one), start the workload,
//! time `kstate checkpoint -t ROOT -o IMAGE` (the tree is killed after the
//! image is written, as CRIU does), wait until every task is reaped, then
//! time `kstate restart IMAGE -d --pidfile F` from its fork until it returns
//! (it runs under `bench/workloads/reaprun.c`, which times it and then reaps
//! the detached tree), check that the tree runs again (same root pid, same
//! task count, none stopped; for mem256 the memory compared byte for byte on
//! the first round), and kill it. One untimed warm-up round comes first;
//! medians of the timed rounds are shown.
//!
//! Beside it, in the same run: CRIU (`criu dump` / `criu restore -d -S`) on the
//! same workloads when a working CRIU is there (`$CRIU`, else `criu` on PATH
//! if `criu check` passes; otherwise the reference figures of
//! `shared/design/criu-reference.md` are quoted, marked as such); a plain
//! in-process memcpy of 256 MiB (into warm memory, and into freshly mapped
//! memory), a read of the workload's 256 MiB through /proc/PID/mem, a write
//! of 256 MiB to a file next to the images, the dump floor (`process_vm_readv`
//! in 4 MiB pieces straight into a file, with and without fdatasync); and
//! for the tree, the time a C
//! program takes to fork the same 50-process tree and to kill and reap it.
//!
//! Run with `cargo bench --bench ckpt_restart` (as root).

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{
    bench_dirs, build_c, checkpoint_cmd, env_count, find_criu, fmt_med, med_ms, median, ms, range,
    run_detached, run_timed, spawn_guarded, wait_running, Guarded, CLI_TIMEOUT,
};

/// Timed rounds per row (`KSTATE_BENCH_REPS` overrides).
const DEFAULT_REPS: usize = 5;
const MEM_MIB: usize = 256;
const MEM_BYTES: usize = MEM_MIB << 20;
const TREE_TASKS: usize = 50;

// ---------------------------------------------------------------- helpers

struct Bins {
    kstate: PathBuf,
    reaper: PathBuf,
    reaprun: PathBuf,
    mem256: PathBuf,
    tree50: PathBuf,
}

/// A workload under the reaper.
struct Workload {
    g: Guarded,
    root: i32,
    /// mem256: address of the filled mapping.
    addr: u64,
}

fn start_workload(bins: &Bins, prog: &Path, args: &[&str]) -> Result<Workload, String> {
    let (g, root, more) =
        common::start_workload(&bins.reaper, prog, args, &prog.display().to_string())?;
    Ok(Workload {
        g,
        root,
        addr: more
            .first()
            .and_then(|a| u64::from_str_radix(a, 16).ok())
            .unwrap_or(0),
    })
}

/// Reads `len` bytes at `addr` of `pid` through /proc/PID/mem into `buf`.
fn read_proc_mem(pid: i32, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
    let f = File::open(format!("/proc/{pid}/mem"))?;
    f.read_exact_at(buf, addr)
}

fn dir_size(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

// ---------------------------------------------------------------- engines

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Kstate,
    Criu,
}

#[derive(Default)]
struct EngineRun {
    ckpt: Vec<Duration>,
    restore: Vec<Duration>,
    image: u64,
    errors: Vec<String>,
}

/// One workload, one engine, `reps` rounds of checkpoint → restore.
/// `expect` holds the workload's memory (mem256) to compare on round 0.
#[allow(clippy::too_many_arguments)]
fn rounds(
    engine: Engine,
    criu: Option<&Path>,
    bins: &Bins,
    prog: &Path,
    tasks: usize,
    reps: usize,
    dir: &Path,
    mut expect: Option<&mut Vec<u8>>,
) -> EngineRun {
    let mut run = EngineRun::default();
    // One untimed warm-up round first (page cache, guest memory first
    // touched in this VM, the binaries): its times are dropped.
    let mut warm = EngineRun::default();
    for rep in std::iter::once(None).chain((0..reps).map(Some)) {
        // The warm-up round counts as round 0 (the memory is compared).
        let into = if rep.is_some() { &mut run } else { &mut warm };
        let res = round(
            engine,
            criu,
            bins,
            prog,
            tasks,
            dir,
            rep.unwrap_or(0),
            into,
            expect.as_deref_mut(),
        );
        match (rep, res) {
            (_, Ok(())) => {}
            (None, Err(e)) => {
                eprintln!("  warm-up round: {e}");
                run.errors.push(format!("warm-up round: {e}"));
            }
            (Some(rep), Err(e)) => {
                eprintln!("  round {rep}: {e}");
                run.errors.push(e);
                // Three failures in a row: this engine cannot do this workload.
                if run.errors.len() >= 3 && run.ckpt.len() + run.restore.len() == 0 {
                    break;
                }
            }
        }
    }
    run
}

#[allow(clippy::too_many_arguments)]
fn round(
    engine: Engine,
    criu: Option<&Path>,
    bins: &Bins,
    prog: &Path,
    tasks: usize,
    dir: &Path,
    rep: usize,
    run: &mut EngineRun,
    expect: Option<&mut Vec<u8>>,
) -> Result<(), String> {
    let img = match engine {
        Engine::Kstate => dir.join("image.kst"),
        Engine::Criu => dir.join("criu-img"),
    };
    let _ = std::fs::remove_file(&img);
    let _ = std::fs::remove_dir_all(&img);
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);

    // Earlier rounds and the baselines leave hundreds of MiB dirty; their
    // writeback would land on whichever engine runs next. Every timed round
    // starts from a clean page cache, for both engines alike.
    let _ = Command::new("sync").status();
    let mut w = start_workload(bins, prog, &[])?;
    let root = w.root;
    let addr = w.addr;
    if let Some(buf) = expect.as_deref() {
        if buf.is_empty() {
            return Err("no reference memory".into());
        }
    }
    let t = match engine {
        Engine::Kstate => run_timed(&mut checkpoint_cmd(&bins.kstate, root, &img), dir),
        Engine::Criu => {
            std::fs::create_dir_all(&img).expect("criu image dir");
            run_timed(
                Command::new(criu.expect("criu"))
                    .arg("dump")
                    .arg("-t")
                    .arg(root.to_string())
                    .arg("-D")
                    .arg(&img)
                    .arg("-o")
                    .arg("dump.log"),
                dir,
            )
        }
    }
    .map_err(|e| format!("checkpoint failed: {e}"))?;
    run.ckpt.push(t);
    // Every task must be gone and reaped before the pids can be used again.
    w.g.wait_gone()?;
    drop(w);
    run.image = dir_size(&img);

    let pf = pidfile.to_str().expect("utf-8");
    let imgs = img.to_str().expect("utf-8");
    let d = match engine {
        Engine::Kstate => run_detached(
            &bins.reaprun,
            &bins.kstate,
            &["restart", imgs, "-d", "--pidfile", pf],
            dir,
            None,
        ),
        Engine::Criu => run_detached(
            &bins.reaprun,
            criu.expect("criu"),
            // `-S` (`--restore-sibling`): the root is created as a child of
            // reaprun, CRIU's caller, as the root was a child of the reaper.
            // The workloads' root has a pdeath signal (SIGKILL, from the
            // reaper); restored with a plain `-d` under CRIU itself, it gets
            // that signal as soon as CRIU exits and the tree is gone.
            &[
                "restore",
                "-D",
                imgs,
                "-d",
                "-S",
                "--pidfile",
                pf,
                "-o",
                "restore.log",
            ],
            dir,
            None,
        ),
    }
    .map_err(|e| format!("restore failed: {e}"))?;
    let (t, g) = (d.time, d.g);
    let got: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("restore wrote no pidfile")?;
    if got != root {
        return Err(format!("restored root is {got}, not {root}"));
    }
    wait_running(root, tasks, "restored tree")?;
    if rep == 0 {
        if let Some(buf) = expect {
            let mut now = vec![0u8; buf.len()];
            read_proc_mem(root, addr, &mut now)
                .map_err(|e| format!("read restored memory: {e}"))?;
            if now != *buf {
                return Err("restored memory differs from the checkpointed memory".into());
            }
        }
    }
    run.restore.push(t);
    let mut g = g;
    g.kill_below();
    g.wait_gone()?;
    Ok(())
}

// ---------------------------------------------------------------- floors

/// memcpy of 256 MiB: into warm memory, and into freshly mapped memory.
fn memcpy_floor(reps: usize, src: &[u8]) -> (Duration, Duration) {
    let mut dst = vec![1u8; src.len()];
    let warm = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                dst.copy_from_slice(black_box(src));
                black_box(&dst);
                t.elapsed()
            })
            .collect(),
    );
    let fresh = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                // SAFETY: an anonymous private mapping of our own, written
                // only through the slice below and unmapped right after.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        src.len(),
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                assert_ne!(p, libc::MAP_FAILED, "mmap");
                // SAFETY: p is a fresh mapping of src.len() bytes.
                let d = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), src.len()) };
                d.copy_from_slice(black_box(src));
                black_box(&d[..]);
                let e = t.elapsed();
                // SAFETY: unmapping what we mapped; d is not used again.
                unsafe { libc::munmap(p, src.len()) };
                e
            })
            .collect(),
    );
    (warm, fresh)
}

/// The median over `reps` runs of creating the file `name` in `dir` and
/// `fill`ing it (all timed); the file is removed before each run and after.
fn file_floor(reps: usize, dir: &Path, name: &str, mut fill: impl FnMut(&mut File)) -> Duration {
    let p = dir.join(name);
    let d = median(
        (0..reps)
            .map(|_| {
                let _ = std::fs::remove_file(&p);
                let t = Instant::now();
                let mut f = File::create(&p).expect("create");
                fill(&mut f);
                drop(f);
                t.elapsed()
            })
            .collect(),
    );
    let _ = std::fs::remove_file(&p);
    d
}

/// Writing 256 MiB to a new file in `dir` (no fsync, as kstate does not).
fn write_floor(reps: usize, src: &[u8], dir: &Path) -> Duration {
    file_floor(reps, dir, "write-floor.bin", |f| {
        f.write_all(src).expect("write")
    })
}

/// What a memory dump needs at least: `process_vm_readv` of the workload's
/// 256 MiB in 4 MiB pieces into one reused buffer, each piece written to a
/// new file in `dir` at once; with `sync`, an fdatasync at the end (kstate
/// syncs its image, see the strace in BENCHMARKS.md).
fn stream_floor(pid: i32, addr: u64, reps: usize, dir: &Path, sync: bool) -> Duration {
    const PIECE: usize = 4 << 20;
    let mut buf = vec![0u8; PIECE];
    file_floor(reps, dir, "stream-floor.bin", |f| {
        for off in (0..MEM_BYTES).step_by(PIECE) {
            let local = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: PIECE,
            };
            let remote = libc::iovec {
                iov_base: (addr as usize + off) as *mut libc::c_void,
                iov_len: PIECE,
            };
            // SAFETY: one local iovec over our own buffer of PIECE
            // bytes; the remote one is only read by the kernel.
            let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
            assert_eq!(
                n,
                PIECE as isize,
                "process_vm_readv: {}",
                std::io::Error::last_os_error()
            );
            f.write_all(&buf).expect("write");
        }
        if sync {
            f.sync_data().expect("fdatasync");
        }
    })
}

/// `tree50 --floor N`: median build, median kill + reap.
fn tree_floor(bins: &Bins, reps: usize) -> (Duration, Duration) {
    let (g, out) = spawn_guarded(
        Command::new(&bins.tree50)
            .arg("--floor")
            .arg(reps.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit()),
        "tree50 --floor",
    )
    .expect("start tree50 --floor");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(out).lines().map_while(Result::ok).collect();
        let _ = tx.send(lines);
    });
    let lines = rx
        .recv_timeout(CLI_TIMEOUT)
        .expect("tree50 --floor finished");
    drop(g);
    let (mut build, mut reap) = (Vec::new(), Vec::new());
    for l in lines {
        let w: Vec<u64> = l
            .split_whitespace()
            .skip(1)
            .filter_map(|s| s.parse().ok())
            .collect();
        if w.len() == 2 {
            build.push(Duration::from_nanos(w[0]));
            reap.push(Duration::from_nanos(w[1]));
        }
    }
    assert_eq!(
        build.len(),
        reps,
        "tree50 --floor printed {} rounds",
        build.len()
    );
    (median(build), median(reap))
}

/// Wall time of a bare `kstate --help` (spawn + exec + exit of the CLI).
fn spawn_floor(bins: &Bins, reps: usize, dir: &Path) -> Duration {
    median(
        (0..reps)
            .map(|_| {
                run_timed(Command::new(&bins.kstate).arg("--help"), dir).expect("kstate --help")
            })
            .collect(),
    )
}

// ---------------------------------------------------------------- report

/// CRIU reference figures (criu-reference.md, "as-is" column, ms), and
/// estimates for these workloads built from them.
struct Reference {
    dump: f64,
    restore: f64,
    how: &'static str,
}

fn reference_mem() -> Reference {
    // a: 1 process, 45 ms dump / 41 ms restore; "about 0.6 ms per MiB each way".
    Reference {
        dump: 45.0 + 0.6 * MEM_MIB as f64,
        restore: 41.0 + 0.6 * MEM_MIB as f64,
        how: "row a (45 / 41 ms) + 0.6 ms/MiB x 256",
    }
}

fn reference_tree() -> Reference {
    // a: 45 / 41 ms; dump ~2-3 ms per extra process (2.5 taken); restore
    // per process from p1 (36 ms, 1 task) to c (56 ms, 10 tasks): 2.2 ms.
    Reference {
        dump: 45.0 + 2.5 * (TREE_TASKS - 1) as f64,
        restore: 41.0 + 2.2 * (TREE_TASKS - 1) as f64,
        how: "row a (45 / 41 ms) + 49 x 2.5 ms dump, 49 x 2.2 ms restore (rows p1 -> c)",
    }
}

fn main() {
    let reps = env_count("KSTATE_BENCH_REPS", DEFAULT_REPS);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("ckpt_restart: must run as root (checkpoint and restart need it)");
        std::process::exit(1);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (bindir, dir, _rm) = bench_dirs("ckpt_restart");

    let wl = manifest.join("bench/workloads");
    let bins = Bins {
        kstate: PathBuf::from(env!("CARGO_BIN_EXE_kstate")),
        reaper: build_c(&manifest.join("fixtures/reaper.c"), &bindir, "reaper"),
        reaprun: build_c(&wl.join("reaprun.c"), &bindir, "reaprun"),
        mem256: build_c(&wl.join("mem256.c"), &bindir, "mem256"),
        tree50: build_c(&wl.join("tree50.c"), &bindir, "tree50"),
    };

    println!(
        "ckpt_restart: median of {reps} rounds per row; images in {}",
        dir.display()
    );
    let criu = find_criu();
    match &criu {
        Ok(c) => println!("CRIU: {} (same run)", c.display()),
        Err(why) => println!(
            "CRIU: COULD NOT RUN HERE ({why}); CRIU figures below are REFERENCE figures \
             from shared/design/criu-reference.md (another run, same kind of machine), not same-run"
        ),
    }
    let criu = criu.ok();

    // --- memory baselines, on a live mem256.
    let mut expect = vec![0u8; MEM_BYTES];
    let (proc_read, stream, stream_sync) = {
        let w = start_workload(&bins, &bins.mem256, &[]).expect("start mem256");
        let d = median(
            (0..reps)
                .map(|_| {
                    let t = Instant::now();
                    read_proc_mem(w.root, w.addr, &mut expect).expect("read /proc/PID/mem");
                    t.elapsed()
                })
                .collect(),
        );
        let s = stream_floor(w.root, w.addr, reps, &dir, false);
        let ss = stream_floor(w.root, w.addr, reps, &dir, true);
        drop(w);
        (d, s, ss)
    };
    let (memcpy_warm, memcpy_fresh) = memcpy_floor(reps, &expect);
    let write_file = write_floor(reps, &expect, &dir);
    let (fork_tree, reap_tree) = tree_floor(&bins, reps);
    let spawn = spawn_floor(&bins, reps, &dir);

    // --- kstate and CRIU on both workloads.
    let mut both = |engine: Engine, criu: Option<&Path>, who: &str| {
        println!("running {who} on mem256 ...");
        let m = rounds(
            engine,
            criu,
            &bins,
            &bins.mem256,
            1,
            reps,
            &dir,
            Some(&mut expect),
        );
        println!("running {who} on tree50 ...");
        let t = rounds(
            engine,
            criu,
            &bins,
            &bins.tree50,
            TREE_TASKS,
            reps,
            &dir,
            None,
        );
        (m, t)
    };
    let (k_mem, k_tree) = both(Engine::Kstate, None, "kstate");
    let (c_mem, c_tree) = match &criu {
        Some(c) => {
            let (m, t) = both(Engine::Criu, Some(c), "CRIU");
            (Some(m), Some(t))
        }
        None => (None, None),
    };

    // --- table.
    let mib = MEM_MIB as f64;
    let mibs = |d: Duration| mib / d.as_secs_f64();
    println!();
    println!("baselines (median ms; MiB/s for 256 MiB)");
    println!(
        "  memcpy 256 MiB, warm destination      {:>8.1} ms {:>7.0} MiB/s",
        ms(memcpy_warm),
        mibs(memcpy_warm)
    );
    println!(
        "  memcpy 256 MiB, fresh mmap destination{:>8.1} ms {:>7.0} MiB/s",
        ms(memcpy_fresh),
        mibs(memcpy_fresh)
    );
    println!(
        "  pread /proc/PID/mem 256 MiB (live)    {:>8.1} ms {:>7.0} MiB/s",
        ms(proc_read),
        mibs(proc_read)
    );
    println!(
        "  write 256 MiB to a new file (no sync) {:>8.1} ms {:>7.0} MiB/s",
        ms(write_file),
        mibs(write_file)
    );
    println!(
        "  process_vm_readv 4 MiB pieces -> file {:>8.1} ms {:>7.0} MiB/s",
        ms(stream),
        mibs(stream)
    );
    println!(
        "    the same + fdatasync                {:>8.1} ms {:>7.0} MiB/s",
        ms(stream_sync),
        mibs(stream_sync)
    );
    println!(
        "  fork the 50-task tree (until all up)  {:>8.1} ms",
        ms(fork_tree)
    );
    println!(
        "  kill + reap the 50-task tree          {:>8.1} ms",
        ms(reap_tree)
    );
    println!(
        "  spawn floor: kstate --help            {:>8.1} ms",
        ms(spawn)
    );
    println!();

    let same_run = c_mem.is_some();
    let cref = if same_run {
        "CRIU same run"
    } else {
        "CRIU reference*"
    };
    println!(
        "{:<22} {:>9} {:>11} {:>10} {:>14} {:>10} {:>8}",
        "row", "kstate ms", "range", "MiB/s", cref, "CRIU/ks", "image MB"
    );
    let line = |name: &str, k: &[Duration], c: Option<f64>, thr: bool, img: u64| {
        let km = med_ms(k);
        println!(
            "{:<22} {:>9} {:>11} {:>10} {:>14} {:>10} {:>8.1}",
            name,
            fmt_med(k),
            range(k, 0),
            match (thr, km) {
                (true, Some(m)) => format!("{:.0}", mib / (m / 1e3)),
                _ => "-".into(),
            },
            c.map_or("-".into(), |c| format!("{c:.1}")),
            match (km, c) {
                (Some(k), Some(c)) => format!("{:.2}x", c / k),
                _ => "-".into(),
            },
            img as f64 / 1e6
        );
    };
    let cmed = |r: &Option<EngineRun>, dump: bool| -> Option<f64> {
        r.as_ref()
            .and_then(|r| med_ms(if dump { &r.ckpt } else { &r.restore }))
    };
    let (rm, rt) = (reference_mem(), reference_tree());
    let pick = |same: Option<f64>, reference: f64| if same_run { same } else { Some(reference) };
    line(
        "mem256 checkpoint",
        &k_mem.ckpt,
        pick(cmed(&c_mem, true), rm.dump),
        true,
        k_mem.image,
    );
    line(
        "mem256 restart -d",
        &k_mem.restore,
        pick(cmed(&c_mem, false), rm.restore),
        true,
        k_mem.image,
    );
    line(
        "tree50 checkpoint",
        &k_tree.ckpt,
        pick(cmed(&c_tree, true), rt.dump),
        false,
        k_tree.image,
    );
    line(
        "tree50 restart -d",
        &k_tree.restore,
        pick(cmed(&c_tree, false), rt.restore),
        false,
        k_tree.image,
    );
    if let (Some(m), Some(t)) = (&c_mem, &c_tree) {
        println!(
            "CRIU image sizes: mem256 {:.1} MB, tree50 {:.1} MB",
            m.image as f64 / 1e6,
            t.image as f64 / 1e6
        );
    } else {
        println!("* not measured here: estimated from criu-reference.md ('as-is' column):");
        println!("    mem256: {}", rm.how);
        println!("    tree50: {}", rt.how);
    }
    println!("MB = 10^6 bytes; CRIU/ks > 1 means kstate is faster");

    println!();
    println!("ratios");
    let kmed = |v: &[Duration]| (!v.is_empty()).then(|| median(v.to_vec()));
    if let Some(c) = kmed(&k_mem.ckpt) {
        println!(
            "  mem256 checkpoint throughput / memcpy (warm):  {:.2}x",
            ms(memcpy_warm) / ms(c)
        );
        println!(
            "  mem256 checkpoint throughput / memcpy (fresh): {:.2}x",
            ms(memcpy_fresh) / ms(c)
        );
        println!(
            "  mem256 checkpoint throughput / /proc/PID/mem:  {:.2}x",
            ms(proc_read) / ms(c)
        );
        println!(
            "  mem256 checkpoint vs floor (readv pieces -> file + spawn = {:.1} ms): {:.2}x the floor",
            ms(stream + spawn),
            ms(c) / ms(stream + spawn)
        );
        println!(
            "  mem256 checkpoint vs floor with fdatasync ({:.1} ms): {:.2}x the floor",
            ms(stream_sync + spawn),
            ms(c) / ms(stream_sync + spawn)
        );
    }
    if let Some(r) = kmed(&k_mem.restore) {
        println!(
            "  mem256 restart throughput / memcpy (fresh):    {:.2}x",
            ms(memcpy_fresh) / ms(r)
        );
    }
    // tree50 against its floor (`floor_what` + spawn), and per task.
    let tree_vs_floor = |what: &str, floor_what: &str, k: &[Duration], floor: Duration| {
        if let Some(t) = kmed(k) {
            println!(
                "  tree50 {what} vs floor ({floor_what} + spawn = {:.1} ms): {:.1}x the floor, {:.2} ms per task",
                ms(floor + spawn),
                ms(t) / ms(floor + spawn),
                ms(t) / TREE_TASKS as f64
            );
        }
    };
    tree_vs_floor("checkpoint", "kill + reap", &k_tree.ckpt, reap_tree);
    tree_vs_floor("restart", "fork tree", &k_tree.restore, fork_tree);

    println!();
    println!(
        "aims{}",
        if same_run {
            ""
        } else {
            " (CRIU: against the reference estimates, not same-run)"
        }
    );
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    // The aim "kstate `aim`" (CRIU's time at least `factor` times kstate's,
    // both ways) on one workload; kstate's median checkpoint when it has one.
    let criu_aim = |name: &str,
                    aim: &str,
                    factor: f64,
                    k: &EngineRun,
                    c: &Option<EngineRun>,
                    reference: &Reference| {
        match (kmed(&k.ckpt), kmed(&k.restore)) {
            (Some(ck), Some(r)) => {
                let (cd, cr) = (
                    pick(cmed(c, true), reference.dump),
                    pick(cmed(c, false), reference.restore),
                );
                if let (Some(cd), Some(cr)) = (cd, cr) {
                    println!(
                        "  {name}, kstate {aim}: checkpoint {:.2}x {}, restart {:.2}x {}",
                        cd / ms(ck),
                        verdict(cd / ms(ck) >= factor),
                        cr / ms(r),
                        verdict(cr / ms(r) >= factor)
                    );
                }
                Some(ck)
            }
            _ => {
                println!("  {name}: kstate failed, see errors");
                None
            }
        }
    };
    criu_aim(
        "tree50",
        ">= 3x faster than CRIU",
        3.0,
        &k_tree,
        &c_tree,
        &rt,
    );
    if let Some(c) = criu_aim("mem256", "no slower than CRIU", 1.0, &k_mem, &c_mem, &rm) {
        // Both readings: a dump fills new pages, as a memcpy into fresh
        // memory does; a warm memcpy is the upper bound of copying at all.
        println!(
            "  memory dump >= 0.5x memcpy speed: {:.2}x of memcpy into fresh memory {}, {:.2}x of warm memcpy {}",
            ms(memcpy_fresh) / ms(c),
            verdict(ms(memcpy_fresh) / ms(c) >= 0.5),
            ms(memcpy_warm) / ms(c),
            verdict(ms(memcpy_warm) / ms(c) >= 0.5)
        );
    }
    for (name, r) in [("kstate mem256", &k_mem), ("kstate tree50", &k_tree)]
        .into_iter()
        .chain(c_mem.iter().map(|r| ("CRIU mem256", r)))
        .chain(c_tree.iter().map(|r| ("CRIU tree50", r)))
    {
        for e in &r.errors {
            println!("  ERROR {name}: {e}");
        }
    }
}
