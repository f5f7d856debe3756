//! Checkpoint → restart of a task that is not root any more: uids, gids,
//! supplementary groups, the five capability sets, securebits and
//! no_new_privs come back (root). The workload (`fixtures/creds.c`) checks
//! itself on SIGTERM; `kstate restart` exits with its status.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// The credential lines of /proc/PID/status.
const FIELDS: [&str; 10] = [
    "Uid",
    "Gid",
    "Groups",
    "CapInh",
    "CapPrm",
    "CapEff",
    "CapBnd",
    "CapAmb",
    "NoNewPrivs",
    "Seccomp",
];

fn creds(pid: i32) -> Vec<(&'static str, String)> {
    FIELDS
        .iter()
        .map(|f| {
            let v = common::proc_status_field(pid, f)
                .unwrap_or_else(|| panic!("no {f} in /proc/{pid}/status"));
            (*f, v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// Waits until the workload has pointed its fds 0-2 at /dev/null (right
/// after its READY line), so that no pipe of the test is checkpointed.
fn wait_quiet(root: i32) {
    common::wait_for(
        Duration::from_secs(5),
        "the workload to leave the test's pipes",
        || {
            (0..3).all(|fd| {
                std::fs::read_link(format!("/proc/{root}/fd/{fd}"))
                    .is_ok_and(|l| l == Path::new("/dev/null"))
            })
        },
    );
}

#[test]
fn credentials_of_a_non_root_task() {
    let dir = scratch("creds");
    let mut w = Reaped::start("creds", &[]);
    wait_quiet(w.root);
    let before = creds(w.root);
    let get = |c: &[(&str, String)], f: &str| {
        c.iter()
            .find(|(k, _)| *k == f)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    // What the fixture set, as /proc shows it.
    assert_eq!(get(&before, "Uid"), "1000 1001 1002 1001");
    assert_eq!(get(&before, "Gid"), "1000 1001 1002 1001");
    assert_eq!(get(&before, "Groups"), "100 200");
    assert_eq!(get(&before, "CapInh"), "0000000000000400");
    assert_eq!(get(&before, "CapPrm"), "0000000000000420");
    assert_eq!(get(&before, "CapEff"), "0000000000000420");
    assert_eq!(get(&before, "CapAmb"), "0000000000000400");
    assert_eq!(get(&before, "NoNewPrivs"), "1");

    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let r = Restarted::start(&a, &dir);
    assert_eq!(r.root, w.root, "same pid after restart");
    let after = creds(r.root);
    assert_eq!(before, after, "credentials in /proc/PID/status");

    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "the workload's own check (exit status) failed: {st} \
         (2 uids, 3 gids, 4 groups, 6-10 capability sets, 11 securebits, 12 no_new_privs)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
