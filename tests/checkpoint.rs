//! `kstate checkpoint` of a real tree in real namespaces (run as root).
//!
//! The workload is fixtures/nstree.c: 7 processes over 3 nested pid
//! namespaces with their own user (two levels), uts, ipc, net, mnt, cgroup and
//! time namespaces. Each test starts its own copy and kills it when done.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const KSTATE_TIMEOUT: Duration = Duration::from_secs(30);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn checkpoint(root: i32, image: &Path) {
    let out = run_kstate(
        &[
            "checkpoint",
            "--leave-running",
            "-t",
            &root.to_string(),
            "-o",
            image.to_str().unwrap(),
        ],
        KSTATE_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "checkpoint failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn show_json(image: &Path) -> Value {
    let out = run_kstate(&["show", "--json", image.to_str().unwrap()], KSTATE_TIMEOUT);
    assert!(
        out.status.success(),
        "show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout_json(&out)
}

fn objects(j: &Value) -> &Vec<Value> {
    j["objects"].as_array().expect("objects array")
}

fn by_id(j: &Value) -> HashMap<u64, &Value> {
    objects(j)
        .iter()
        .map(|o| (o["id"].as_u64().unwrap(), o))
        .collect()
}

fn of_kind<'a>(j: &'a Value, kind: &str) -> Vec<&'a Value> {
    objects(j)
        .iter()
        .filter(|o| o["kind"] == json!(kind))
        .collect()
}

/// Inode of /proc/PID/ns/NAME, from its link text `type:[ino]`.
fn ns_ino(pid: i32, name: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{name}")).expect("ns link");
    let s = link.to_string_lossy();
    s.split('[')
        .nth(1)
        .and_then(|r| r.trim_end_matches(']').parse().ok())
        .expect("ns inode")
}

const NS_LINKS: [(&str, &str); 10] = [
    ("user", "user"),
    ("uts", "uts"),
    ("ipc", "ipc"),
    ("mnt", "mnt"),
    ("pid", "pid"),
    ("pid_for_children", "pid"),
    ("net", "net"),
    ("cgroup", "cgroup"),
    ("time", "time"),
    ("time_for_children", "time"),
];

