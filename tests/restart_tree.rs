//! Checkpoint → restart of a tree of 50 processes over 3 generations with
//! process groups and sessions of their own (`fixtures/tree50.c`), root.
//! The tree checks itself on SIGTERM (same pid, ppid, pgid and sid for all
//! 50); the test checks the same from /proc before and after.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// NSpid, PPid, NSpgid, NSsid of one task, from /proc/PID/status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ids {
    nspid: String,
    ppid: String,
    pgid: String,
    sid: String,
}

fn ids(pid: i32) -> Option<Ids> {
    let f = |k| common::proc_status_field(pid, k);
    Some(Ids {
        nspid: f("NSpid")?,
        ppid: f("PPid")?,
        pgid: f("NSpgid")?,
        sid: f("NSsid")?,
    })
}

/// The ids of every task of the tree rooted at `root`.
fn table(root: i32) -> BTreeMap<i32, Ids> {
    common::tree_pids(root)
        .into_iter()
        .map(|p| (p, ids(p).unwrap_or_else(|| panic!("task {p} vanished"))))
        .collect()
}

#[test]
fn tree_of_50_with_groups_and_sessions_carries_on() {
    let dir = scratch("tree50");
    let log = dir.join("tree50.log");
    let mut w = Reaped::start("tree50", &[log.to_str().unwrap()]);
    let before = table(w.root);
    assert_eq!(before.len(), 50, "the fixture runs 50 tasks: {before:?}");
    // The fixture's shape: several groups and sessions, not just one.
    let groups: std::collections::BTreeSet<_> = before.values().map(|i| &i.pgid).collect();
    let sessions: std::collections::BTreeSet<_> = before.values().map(|i| &i.sid).collect();
    assert!(groups.len() >= 10 && sessions.len() >= 3, "{before:?}");

    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    for p in before.keys() {
        assert!(
            ids(*p).is_none(),
            "task {p} still exists after the checkpoint"
        );
    }

    let r = Restarted::start(&a, &dir);
    assert_eq!(r.root, w.root, "same root pid after restart");
    let after = table(r.root);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same 50 pids"
    );
    for (pid, b) in &before {
        let a = &after[pid];
        if *pid == r.root {
            // The root's parent was the reaper; now it is kstate.
            assert_eq!(
                (&b.nspid, &b.pgid, &b.sid),
                (&a.nspid, &a.pgid, &a.sid),
                "root {pid}"
            );
            assert_eq!(a.ppid, r.kstate.id().to_string(), "root's parent is kstate");
        } else {
            assert_eq!(b, a, "task {pid}: before / after restart");
        }
    }
    common::assert_running_untraced(&after.keys().copied().collect::<Vec<_>>());

    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(table(r.root), after, "unchanged by the second checkpoint");

    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "the tree's own check failed ({st}): {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    for p in before.keys() {
        assert!(ids(*p).is_none(), "task {p} still exists after the end");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
