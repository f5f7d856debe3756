//! Shared helpers for kstate integration tests (`mod common;`).
//!
//! Everything here uses only std, `libc`, `nix` and `serde_json`.  Every wait
//! is bounded by a deadline; nothing sleeps to synchronise except the bounded
//! polls in [`wait_for`] and friends.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// How long the workload may take to report `READY`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed workload may take to disappear.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_STEP: Duration = Duration::from_millis(10);

/// Panics unless the test runs with euid 0 (the tests create namespaces).
pub fn require_root() {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        panic!(
            "this test must run as root (euid 0), euid is {euid}: \
             it creates user/pid/net/... namespaces and inspects other processes"
        );
    }
}

/// Compiles `fixtures/<name>.c` into `CARGO_TARGET_TMPDIR` (once per test
/// process) and returns the path of the executable.
///
/// Parallel test processes each compile to a unique temporary name and
/// rename it into place, so a running copy is never overwritten.
pub fn build_fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    static SEQ: AtomicU64 = AtomicU64::new(0);

    let mut built = BUILT
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let out = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let res = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cc for {}: {e}", src.display()));
    if !res.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "cc failed to build fixture {} ({}):\n{}",
            src.display(),
            res.status,
            String::from_utf8_lossy(&res.stderr)
        );
    }
    // Keep an identical executable in place: another test process may run a
    // workload from it, and a restart checks that the file it maps is the
    // same inode.
    if matches!((fs::read(&out), fs::read(&tmp)), (Ok(a), Ok(b)) if a == b) {
        let _ = fs::remove_file(&tmp);
        built.insert(name.to_string(), out.clone());
        return out;
    }
    fs::rename(&tmp, &out).unwrap_or_else(|e| {
        let _ = fs::remove_file(&tmp);
        panic!("rename {} -> {}: {e}", tmp.display(), out.display())
    });
    built.insert(name.to_string(), out.clone());
    out
}

/// A running `nstree` fixture (see `fixtures/nstree.c`).
///
/// `child` is the launcher (`main`, host namespaces, not checkpointed);
/// `root` is the host pid of T1, the init of the first pid namespace and the
/// root of the 7-process tree.  Dropping the workload kills the tree.
///
/// The launcher has PR_SET_PDEATHSIG: it dies (and with it the tree) when the
/// thread that started it exits, so keep the `Workload` on that thread.
pub struct Workload {
    pub child: Child,
    pub root: i32,
    /// pidfd of `root`, so that drop never signals a recycled pid.
    root_pidfd: Option<OwnedFd>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Workload {
    /// What the launcher and the tree wrote on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this new descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: plain syscall; a null siginfo is allowed.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Waits for `child` to exit, polling until `timeout`; returns its status.
fn try_wait_until(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => thread::sleep(POLL_STEP),
            _ => return None,
        }
    }
}

/// Reads `r` to EOF in a thread, appending to the returned buffer; the
/// receiver gets a message at EOF.
fn drain(mut r: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let b = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => b
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    (buf, rx)
}

