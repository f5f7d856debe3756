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
//! For each of `KSTATE_BENCH_REPS` (default 5) rounds: start the workload,
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

use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Timed rounds per row (`KSTATE_BENCH_REPS` overrides).
const DEFAULT_REPS: usize = 5;
const MEM_MIB: usize = 256;
const MEM_BYTES: usize = MEM_MIB << 20;
const TREE_TASKS: usize = 50;
/// Bounds on every wait.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
const GONE_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------- helpers

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty());
    v.sort();
    v[v.len() / 2]
}

/// A count from the environment, or `default` when unset.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name} must be a positive number, not {v:?}")),
        Err(_) => default,
    }
}

/// Compiles a C file into `dir` (once) and returns the executable.
fn build_c(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(src)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cc for {}: {e}", src.display()));
    assert!(
        res.status.success(),
        "cc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename built program");
    out
}

/// Children of every thread of `pid` (empty when it is gone).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let name = t.file_name();
        if let Ok(s) = std::fs::read_to_string(format!(
            "/proc/{pid}/task/{}/children",
            name.to_string_lossy()
        )) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// `root` and every descendant.
fn tree_pids(root: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        if out.contains(&p) {
            continue;
        }
        out.push(p);
        stack.extend(children(p));
    }
    out
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The State letter of /proc/PID/status (None when gone).
fn state(pid: i32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("State:"))
        .and_then(|v| v.trim().chars().next())
}

fn wait_until(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => return None,
        }
    }
}

/// A child of ours that is a subreaper (reaper, reaprun) with a tree under
/// it. Dropping it (also on panic) SIGKILLs every descendant, then the child,
/// and waits for it, all bounded.
struct Guarded {
    child: Child,
    name: &'static str,
}

impl Guarded {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Kills everything under the subreaper (not the subreaper itself).
    fn kill_below(&self) {
        let deadline = Instant::now() + GONE_TIMEOUT;
        loop {
            let below: Vec<i32> = tree_pids(self.pid()).into_iter().skip(1).collect();
            let alive: Vec<i32> = below
                .into_iter()
                .filter(|&p| !matches!(state(p), None | Some('Z') | Some('X')))
                .collect();
            if alive.is_empty() || Instant::now() > deadline {
                return;
            }
            for p in alive {
                sigkill(p);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the subreaper to exit (it does once it has no child left).
    fn wait_gone(&mut self) -> Result<(), String> {
        match wait_until(&mut self.child, GONE_TIMEOUT) {
            Some(_) => Ok(()),
            None => Err(format!(
                "{} {} still has tasks {:?} after {GONE_TIMEOUT:?}",
                self.name,
                self.pid(),
                tree_pids(self.pid())
            )),
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.kill_below();
        if wait_until(&mut self.child, Duration::from_millis(500)).is_none() {
            let _ = self.child.kill();
            if wait_until(&mut self.child, GONE_TIMEOUT).is_none() {
                eprintln!("warning: {} {} did not exit", self.name, self.pid());
            }
        }
    }
}

/// Reads the first line of `r` in a thread; None after `timeout`.
fn first_line(r: impl std::io::Read + Send + 'static, timeout: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the writer never gets SIGPIPE.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    rx.recv_timeout(timeout).ok()
}

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
    let mut child = Command::new(&bins.reaper)
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start the reaper: {e}"))?;
    let out = child.stdout.take().expect("piped");
    let g = Guarded {
        child,
        name: "reaper",
    };
    let line = first_line(out, READY_TIMEOUT)
        .ok_or_else(|| format!("{}: no READY within {READY_TIMEOUT:?}", prog.display()))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    match (w.first(), w.get(1).and_then(|p| p.parse::<i32>().ok())) {
        (Some(&"READY"), Some(root)) => Ok(Workload {
            g,
            root,
            addr: w
                .get(2)
                .and_then(|a| u64::from_str_radix(a, 16).ok())
                .unwrap_or(0),
        }),
        _ => Err(format!("{}: bad READY line {line:?}", prog.display())),
    }
}

/// Runs `cmd` (stdout and stderr to files in `dir`), bounded; returns the
/// wall time from spawn to exit, and stderr on failure.
fn run_timed(cmd: &mut Command, dir: &Path) -> Result<Duration, String> {
    let errf = dir.join("cli-stderr");
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&errf).expect("stderr file"))
        .env_remove("RUST_LOG")
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let st = match wait_until(&mut child, CLI_TIMEOUT) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} did not finish within {CLI_TIMEOUT:?}"));
        }
    };
    let d = t.elapsed();
    if st.success() {
        Ok(d)
    } else {
        Err(format!(
            "{st}: {}",
            std::fs::read_to_string(&errf).unwrap_or_default().trim()
        ))
    }
}

