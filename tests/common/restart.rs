//! Helpers for checkpoint → restart tests: a workload under a reaper of the
//! test's own, kstate restart in the foreground (it waits for the root, and
//! exits with the root's status), and guards that kill by pid.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// A workload (`fixtures/NAME.c`) running under `fixtures/reaper.c`.
pub struct Reaped {
    pub reaper: Child,
    /// The workload's root: the pid it printed in `READY <pid>`.
    pub root: i32,
    /// The rest of the READY line (addresses, checksums a test may want).
    pub extra: Vec<String>,
}

/// SIGKILLs every pid of the tree rooted at `root` (children first seen
/// before the root dies).
pub fn kill_tree(root: i32) {
    let pids = tree_pids(root);
    for p in pids.iter().rev() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

impl Reaped {
    /// Starts `fixtures/NAME.c` (built once) with `args` under the reaper;
    /// waits (10 s at most) for its `READY <pid> …` line.
    pub fn start(name: &str, args: &[&str]) -> Reaped {
        require_root();
        let reaper_bin = build_fixture("reaper");
        let bin = build_fixture(name);
        let mut reaper = Command::new(&reaper_bin)
            .arg(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the reaper");
        let out = reaper.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = reaper.kill();
                let _ = reaper.wait();
                panic!("{name}: no READY line within {READY_TIMEOUT:?}");
            }
        };
        let mut words = line.split_whitespace();
        let root = match (words.next(), words.next().and_then(|p| p.parse().ok())) {
            (Some("READY"), Some(pid)) => pid,
            _ => {
                let _ = reaper.kill();
                let _ = reaper.wait();
                panic!("{name}: bad READY line {line:?}");
            }
        };
        Reaped {
            reaper,
            root,
            extra: words.map(str::to_string).collect(),
        }
    }

    /// Waits (5 s at most) for the reaper to finish, i.e. for every task of
    /// the workload to be gone and reaped.
    pub fn wait_gone(&mut self) {
        let deadline = Instant::now() + KILL_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.reaper.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "workload {} still has tasks {:?} after {KILL_TIMEOUT:?}",
            self.root,
            tree_pids(self.root)
        );
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.reaper.try_wait() {
            kill_tree(self.root);
            let _ = self.reaper.kill();
            let _ = self.reaper.wait();
        }
    }
}

/// Runs `kstate checkpoint -t ROOT -o IMAGE EXTRA…`; panics with stderr on
/// failure.
pub fn checkpoint_ok(root: i32, image: &Path, extra: &[&str]) {
    let mut args = vec!["checkpoint", "-t"];
    let r = root.to_string();
    args.push(&r);
    args.push("-o");
    args.push(image.to_str().expect("utf-8 path"));
    args.extend_from_slice(extra);
    let out = run_kstate(&args, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "checkpoint of {root} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kstate restart IMAGE` running in the foreground (it waits for the root).
pub struct Restarted {
    pub kstate: Child,
    pub root: i32,
}

impl Restarted {
    /// Starts `kstate restart IMAGE --pidfile …` and waits (20 s at most)
    /// until the tree runs (the pidfile is written once every task is let
    /// go). Panics with kstate's stderr if it fails.
    pub fn start(image: &Path, scratch: &Path) -> Restarted {
        Restarted::start_with(image, scratch, &[])
    }

    /// [`Restarted::start`] with more arguments (`--join-ns …`).
    pub fn start_with(image: &Path, scratch: &Path, extra: &[&str]) -> Restarted {
        Restarted::start_under(&[], image, scratch, extra)
    }

    /// [`Restarted::start_with`], kstate run under the command `prefix`
    /// (e.g. `nsenter --net=…`, to restart from another namespace).
    pub fn start_under(
        prefix: &[&std::ffi::OsStr],
        image: &Path,
        scratch: &Path,
        extra: &[&str],
    ) -> Restarted {
        let pidfile = scratch.join(format!("pid-{}", std::process::id()));
        let _ = std::fs::remove_file(&pidfile);
        let errfile = scratch.join(format!("restart-stderr-{}", std::process::id()));
        let bin = kstate_bin();
        let (program, args): (&std::ffi::OsStr, &[&std::ffi::OsStr]) = match prefix {
            [] => (bin.as_os_str(), &[]),
            [p, rest @ ..] => (p, rest),
        };
        let mut cmd = Command::new(program);
        cmd.args(args);
        if !prefix.is_empty() {
            cmd.arg(&bin);
        }
        let mut kstate = cmd
            .arg("restart")
            .arg(image)
            .arg("--pidfile")
            .arg(&pidfile)
            .args(extra)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errfile).expect("stderr file"))
            .spawn()
            .expect("start kstate restart");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(pid) = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Restarted { kstate, root: pid };
            }
            if let Ok(Some(st)) = kstate.try_wait() {
                panic!(
                    "kstate restart exited with {st}: {}",
                    std::fs::read_to_string(&errfile).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = kstate.kill();
                let _ = kstate.wait();
                panic!("kstate restart did not bring the tree up within 30 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGTERM to the root (the workloads check themselves then) and
    /// returns kstate's exit status, which is the root's.
    pub fn finish(mut self) -> ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.root),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.kstate.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                panic!(
                    "the restored root {} did not end within 20 s of SIGTERM",
                    self.root
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        if let Ok(None) = self.kstate.try_wait() {
            kill_tree(self.root);
            let _ = self.kstate.kill();
            let _ = self.kstate.wait();
        }
    }
}

/// `kstate diff A B`: its output, and whether it found no difference.
pub fn diff(a: &Path, b: &Path) -> (bool, String) {
    let out: Output = run_kstate(
        &["diff", a.to_str().unwrap(), b.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "diff failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