/// Starts `fixtures/nstree.c` and waits (10 s at most) for its `READY` line.
pub fn start_nstree() -> Workload {
    let bin = build_fixture("nstree");
    let mut child = Command::new(&bin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let (stderr, stderr_eof) = drain(child.stderr.take().expect("piped stderr"));

    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        let res = r.read_line(&mut line).map(|_| line);
        let _ = tx.send(res);
        // Keep draining so that the launcher never gets SIGPIPE.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });

    let fail = |mut child: Child, why: String| -> ! {
        // The launcher reports its own errors and cleans up within its 10 s
        // deadline: give it a moment before killing anything.
        let mut st = try_wait_until(&mut child, Duration::from_secs(2));
        if st.is_none() {
            // T1 is the launcher's only child: kill it first so that the
            // launcher reaps it and exits.
            let t1 = children(child.id() as i32);
            st = stop_launcher(&mut child, || {
                for pid in t1 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            });
        }
        // The tree closes stderr once it is dead.
        let _ = stderr_eof.recv_timeout(Duration::from_secs(2));
        let err =
            String::from_utf8_lossy(&stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
        panic!("nstree fixture failed: {why}; launcher status {st:?}; stderr:\n{err}");
    };

    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => fail(child, format!("reading stdout: {e}")),
        Err(_) => fail(child, format!("no READY line within {READY_TIMEOUT:?}")),
    };
    let root = match line
        .trim_end()
        .strip_prefix("READY ")
        .map(str::parse::<i32>)
    {
        Some(Ok(pid)) if pid > 0 => pid,
        _ => fail(child, format!("unexpected first line {line:?}")),
    };
    let root_pidfd = match pidfd_open(root) {
        Ok(fd) => fd,
        Err(e) => fail(child, format!("pidfd_open({root}): {e}")),
    };
    let ppid = proc_status_field(root, "PPid");
    let launcher = child.id();
    if ppid.as_deref() != Some(launcher.to_string().as_str()) {
        fail(
            child,
            format!("pid {root} has PPid {ppid:?}, not the launcher {launcher}"),
        );
    }
    Workload {
        child,
        root,
        root_pidfd: Some(root_pidfd),
        stderr,
    }
}

/// Kills the tree with `kill_root`, waits (bounded) for the launcher to reap
/// T1 and exit, and SIGKILLs the launcher if it does not.
///
/// The launcher reaps T1 only once everything in ns1 is gone; killing the
/// launcher first would leave T1's zombie to the (slow) host init.
fn stop_launcher(child: &mut Child, kill_root: impl FnOnce()) -> Option<ExitStatus> {
    kill_root();
    if let Some(st) = try_wait_until(child, KILL_TIMEOUT) {
        return Some(st);
    }
    let _ = child.kill();
    try_wait_until(child, KILL_TIMEOUT)
}

impl Drop for Workload {
    fn drop(&mut self) {
        // SIGKILL of T1, the init of ns1, kills the whole tree.
        let (root, pidfd) = (self.root, self.root_pidfd.take());
        let st = stop_launcher(&mut self.child, || match pidfd {
            Some(fd) => pidfd_kill(&fd),
            None if root > 0 => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(root),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            None => {}
        });
        if st.is_none() {
            eprintln!(
                "warning: nstree launcher {} (root {root}) still running after SIGKILL",
                self.child.id()
            );
        }
    }
}

/// Children of every thread of `pid` (empty if `pid` is gone).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    let mut tids: Vec<i32> = tasks
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    for tid in tids {
        if let Ok(s) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// `root` and all its descendants, in pre-order (children in the kernel's
/// order, which is creation order).
pub fn tree_pids(root: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if out.contains(&pid) {
            continue;
        }
        out.push(pid);
        stack.extend(children(pid).into_iter().rev());
    }
    out
}

/// The value of `field` in /proc/PID/status, trimmed (`None` if the process
/// or the field does not exist).
pub fn proc_status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == field).then(|| v.trim().to_string())
    })
}

/// The NSpid line: pid in our namespace first, then one per nested level.
pub fn nspid(pid: i32) -> Vec<i32> {
    proc_status_field(pid, "NSpid")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The start time of `pid` (field 22 of /proc/PID/stat), to tell a process
/// from a later one that reuses its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn running_untraced_problem(pid: i32) -> Option<String> {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Some(format!("pid {pid} does not exist"));
    };
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == name).then(|| v.trim().to_string())
        })
    };
    let state = field("State").unwrap_or_default();
    if state.is_empty() || state.starts_with(['T', 't', 'Z', 'X', 'x']) {
        return Some(format!("pid {pid} has State: {state:?}"));
    }
    let tracer = field("TracerPid").unwrap_or_default();
    if tracer != "0" {
        return Some(format!(
            "pid {pid} has TracerPid: {tracer:?} (state {state})"
        ));
    }
    None
}

/// Asserts that every pid exists, is neither stopped, traced-stopped nor
/// dead, and has no tracer; waits up to 2 s for a task that was just
/// detached.
pub fn assert_running_untraced(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let problem = pids.iter().find_map(|&p| running_untraced_problem(p));
        match problem {
            None => return,
            Some(p) if Instant::now() >= deadline => panic!("not running untraced: {p}"),
            Some(_) => thread::sleep(POLL_STEP),
        }
    }
}

/// Polls `f` every 10 ms until it returns true; panics naming `what` after
/// `deadline`.
pub fn wait_for(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        thread::sleep(POLL_STEP);
    }
}

/// The kstate binary built by cargo for these tests.
pub fn kstate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kstate"))
}

/// Runs kstate with `args` (RUST_LOG unset, stdin /dev/null), collecting its
/// output; kills it and panics if it runs longer than `timeout`.
pub fn run_kstate(args: &[&str], timeout: Duration) -> Output {
    let bin = kstate_bin();
    let mut child = Command::new(&bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let (out, out_eof) = drain(child.stdout.take().expect("piped stdout"));
    let (err, err_eof) = drain(child.stderr.take().expect("piped stderr"));
    let status = try_wait_until(&mut child, timeout);
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
        let _ = try_wait_until(&mut child, KILL_TIMEOUT);
    }
    // A task kstate left running (e.g. a restored tree) may still hold the
    // pipes: wait for EOF a little, then take what was read.
    let grace = Instant::now() + Duration::from_secs(2);
    for rx in [&out_eof, &err_eof] {
        let _ = rx.recv_timeout(grace.saturating_duration_since(Instant::now()));
    }
    let take =
        |b: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner()));
    let (stdout, stderr) = (take(&out), take(&err));
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "kstate {args:?} did not finish within {timeout:?} (killed)\n\
             stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Parses kstate's stdout as JSON (for `--json` style outputs).
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kstate stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub mod restart;