#[test]
fn checkpoint_records_nested_namespaces() {
    require_root();
    let w = start_nstree();
    let pids = tree_pids(w.root);
    assert_eq!(pids.len(), 7, "the fixture makes 7 processes: {pids:?}");
    let dir = Scratch::new("ckpt-nested");
    let image = dir.path("a.kst");
    checkpoint(w.root, &image);
    assert_running_untraced(&pids);
    let j = show_json(&image);
    let ids = by_id(&j);

    // Every task, with its pid at each level, parents first, right parent.
    let tasks = of_kind(&j, "task");
    assert_eq!(tasks.len(), 7);
    let task_by_pid: HashMap<i64, &Value> = tasks
        .iter()
        .map(|t| (t["pid"].as_i64().unwrap(), *t))
        .collect();
    for &pid in &pids {
        let t = task_by_pid
            .get(&(pid as i64))
            .unwrap_or_else(|| panic!("task {pid} missing"));
        let want: Vec<Value> = nspid(pid).into_iter().map(|p| json!(p)).collect();
        assert_eq!(t["nspid"].as_array().unwrap(), &want, "NSpid of {pid}");
        let ppid: i32 = proc_status_field(pid, "PPid").unwrap().parse().unwrap();
        match t["parent"].as_u64() {
            None => assert_eq!(pid, w.root),
            Some(p) => assert_eq!(
                ids[&p]["pid"].as_i64(),
                Some(ppid as i64),
                "parent of {pid}"
            ),
        }
        assert_eq!(t["threads"].as_array().unwrap().len(), 1);
        assert_eq!(t["comm"], json!("nstree"));
    }
    // The nspid table documented in fixtures/nstree.c.
    let inner: Vec<Vec<i64>> = pids
        .iter()
        .map(|p| {
            task_by_pid[&(*p as i64)]["nspid"].as_array().unwrap()[1..]
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        inner,
        vec![
            vec![1],
            vec![2],
            vec![3, 1],
            vec![4, 2],
            vec![5, 3, 1],
            vec![6, 4, 2],
            vec![7, 5, 3]
        ]
    );

    // Exactly one record per namespace, and every namespace a task uses is there.
    let mut seen = HashSet::new();
    for o in objects(&j).iter().filter(|o| is_ns(o)) {
        let key = (
            o["kind"].as_str().unwrap().to_string(),
            o["ino"].as_u64().unwrap(),
        );
        assert!(seen.insert(key.clone()), "namespace {key:?} recorded twice");
    }
    for &pid in &pids {
        let t = task_by_pid[&(pid as i64)];
        let np = ids[&t["nsproxy"].as_u64().unwrap()];
        assert_eq!(np["kind"], json!("nsproxy"));
        for (link, kind) in NS_LINKS {
            let ns = ids[&np[link].as_u64().unwrap()];
            assert_eq!(ns["kind"], json!(format!("{kind}_ns")), "{link} of {pid}");
            assert_eq!(
                ns["ino"].as_u64(),
                Some(ns_ino(pid, link)),
                "{link} of {pid}"
            );
        }
    }
    // nsproxies are shared: T1 and A differ (time), B and C share, D E F share.
    let nsproxies = of_kind(&j, "nsproxy");
    assert_eq!(nsproxies.len(), 4);
    let users: Vec<u64> = nsproxies
        .iter()
        .map(|n| n["users"].as_u64().unwrap())
        .collect();
    assert_eq!(users, vec![1, 1, 2, 3]);

    // Pid namespaces by level, parent first, with last_pid read inside.
    let pidns = of_kind(&j, "pid_ns");
    assert_eq!(pidns.len(), 4);
    let levels: Vec<u64> = pidns.iter().map(|p| p["level"].as_u64().unwrap()).collect();
    assert_eq!(levels, vec![0, 1, 2, 3]);
    assert_eq!(pidns[0]["parent"], Value::Null);
    assert_eq!(pidns[0]["external"], json!(true));
    for k in 1..4 {
        assert_eq!(
            pidns[k]["parent"],
            pidns[k - 1]["id"],
            "parent of pid ns level {k}"
        );
        assert_eq!(pidns[k]["external"], json!(false));
    }
    let last: Vec<u64> = pidns[1..]
        .iter()
        .map(|p| p["last_pid"].as_u64().unwrap())
        .collect();
    assert_eq!(last, vec![7, 5, 3], "last_pid of ns1, ns2, ns3");

    // uts: hostname and domainname.
    let uts = of_kind(&j, "uts_ns");
    assert_eq!(uts.len(), 1);
    assert_eq!(uts[0]["hostname"], json!("kstate-test-host"));
    assert_eq!(uts[0]["domainname"], json!("kstate-test-domain"));

    // time: the host's (T1 stays in it) external, the tree's with its offsets.
    let time = of_kind(&j, "time_ns");
    assert_eq!(time.len(), 2);
    let inner_time = time
        .iter()
        .find(|t| t["external"] == json!(false))
        .expect("tree's time ns");
    assert_eq!(inner_time["monotonic"], json!([86400, 0]));
    assert_eq!(inner_time["boottime"], json!([3600, 0]));

    // user namespaces: host (external), level 1 and level 2 with their maps.
    let user = of_kind(&j, "user_ns");
    assert_eq!(user.len(), 3);
    assert_eq!(user[0]["external"], json!(true));
    assert_eq!(user[1]["level"], json!(1));
    assert_eq!(user[1]["uid_map"], json!([[0, 100000, 65536]]));
    assert_eq!(user[1]["gid_map"], json!([[0, 100000, 65536]]));
    assert_eq!(user[1]["setgroups"], json!("deny"));
    assert_eq!(user[2]["level"], json!(2));
    assert_eq!(user[2]["parent"], user[1]["id"]);
    assert_eq!(
        user[2]["uid_map"],
        json!([[0, 0, 1000]]),
        "maps read in the parent's terms"
    );
    assert_eq!(user[2]["setgroups"], json!("deny"));
    // Namespaces other than user are owned by the user ns that created them.
    assert_eq!(uts[0]["owner"], user[1]["id"]);
    assert_eq!(pidns[2]["owner"], user[2]["id"]);

    // The host's namespaces (ours) are marked external, and only they.
    let me = std::process::id() as i32;
    let host: HashSet<u64> = NS_LINKS.iter().map(|(l, _)| ns_ino(me, l)).collect();
    for o in objects(&j).iter().filter(|o| is_ns(o)) {
        let ino = o["ino"].as_u64().unwrap();
        assert_eq!(
            o["external"] == json!(true),
            host.contains(&ino),
            "external flag of {o}"
        );
    }

    // A second checkpoint of the unchanged tree is the same image content
    // (which also shows that reading last_pid did not move it).
    let image2 = dir.path("b.kst");
    checkpoint(w.root, &image2);
    let j2 = show_json(&image2);
    assert_eq!(objects(&j), objects(&j2));
    assert_running_untraced(&pids);
}

#[test]
fn checkpoint_to_stdout_and_human_show() {
    require_root();
    let w = start_nstree();
    let dir = Scratch::new("ckpt-stdout");
    let out = run_kstate(
        &[
            "checkpoint",
            "--leave-running",
            "-t",
            &w.root.to_string(),
            "-o",
            "-",
        ],
        KSTATE_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = dir.path("stdout.kst");
    std::fs::write(&image, &out.stdout).unwrap();
    let j = show_json(&image);
    assert_eq!(of_kind(&j, "task").len(), 7);
    let text = run_kstate(&["show", image.to_str().unwrap()], KSTATE_TIMEOUT);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("hostname \"kstate-test-host\""), "{text}");
    assert!(text.contains("last_pid 7"), "{text}");
    assert_running_untraced(&tree_pids(w.root));
}

#[test]
fn checkpoint_of_missing_task_fails_cleanly() {
    require_root();
    let dir = Scratch::new("ckpt-missing");
    let image = dir.path("x.kst");
    // A pid above pid_max cannot exist.
    let out = run_kstate(
        &[
            "checkpoint",
            "--leave-running",
            "-t",
            "2147483647",
            "-o",
            image.to_str().unwrap(),
        ],
        KSTATE_TIMEOUT,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("task 2147483647 does not exist"), "{err}");
    assert!(!image.exists());
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "no temporary file left"
    );
}

