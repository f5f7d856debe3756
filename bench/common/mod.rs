//! Helpers shared by the benchmarks (`bench/ckpt_restart.rs`,
//! `bench/ns_restart.rs`, `bench/netns20.rs`): included by each with
//! `#[path = "common/mod.rs"] mod common;`, so not every bench uses every
//! helper.

#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bounds on every wait.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);
pub const GONE_TIMEOUT: Duration = Duration::from_secs(10);
pub const POLL: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------- figures

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median (the upper one of an even count); `v` must not be empty.
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty());
    v.sort();
    v[v.len() / 2]
}

/// The median in ms, None when there is no figure.
pub fn med_ms(v: &[Duration]) -> Option<f64> {
    (!v.is_empty()).then(|| ms(median(v.to_vec())))
}

/// The median in ms with one decimal, or "failed" when there is no figure.
pub fn fmt_med(v: &[Duration]) -> String {
    med_ms(v).map_or("failed".into(), |m| format!("{m:.1}"))
}

/// "LOW-HIGH" in ms with `digits` decimals, or "-" when there is no figure.
pub fn range(v: &[Duration], digits: usize) -> String {
    match (v.iter().min(), v.iter().max()) {
        (Some(lo), Some(hi)) => format!("{:.digits$}-{:.digits$}", ms(*lo), ms(*hi)),
        _ => "-".into(),
    }
}

