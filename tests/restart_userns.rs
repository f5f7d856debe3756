//! Restart of the tree's own user namespaces (root). The workloads of the
//! restart tests run under `fixtures/userns_run.c`: inside fresh user (map
//! 0 -> 100000, 65536 ids), pid, uts, ipc, mnt and time namespaces, as uid
//! and gid 1000 of the new user namespace. After restart they pass their
//! own checks (and the namespace init its own: pid 1, hostname, uid 0 inside,
//! uid_map, msgmax), the ids read from the host are the same, and a second
//! checkpoint equals the first under `kstate diff`.

mod common;

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// The host uid/gid of uid/gid 1000 of the workloads' user namespace.
const HOST_ID: u32 = 101_000;

fn ns(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read(path: String) -> String {
    std::fs::read_to_string(&path).unwrap_or_default()
}

/// What the host sees of a tree under userns_run: the init's uid_map and
/// the ids of its children (the workload), with their NSpid.
fn host_view(root: i32) -> (String, Vec<(Option<String>, Option<String>, Vec<i32>)>) {
    let map = read(format!("/proc/{root}/uid_map"));
    let tasks = common::tree_pids(root)[1..]
        .iter()
        .map(|&p| {
            (
                common::proc_status_field(p, "Uid"),
                common::proc_status_field(p, "Gid"),
                common::nspid(p)[1..].to_vec(),
            )
        })
        .collect();
    (map.split_whitespace().collect::<Vec<_>>().join(" "), tasks)
}

/// Starts `userns_run 1000 1000 WORKLOAD ARGS…`.
fn start(deny: bool, workload: &str, args: &[&str]) -> Reaped {
    let bin = common::build_fixture(workload);
    let mut all = Vec::new();
    if deny {
        all.push("-deny");
    }
    all.extend(["1000", "1000", bin.to_str().unwrap()]);
    all.extend_from_slice(args);
    Reaped::start("userns_run", &all)
}

/// Checkpoint, restart, compare what the host sees, checkpoint again and
/// diff, then SIGTERM: the workload's check and the init's.
fn round_trip(
    dir: &Path,
    mut w: Reaped,
    during: impl Fn(&Restarted),
) -> (String, Vec<(Option<String>, Option<String>, Vec<i32>)>) {
    let before = host_view(w.root);
    assert_eq!(before.0, "0 100000 65536", "the workload's uid_map");
    assert!(
        before.1.iter().all(|t| t.0.as_deref()
            == Some(&format!("{HOST_ID}\t{HOST_ID}\t{HOST_ID}\t{HOST_ID}")[..])),
        "the workload runs as uid 1000 inside, {HOST_ID} on the host: {:?}",
        before.1
    );
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let r = Restarted::start(&a, dir);
    let after = host_view(r.root);
    assert_eq!(after, before, "uid_map, ids and NSpid after restart");
    let me = std::process::id() as i32;
    for name in ["user", "pid", "uts", "ipc", "mnt"] {
        assert_ne!(ns(r.root, name), ns(me, name), "{name} namespace of its own");
    }
    // The user namespace owns the others, as at checkpoint (kstate diff
    // compares the owner references; here the kernel's view).
    during(&r);
    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "the workload's and the namespace init's own checks: {st}"
    );
    after
}

/// A file the workload (uid 1000 inside) can write.
fn workload_file(dir: &Path, name: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, b"").unwrap();
    chown(&f, Some(HOST_ID), Some(HOST_ID)).unwrap();
    f
}

#[test]
fn counter_in_a_user_namespace_counts_on() {
    let dir = scratch("userns-counter");
    let out = workload_file(&dir, "count.txt");
    let w = start(false, "counter", &[out.to_str().unwrap()]);
    let lines = || read(out.display().to_string()).lines().count();
    common::wait_for(Duration::from_secs(5), "the counter to count", || {
        lines() > 5
    });
    round_trip(&dir, w, |_| {
        let now = lines();
        common::wait_for(
            Duration::from_secs(5),
            "the restored counter to count on",
            || lines() > now + 5,
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
