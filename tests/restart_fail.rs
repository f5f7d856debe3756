//! `kstate restart` failure paths (root): each exits non-zero with one clear
//! line naming the problem (pid, path, record and field, capability, task),
//! and leaves nothing behind: when it is about to exit (the `before-exit`
//! test pause) it has no child left, and no process holds a pid of the
//! image afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// The tests of this file run one at a time: two occupy pids through the
/// pid cursor (ns_last_pid), which would hand a pid of one test's image to
/// another's processes.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The line kstate logs (RUST_LOG=debug) just before it creates the first task.
const CREATING: &str = "creating the root task";

/// A kstate (or a wrapper exec'ing it) that the test kills, with all its
/// descendants, if it is still running when the guard goes.
struct KstateGuard(Child);

impl Drop for KstateGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            kill_tree(self.0.id() as i32);
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a failed restart left.
struct Failed {
    status: ExitStatus,
    /// kstate's stderr (with RUST_LOG=debug).
    stderr: String,
    /// kstate's descendants when it was about to exit.
    left: Vec<i32>,
}

impl Failed {
    /// The last line: the error kstate prints.
    fn error(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

/// Polls `cond` until it holds or `child` exits or 20 s pass; panics with
/// kstate's stderr on the last two.
fn wait_or_exit(child: &mut Child, errfile: &Path, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if cond() {
            return;
        }
        let stderr = || std::fs::read_to_string(errfile).unwrap_or_default();
        if let Ok(Some(st)) = child.try_wait() {
            panic!("kstate exited ({st}) before {what}:\n{}", stderr());
        }
        if Instant::now() > deadline {
            panic!("kstate did not reach {what} within 20 s:\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `[WRAP…] kstate restart IMAGE` with `env`, RUST_LOG=debug and the
/// `before-exit` pause (and `after-checks`, where `at_checks` runs, when
/// given); records kstate's descendants at the pause, then lets it exit.
fn restart_fails(
    image: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    wrap: &[&str],
    at_checks: Option<&mut dyn FnMut()>,
) -> Failed {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let pause = dir.join(format!("pause-{n}"));
    std::fs::create_dir_all(&pause).unwrap();
    let errfile = dir.join(format!("stderr-{n}"));
    let bin = common::kstate_bin();
    let mut cmd = match wrap {
        [] => Command::new(&bin),
        [w, rest @ ..] => {
            let mut c = Command::new(w);
            c.args(rest).arg(&bin);
            c
        }
    };
    let points = if at_checks.is_some() {
        "after-checks,before-exit"
    } else {
        "before-exit"
    };
    cmd.arg("restart")
        .arg(image)
        .env("RUST_LOG", "debug")
        .env("KSTATE_TEST_PAUSE_AT", points)
        .env("KSTATE_TEST_PAUSE_DIR", &pause)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errfile).unwrap());
    let mut g = KstateGuard(cmd.spawn().expect("start kstate restart"));
    // The wrappers exec kstate: same pid.
    let pid = g.0.id() as i32;
    if let Some(f) = at_checks {
        let p = pause.join("after-checks");
        wait_or_exit(&mut g.0, &errfile, "the after-checks pause", || p.exists());
        f();
        std::fs::write(pause.join("after-checks.go"), b"").unwrap();
    }
    let p = pause.join("before-exit");
    wait_or_exit(&mut g.0, &errfile, "the before-exit pause", || p.exists());
    let left: Vec<i32> = common::tree_pids(pid).into_iter().skip(1).collect();
    std::fs::write(pause.join("before-exit.go"), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(Some(st)) = g.0.try_wait() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "kstate did not exit after the pause"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    Failed {
        status,
        stderr: std::fs::read_to_string(&errfile).unwrap_or_default(),
        left,
    }
}

/// Asserts the restart failed with a message holding every one of `words`,
/// and left no task of its own.
fn assert_failed(f: &Failed, words: &[&str]) {
    assert!(!f.status.success(), "restart succeeded?\n{}", f.stderr);
    let err = f.error();
    eprintln!("restart failed as expected: {err}");
    assert!(
        err.starts_with("kstate: error: "),
        "last line is not the error:\n{}",
        f.stderr
    );
    for w in words {
        assert!(err.contains(w), "error {err:?} does not name {w:?}");
    }
    assert!(
        f.left.is_empty(),
        "kstate still had descendants {:?} when exiting:\n{}",
        f.left,
        f.stderr
    );
}

/// Asserts (waiting 5 s at most) that no process holds any of `pids`.
fn assert_no_process(pids: &[i32]) {
    common::wait_for(
        Duration::from_secs(5),
        "the image's pids to be free",
        || {
            pids.iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        },
    );
}

/// A counter checkpointed and killed: (dir, its file, image, root pid).
fn counter_image(name: &str) -> (PathBuf, PathBuf, PathBuf, i32) {
    let dir = scratch(name);
    let out = dir.join("count.txt");
    let mut w = Reaped::start("counter", &[out.to_str().unwrap()]);
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    (dir, out, img, w.root)
}

/// tree50 checkpointed and killed: (dir, image, its 50 pids with the root
/// first, the root's 7 children).
fn tree_image(name: &str) -> (PathBuf, PathBuf, Vec<i32>, Vec<i32>) {
    let dir = scratch(name);
    let mut w = Reaped::start("tree50", &[]);
    let pids = common::tree_pids(w.root);
    let kids = common::children(w.root);
    assert_eq!((pids.len(), kids.len()), (50, 7));
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &[]);
    w.wait_gone();
    (dir, img, pids, kids)
}

/// A process (`sleep`) holding exactly `pid`, through ns_last_pid; killed
/// and reaped on drop. The pid cursor is put back where it was afterwards
/// (when it was beyond `pid`), so that the pids just below it are not handed
/// out again to other processes at once.
struct Occupier(Child);

impl Occupier {
    fn take(pid: i32) -> Occupier {
        const LAST: &str = "/proc/sys/kernel/ns_last_pid";
        let read_last = || -> i32 {
            std::fs::read_to_string(LAST)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0)
        };
        let before = read_last();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            std::fs::write(LAST, format!("{}", pid - 1)).expect("write ns_last_pid");
            let mut c = Command::new("sleep")
                .arg("60")
                .stdin(Stdio::null())
                .spawn()
                .expect("start sleep");
            if c.id() as i32 == pid {
                if read_last() < before {
                    let _ = std::fs::write(LAST, format!("{before}"));
                }
                return Occupier(c);
            }
            // Another process took it first: try again.
            let _ = c.kill();
            let _ = c.wait();
            assert!(Instant::now() < deadline, "could not occupy pid {pid}");
        }
    }
}

impl Drop for Occupier {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn pid_taken_by_the_running_original() {
    let _serial = serial();
    let dir = scratch("fail-pid-running");
    let out = dir.join("count.txt");
    let w = Reaped::start("counter", &[out.to_str().unwrap()]);
    let started = common::start_time(w.root);
    let img = dir.join("a.kst");
    checkpoint_ok(w.root, &img, &["--leave-running"]);
    let f = restart_fails(&img, &dir, &[], &[], None);
    let pid = w.root.to_string();
    assert_failed(&f, &[&format!("pid {pid} is already taken"), "counter"]);
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );
    // The original is untouched.
    assert_eq!(
        common::start_time(w.root),
        started,
        "the original was replaced"
    );
    common::assert_running_untraced(&[w.root]);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pid_of_a_grandchild_taken_before_restart() {
    let _serial = serial();
    let (dir, img, pids, _) = tree_image("fail-pid-occupied");
    // The last one made (a grandchild): the pid cursor is then past them all.
    let victim = *pids.iter().max().unwrap();
    let occ = Occupier::take(victim);
    let f = restart_fails(&img, &dir, &[], &[], None);
    assert_failed(&f, &[&format!("pid {victim} is already taken"), "sleep"]);
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );
    assert!(occ.0.id() as i32 == victim && common::start_time(victim).is_some());
    drop(occ);
    assert_no_process(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pid_of_a_grandchild_taken_during_restart() {
    let _serial = serial();
    let (dir, img, pids, _) = tree_image("fail-pid-race");
    // The last one made (a grandchild): most of the tree exists when its
    // creation fails, and the pid cursor is then past them all.
    let victim = *pids.iter().max().unwrap();
    let mut occ = None;
    let f = restart_fails(
        &img,
        &dir,
        &[],
        &[],
        Some(&mut || occ = Some(Occupier::take(victim))),
    );
    assert_failed(&f, &[&format!("pid {victim} is already taken")]);
    assert!(f.stderr.contains(CREATING), "{}", f.stderr);
    // The occupier was not killed by the cleanup.
    let occ = occ.expect("occupier");
    assert!(
        common::start_time(victim).is_some(),
        "the cleanup killed the process holding {victim}, which was not its own"
    );
    drop(occ);
    assert_no_process(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_gone_is_refused_before_any_task() {
    let _serial = serial();
    let (dir, out, img, root) = counter_image("fail-file-gone");
    std::fs::remove_file(&out).unwrap();
    let f = restart_fails(&img, &dir, &[], &[], None);
    assert_failed(
        &f,
        &[out.to_str().unwrap(), "is gone", &format!("task {root}")],
    );
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );
    assert_no_process(&[root]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupted_page_extent_is_refused_at_validation() {
    let _serial = serial();
    let (dir, _out, img, root) = counter_image("fail-extent-crc");
    let show = common::run_kstate(
        &["show", "--json", img.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let json = common::stdout_json(&show);
    let ext = json["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|o| o["kind"] == "extent" && o["data_len"].as_u64().unwrap_or(0) > 0)
        .expect("an extent with data")
        .clone();
    let (id, off, len) = (
        ext["id"].as_u64().unwrap(),
        ext["data_offset"].as_u64().unwrap(),
        ext["data_len"].as_u64().unwrap(),
    );
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[(off + len / 2) as usize] ^= 0x10;
    let bad = dir.join("bad.kst");
    std::fs::write(&bad, &bytes).unwrap();
    let f = restart_fails(&bad, &dir, &[], &[], None);
    assert_failed(
        &f,
        &[
            bad.to_str().unwrap(),
            &format!("record {id} (extent)"),
            "`crc`",
        ],
    );
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );
    assert_no_process(&[root]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn setpriv_drop(caps: &str) -> Vec<String> {
    assert!(
        Path::new("/usr/bin/setpriv").exists() || Path::new("/bin/setpriv").exists(),
        "setpriv (util-linux) is needed"
    );
    let minus: Vec<String> = caps.split(',').map(|c| format!("-{c}")).collect();
    let minus = minus.join(",");
    vec![
        "setpriv".into(),
        format!("--inh-caps={minus}"),
        format!("--bounding-set={minus}"),
    ]
}

#[test]
fn missing_capability_is_named() {
    let _serial = serial();
    let (dir, _out, img, root) = counter_image("fail-caps");
    let wrap = setpriv_drop("sys_admin,checkpoint_restore");
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let f = restart_fails(&img, &dir, &[], &wrap, None);
    assert_failed(&f, &["CAP_CHECKPOINT_RESTORE", "CAP_SYS_ADMIN"]);
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );

    let wrap = setpriv_drop("sys_ptrace");
    let wrap: Vec<&str> = wrap.iter().map(String::as_str).collect();
    let f = restart_fails(&img, &dir, &[], &wrap, None);
    assert_failed(&f, &["CAP_SYS_PTRACE"]);
    assert!(
        !f.stderr.contains(CREATING),
        "a task was created:\n{}",
        f.stderr
    );
    assert_no_process(&[root]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failure_while_restoring_a_task_kills_them_all() {
    let _serial = serial();
    let (dir, img, pids, _) = tree_image("fail-mid-restore");
    let victim = pids[25];
    let hook = format!("restore:{victim}");
    let f = restart_fails(&img, &dir, &[("KSTATE_TEST_FAIL_AT", &hook)], &[], None);
    assert_failed(&f, &[&format!("task {victim}"), "made to fail at restore"]);
    assert!(f.stderr.contains(CREATING), "{}", f.stderr);
    assert_no_process(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failure_while_a_task_sets_up_kills_them_all() {
    let _serial = serial();
    let (dir, img, pids, kids) = tree_image("fail-mid-setup");
    // The root's fourth child (a session leader): its grandchildren are
    // never made, its siblings' are being made when it fails.
    let victim = kids[3];
    let hook = format!("setup:{victim}");
    let f = restart_fails(&img, &dir, &[("KSTATE_TEST_FAIL_AT", &hook)], &[], None);
    assert_failed(&f, &[&format!("task {victim}"), "made to fail at setup"]);
    assert_no_process(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_task_dying_silently_is_noticed_at_once() {
    let _serial = serial();
    let (dir, img, pids, kids) = tree_image("fail-silent");
    let victim = kids[2];
    let hook = format!("die:{victim}");
    let started = std::time::Instant::now();
    let f = restart_fails(&img, &dir, &[("KSTATE_TEST_FAIL_AT", &hook)], &[], None);
    assert_failed(&f, &["died before it was ready"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "noticed only after {:?} (the ready timeout is 10 s)",
        started.elapsed()
    );
    assert_no_process(&pids);
    let _ = std::fs::remove_dir_all(&dir);
}