/// Starts kstate with `args`, pausing at `points` (see the test hooks in
/// ARCHITECTURE.md), its stderr going to `errfile`.
fn spawn_paused(args: &[&str], points: &str, hook: &Path, errfile: &Path) -> ChildGuard {
    ChildGuard(
        Command::new(kstate_bin())
            .args(args)
            .env("KSTATE_TEST_PAUSE_AT", points)
            .env("KSTATE_TEST_PAUSE_DIR", hook)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(errfile).unwrap())
            .spawn()
            .expect("start kstate"),
    )
}

/// Runs a checkpoint that is expected to fail, pausing kstate just before it
/// exits (exiting would detach the tree by itself) to check that the tree is
/// already released and running. Returns kstate's stderr.
fn failing_checkpoint_releases(root: i32, output: &str, pids: &[i32], dir: &Scratch) -> String {
    let hook = dir.path("hook-exit");
    let _ = std::fs::remove_dir_all(&hook);
    std::fs::create_dir(&hook).unwrap();
    let errfile = dir.path("stderr-exit");
    let mut kstate = spawn_paused(
        &[
            "checkpoint",
            "--leave-running",
            "-t",
            &root.to_string(),
            "-o",
            output,
        ],
        "before-exit",
        &hook,
        &errfile,
    );
    wait_for(KSTATE_TIMEOUT, "kstate to fail", || {
        hook.join("before-exit").exists()
    });
    assert_running_untraced(pids);
    std::fs::write(hook.join("before-exit.go"), b"").unwrap();
    let mut status = None;
    wait_for(KSTATE_TIMEOUT, "kstate to finish", || {
        status = kstate.0.try_wait().ok().flatten();
        status.is_some()
    });
    let err = std::fs::read_to_string(&errfile).unwrap();
    assert!(
        !status.unwrap().success(),
        "checkpoint to {output} must fail: {err}"
    );
    err
}