/// A count from the environment, or `default` when unset.
pub fn env_count(name: &str, default: usize) -> usize {
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

// ---------------------------------------------------------------- setup

/// Compiles a C file into `dir` and returns the executable (built under a
/// temporary name and renamed, so a bench never runs a half-written one).
pub fn build_c(src: &Path, dir: &Path, name: &str) -> PathBuf {
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

/// A directory removed (with what is in it) when this is dropped.
pub struct RmDir(pub PathBuf);

impl Drop for RmDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directories of a bench named `name`, under `CARGO_TARGET_TMPDIR`:
/// `bench-bin` for the built C programs (shared by the benches), and a
/// scratch directory `NAME-PID`, removed when the returned guard is dropped.
pub fn bench_dirs(name: &str) -> (PathBuf, PathBuf, RmDir) {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let bindir = tmp.join("bench-bin");
    std::fs::create_dir_all(&bindir).expect("bench bin dir");
    let dir = tmp.join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let rm = RmDir(dir.clone());
    (bindir, dir, rm)
}

/// `kstate checkpoint -t ROOT -o IMG`.
pub fn checkpoint_cmd(kstate: &Path, root: i32, img: &Path) -> Command {
    let mut c = Command::new(kstate);
    c.arg("checkpoint")
        .arg("-t")
        .arg(root.to_string())
        .arg("-o")
        .arg(img);
    c
}

/// The CRIU to run beside kstate, or why there is none.
pub fn find_criu() -> Result<PathBuf, String> {
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

// ---------------------------------------------------------------- tasks

/// Children of every thread of `pid` (empty when it is gone).
pub fn children(pid: i32) -> Vec<i32> {
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

/// `root` and every descendant, parents first.
pub fn tree_pids(root: i32) -> Vec<i32> {
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

/// SIGKILL to `pid` (an error, e.g. the task is gone, is ignored).
pub fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// A field of /proc/PID/status (None when gone).
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The State letter of /proc/PID/status (None when gone).
pub fn state(pid: i32) -> Option<char> {
    status_field(pid, "State").and_then(|v| v.chars().next())
}

/// Waits (5 s at most) until the tree of `root` has `tasks` tasks, none
/// stopped, traced or dead; returns its pids (parents first). `what` names
/// the tree in the error.
pub fn wait_running(root: i32, tasks: usize, what: &str) -> Result<Vec<i32>, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = tree_pids(root);
        let bad: Vec<(i32, Option<char>)> = pids
            .iter()
            .map(|&p| (p, state(p)))
            .filter(|(_, s)| !matches!(s, Some('S') | Some('R') | Some('D')))
            .collect();
        if pids.len() == tasks && bad.is_empty() {
            return Ok(pids);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what} of {root}: {} tasks (want {tasks}), not running: {bad:?}",
                pids.len()
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Reads a pid from the file `p`.
pub fn read_pidfile(p: &Path) -> Result<i32, String> {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("no pid in {}", p.display()))
}

// ---------------------------------------------------------------- children

/// Polls `child` until it exits (its status) or `timeout` has passed (None).
pub fn wait_until(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
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
pub struct Guarded {
    pub child: Child,
    pub name: &'static str,
}

impl Guarded {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Kills everything under the subreaper (not the subreaper itself).
    pub fn kill_below(&self) {
        let deadline = Instant::now() + GONE_TIMEOUT;
        loop {
            let alive: Vec<i32> = tree_pids(self.pid())
                .into_iter()
                .skip(1)
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
    pub fn wait_gone(&mut self) -> Result<(), String> {
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

/// Spawns `cmd` with its stdout piped (stdin and stderr as `cmd` says) and
/// guards it as `name`; returns the guard and the child's stdout.
pub fn spawn_guarded(
    cmd: &mut Command,
    name: &'static str,
) -> std::io::Result<(Guarded, ChildStdout)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let out = child.stdout.take().expect("piped");
    Ok((Guarded { child, name }, out))
}

/// Reads the first line of `r` in a thread; None after `timeout`.
pub fn first_line(r: impl std::io::Read + Send + 'static, timeout: Duration) -> Option<String> {
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

/// Starts `prog args…` under `reaper` (`fixtures/reaper.c`) and waits for
/// its `READY ROOT [MORE…]` line: returns the guard, ROOT and the words
/// after it. `label` names the workload in errors.
pub fn start_workload(
    reaper: &Path,
    prog: &Path,
    args: &[&str],
    label: &str,
) -> Result<(Guarded, i32, Vec<String>), String> {
    let (g, out) = spawn_guarded(
        Command::new(reaper)
            .arg(prog)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit()),
        "reaper",
    )
    .map_err(|e| format!("start the reaper: {e}"))?;
    let line = first_line(out, READY_TIMEOUT)
        .ok_or_else(|| format!("{label}: no READY within {READY_TIMEOUT:?}"))?;
    let w: Vec<&str> = line.split_whitespace().collect();
    match (w.first(), w.get(1).and_then(|p| p.parse::<i32>().ok())) {
        (Some(&"READY"), Some(root)) => {
            Ok((g, root, w[2..].iter().map(|s| s.to_string()).collect()))
        }
        _ => Err(format!("{label}: bad READY line {line:?}")),
    }
}

/// Runs `cmd` (stdout and stderr to files in `dir`), bounded; returns the
/// wall time from spawn to exit, and stderr on failure.
pub fn run_timed(cmd: &mut Command, dir: &Path) -> Result<Duration, String> {
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

/// What a run under reaprun (or phaserun) gave: its time (fork of the
/// program to its exit), the guard of the tree it left behind, the program's
/// stderr, and (phaserun) the wall-clock time of the fork, ns since the epoch.
pub struct Detached {
    pub time: Duration,
    pub g: Guarded,
    pub stderr: String,
    pub forked_at: Option<i64>,
}

/// Runs `prog args…` under `runner` (`bench/workloads/reaprun.c`, or
/// `phaserun.c`), with RUST_LOG=`log` when `log` is given (RUST_LOG is
/// unset otherwise); the program's stderr goes to a file in `dir`.
pub fn run_detached(
    runner: &Path,
    prog: &Path,
    args: &[&str],
    dir: &Path,
    log: Option<&str>,
) -> Result<Detached, String> {
    let errf = dir.join("restore-stderr");
    let mut cmd = Command::new(runner);
    cmd.arg(prog)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stderr(File::create(&errf).expect("stderr file"));
    if let Some(l) = log {
        cmd.env("RUST_LOG", l);
    }
    let (g, out) = spawn_guarded(&mut cmd, "reaprun").map_err(|e| format!("start reaprun: {e}"))?;
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
    let stderr = std::fs::read_to_string(&errf).unwrap_or_default();
    if status != 0 {
        return Err(format!("wait status {status:#x}: {}", stderr.trim()));
    }
    Ok(Detached {
        time: Duration::from_nanos(ns),
        g,
        stderr,
        forked_at: w.get(3).and_then(|s| s.parse::<i64>().ok()),
    })
}