/// Runs `prog args…` under reaprun; returns its measured time (fork of the
/// program to its exit) and the guard of the tree it left behind.
fn run_detached(
    bins: &Bins,
    prog: &Path,
    args: &[&str],
    dir: &Path,
) -> Result<(Duration, Guarded), String> {
    let errf = dir.join("restore-stderr");
    let mut child = Command::new(&bins.reaprun)
        .arg(prog)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&errf).expect("stderr file"))
        .spawn()
        .map_err(|e| format!("start reaprun: {e}"))?;
    let out = child.stdout.take().expect("piped");
    let g = Guarded {
        child,
        name: "reaprun",
    };
    let line = first_line(out, CLI_TIMEOUT)
        .ok_or_else(|| format!("{} did not return within {CLI_TIMEOUT:?}", prog.display()))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    let (status, ns) = match (
        w.first(),
        w.get(1).and_then(|s| s.parse::<i32>().ok()),
        w.get(2).and_then(|s| s.parse::<u64>().ok()),
    ) {
        (Some(&"DONE"), Some(st), Some(ns)) => (st, ns),
        _ => return Err(format!("reaprun: bad line {line:?}")),
    };
    if status != 0 {
        let err = std::fs::read_to_string(&errf).unwrap_or_default();
        return Err(format!("wait status {status:#x}: {}", err.trim()));
    }
    Ok((Duration::from_nanos(ns), g))
}