#[test]
fn failed_write_leaves_tree_running() {
    require_root();
    let w = start_nstree();
    let pids = tree_pids(w.root);
    let dir = Scratch::new("ckpt-write");
    // /dev/full fails the write after the tree is frozen and collected.
    let err = failing_checkpoint_releases(w.root, "/dev/full", &pids, &dir);
    assert!(
        err.contains("/dev/full") && err.to_lowercase().contains("no space"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // An output directory that does not exist is refused up front.
    let err = failing_checkpoint_releases(w.root, "/nonexistent-kstate-dir/x.kst", &pids, &dir);
    assert!(err.contains("/nonexistent-kstate-dir/x.kst"), "{err}");
    assert_running_untraced(&pids);
    assert_eq!(tree_pids(w.root), pids);
}

#[test]
fn task_exiting_during_checkpoint_fails_cleanly() {
    require_root();
    let w = start_nstree();
    let pids = tree_pids(w.root);
    let victim = *pids.last().unwrap(); // F, a leaf in ns3
    let dir = Scratch::new("ckpt-exit");
    let hook = dir.path("hook");
    std::fs::create_dir(&hook).unwrap();
    let image = dir.path("x.kst");
    let errfile = dir.path("stderr");
    let mut kstate = spawn_paused(
        &[
            "checkpoint",
            "--leave-running",
            "-t",
            &w.root.to_string(),
            "-o",
            image.to_str().unwrap(),
        ],
        "after-freeze,before-exit",
        &hook,
        &errfile,
    );
    let kpid = kstate.0.id().to_string();
    wait_for(Duration::from_secs(20), "kstate to freeze the tree", || {
        hook.join("after-freeze").exists()
    });
    // While frozen every task is in a tracing stop, traced by kstate.
    for &p in &pids {
        assert_eq!(
            proc_status_field(p, "TracerPid").as_deref(),
            Some(kpid.as_str())
        );
        let state = proc_status_field(p, "State").unwrap();
        assert!(state.starts_with('t'), "task {p} is {state} while frozen");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::fs::write(hook.join("after-freeze.go"), b"").unwrap();
    // kstate has given up but not exited (exiting would detach it anyway):
    // the tree must already be released.
    wait_for(KSTATE_TIMEOUT, "kstate to fail", || {
        hook.join("before-exit").exists()
    });
    let rest: Vec<i32> = pids.iter().copied().filter(|&p| p != victim).collect();
    assert_running_untraced(&rest);
    std::fs::write(hook.join("before-exit.go"), b"").unwrap();
    let mut status = None;
    wait_for(KSTATE_TIMEOUT, "kstate to finish", || {
        status = kstate.0.try_wait().ok().flatten();
        status.is_some()
    });
    let status = status.unwrap();
    let err = std::fs::read_to_string(&errfile).unwrap();
    assert!(!status.success(), "checkpoint must fail: {err}");
    assert!(err.contains(&format!("task {victim} exited")), "{err}");
    assert!(!image.exists(), "no image after a failed checkpoint");
    assert_running_untraced(&rest);
    wait_for(Duration::from_secs(5), "the victim to be reaped", || {
        !Path::new(&format!("/proc/{victim}")).exists()
    });
}

/// Kills and reaps a child on drop (a kstate left hanging by a failed
/// assertion); std's Child never signals a pid it has already reaped.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn is_ns(o: &Value) -> bool {
    o["kind"].as_str().is_some_and(|k| k.ends_with("_ns"))
}