/// Checks that the restored tree of `root` runs: `tasks` tasks, none
/// stopped, traced or dead.
fn check_running(root: i32, tasks: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = tree_pids(root);
        let bad: Vec<(i32, Option<char>)> = pids
            .iter()
            .map(|&p| (p, state(p)))
            .filter(|(_, s)| !matches!(s, Some('S') | Some('R') | Some('D')))
            .collect();
        if pids.len() == tasks && bad.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "restored tree of {root}: {} tasks (want {tasks}), not running: {bad:?}",
                pids.len()
            ));
        }
        std::thread::sleep(POLL);
    }
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
    let mut run = EngineRun {
        ckpt: Vec::new(),
        restore: Vec::new(),
        image: 0,
        errors: Vec::new(),
    };
    // One untimed warm-up round first (page cache, guest memory first
    // touched in this VM, the binaries): its times are dropped.
    let mut warm = EngineRun {
        ckpt: Vec::new(),
        restore: Vec::new(),
        image: 0,
        errors: Vec::new(),
    };
    if let Err(e) = round(
        engine,
        criu,
        bins,
        prog,
        tasks,
        dir,
        0,
        &mut warm,
        expect.as_deref_mut(),
    ) {
        eprintln!("  warm-up round: {e}");
        run.errors.push(format!("warm-up round: {e}"));
    }
    for rep in 0..reps {
        if let Err(e) = round(
            engine,
            criu,
            bins,
            prog,
            tasks,
            dir,
            rep,
            &mut run,
            expect.as_deref_mut(),
        ) {
            eprintln!("  round {rep}: {e}");
            run.errors.push(e);
            // Three failures in a row: this engine cannot do this workload.
            if run.errors.len() >= 3 && run.ckpt.len() + run.restore.len() == 0 {
                break;
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

    let mut w = start_workload(bins, prog, &[])?;
    let root = w.root;
    let addr = w.addr;
    if let Some(buf) = expect.as_deref() {
        if buf.is_empty() {
            return Err("no reference memory".into());
        }
    }
    let t = match engine {
        Engine::Kstate => run_timed(
            Command::new(&bins.kstate)
                .arg("checkpoint")
                .arg("-t")
                .arg(root.to_string())
                .arg("-o")
                .arg(&img),
            dir,
        ),
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
    let (t, g) = match engine {
        Engine::Kstate => run_detached(
            bins,
            &bins.kstate,
            &["restart", imgs, "-d", "--pidfile", pf],
            dir,
        ),
        Engine::Criu => run_detached(
            bins,
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
        ),
    }
    .map_err(|e| format!("restore failed: {e}"))?;
    let got: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or("restore wrote no pidfile")?;
    if got != root {
        return Err(format!("restored root is {got}, not {root}"));
    }
    check_running(root, tasks)?;
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

/// The CRIU to run beside kstate, or why there is none.
fn find_criu() -> Result<PathBuf, String> {
    let (bin, given) = match std::env::var_os("CRIU") {
        Some(c) => (PathBuf::from(c), true),
        None => (PathBuf::from("criu"), false),
    };
    let out = Command::new(&bin)
        .arg("check")
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => Err(format!("`{} check` cannot run: {e}", bin.display())),
        Ok(o) if o.status.success() => Ok(bin),
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr).to_string()
                + &String::from_utf8_lossy(&o.stdout);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string();
            if given {
                eprintln!("warning: `$CRIU check` failed ({last}); running it anyway as asked");
                Ok(bin)
            } else {
                Err(format!("`criu check` failed: {last}"))
            }
        }
    }
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

/// Writing 256 MiB to a new file in `dir` (no fsync, as kstate does not).
fn write_floor(reps: usize, src: &[u8], dir: &Path) -> Duration {
    let p = dir.join("write-floor.bin");
    let d = median(
        (0..reps)
            .map(|_| {
                let _ = std::fs::remove_file(&p);
                let t = Instant::now();
                let mut f = File::create(&p).expect("create");
                f.write_all(src).expect("write");
                drop(f);
                t.elapsed()
            })
            .collect(),
    );
    let _ = std::fs::remove_file(&p);
    d
}

/// What a memory dump needs at least: `process_vm_readv` of the workload's
/// 256 MiB in 4 MiB pieces into one reused buffer, each piece written to a
/// new file in `dir` at once; with `sync`, an fdatasync at the end (kstate
/// syncs its image, see the strace in BENCHMARKS.md).
fn stream_floor(pid: i32, addr: u64, reps: usize, dir: &Path, sync: bool) -> Duration {
    const PIECE: usize = 4 << 20;
    let p = dir.join("stream-floor.bin");
    let mut buf = vec![0u8; PIECE];
    let d = median(
        (0..reps)
            .map(|_| {
                let _ = std::fs::remove_file(&p);
                let t = Instant::now();
                let mut f = File::create(&p).expect("create");
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
                drop(f);
                t.elapsed()
            })
            .collect(),
    );
    let _ = std::fs::remove_file(&p);
    d
}

/// `tree50 --floor N`: median build, median kill + reap.
fn tree_floor(bins: &Bins, reps: usize) -> (Duration, Duration) {
    let mut child = Command::new(&bins.tree50)
        .arg("--floor")
        .arg(reps.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tree50 --floor");
    let out = child.stdout.take().expect("piped");
    let g = Guarded {
        child,
        name: "tree50 --floor",
    };
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

fn fmt_med(v: &[Duration]) -> String {
    if v.is_empty() {
        "failed".into()
    } else {
        format!("{:.1}", ms(median(v.to_vec())))
    }
}

fn range(v: &[Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let lo = v.iter().min().expect("non-empty");
    let hi = v.iter().max().expect("non-empty");
    format!("{:.0}-{:.0}", ms(*lo), ms(*hi))
}

fn main() {
    let reps = env_count("KSTATE_BENCH_REPS", DEFAULT_REPS);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("ckpt_restart: must run as root (checkpoint and restart need it)");
        std::process::exit(1);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bindir = tmp.join("bench-bin");
    std::fs::create_dir_all(&bindir).expect("bench bin dir");
    let dir = tmp.join(format!("ckpt_restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = RmDir(dir.clone());

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
    println!("running kstate on mem256 ...");
    let k_mem = rounds(
        Engine::Kstate,
        None,
        &bins,
        &bins.mem256,
        1,
        reps,
        &dir,
        Some(&mut expect),
    );
    println!("running kstate on tree50 ...");
    let k_tree = rounds(
        Engine::Kstate,
        None,
        &bins,
        &bins.tree50,
        TREE_TASKS,
        reps,
        &dir,
        None,
    );
    let (c_mem, c_tree) = match &criu {
        Some(c) => {
            println!("running CRIU on mem256 ...");
            let m = rounds(
                Engine::Criu,
                Some(c),
                &bins,
                &bins.mem256,
                1,
                reps,
                &dir,
                Some(&mut expect),
            );
            println!("running CRIU on tree50 ...");
            let t = rounds(
                Engine::Criu,
                Some(c),
                &bins,
                &bins.tree50,
                TREE_TASKS,
                reps,
                &dir,
                None,
            );
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
        let km = (!k.is_empty()).then(|| ms(median(k.to_vec())));
        println!(
            "{:<22} {:>9} {:>11} {:>10} {:>14} {:>10} {:>8.1}",
            name,
            fmt_med(k),
            range(k),
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
        r.as_ref().and_then(|r| {
            let v = if dump { &r.ckpt } else { &r.restore };
            (!v.is_empty()).then(|| ms(median(v.clone())))
        })
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
    if let Some(c) = kmed(&k_tree.ckpt) {
        println!(
            "  tree50 checkpoint vs floor (kill + reap + spawn = {:.1} ms): {:.1}x the floor, {:.2} ms per task",
            ms(reap_tree + spawn),
            ms(c) / ms(reap_tree + spawn),
            ms(c) / TREE_TASKS as f64
        );
    }
    if let Some(r) = kmed(&k_tree.restore) {
        println!(
            "  tree50 restart vs floor (fork tree + spawn = {:.1} ms): {:.1}x the floor, {:.2} ms per task",
            ms(fork_tree + spawn),
            ms(r) / ms(fork_tree + spawn),
            ms(r) / TREE_TASKS as f64
        );
    }

    println!();
    println!(
        "aims{}",
        if same_run {
            ""
        } else {
            " (CRIU: against the reference estimates, not same-run)"
        }
    );
    let c_of = |same: Option<f64>, reference: f64| pick(same, reference);
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    match (kmed(&k_tree.ckpt), kmed(&k_tree.restore)) {
        (Some(c), Some(r)) => {
            let (cd, cr) = (
                c_of(cmed(&c_tree, true), rt.dump),
                c_of(cmed(&c_tree, false), rt.restore),
            );
            if let (Some(cd), Some(cr)) = (cd, cr) {
                println!(
                    "  tree50, kstate >= 3x faster than CRIU: checkpoint {:.2}x {}, restart {:.2}x {}",
                    cd / ms(c),
                    verdict(cd / ms(c) >= 3.0),
                    cr / ms(r),
                    verdict(cr / ms(r) >= 3.0)
                );
            }
        }
        _ => println!("  tree50: kstate failed, see errors"),
    }
    match (kmed(&k_mem.ckpt), kmed(&k_mem.restore)) {
        (Some(c), Some(r)) => {
            let (cd, cr) = (
                c_of(cmed(&c_mem, true), rm.dump),
                c_of(cmed(&c_mem, false), rm.restore),
            );
            if let (Some(cd), Some(cr)) = (cd, cr) {
                println!(
                    "  mem256, kstate no slower than CRIU: checkpoint {:.2}x {}, restart {:.2}x {}",
                    cd / ms(c),
                    verdict(cd / ms(c) >= 1.0),
                    cr / ms(r),
                    verdict(cr / ms(r) >= 1.0)
                );
            }
            println!(
                "  memory dump >= 0.5x memcpy speed: {:.2}x of warm memcpy {}",
                ms(memcpy_warm) / ms(c),
                verdict(ms(memcpy_warm) / ms(c) >= 0.5)
            );
        }
        _ => println!("  mem256: kstate failed, see errors"),
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
