//! Restart rebuilds the tree's own namespaces (root): fixtures/nsnest.c is
//! 7 tasks over 4 nested pid namespaces with their own uts, ipc, net, mnt
//! and time namespaces. After restart every task has the same pid at every
//! level of the tree's own (compared NSpid line by line, the outermost level
//! being the restarting process's); the hostname and the clock offsets read
//! back; two restarts of one image run side by side; a second checkpoint
//! equals the first under `kstate diff`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

/// NSpid of every task of the tree, without the outermost level.
fn inner_pids(root: i32) -> Vec<Vec<i32>> {
    common::tree_pids(root)
        .into_iter()
        .map(|p| common::nspid(p)[1..].to_vec())
        .collect()
}

fn hostname(pid: i32) -> String {
    let out = Command::new("nsenter")
        .args(["-u", "-t", &pid.to_string(), "hostname"])
        .output()
        .expect("nsenter");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ns(pid: i32, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn nested_pid_namespaces_come_back_twice_side_by_side() {
    let dir = scratch("ns-nest");
    let mut w = Reaped::start("nsnest", &[]);
    let before = inner_pids(w.root);
    assert_eq!(before.len(), 7);
    assert_eq!(
        before.iter().map(Vec::len).max(),
        Some(4),
        "4 nested levels"
    );
    assert_eq!(hostname(w.root), "kstate-nest");
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();

    let (d1, d2) = (dir.join("one"), dir.join("two"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let r1 = Restarted::start(&a, &d1);
    let r2 = Restarted::start(&a, &d2);
    for r in [&r1, &r2] {
        let after = inner_pids(r.root);
        assert_eq!(
            after, before,
            "NSpid below the outermost level, task by task"
        );
        assert_eq!(hostname(r.root), "kstate-nest");
        // The root's children live in the time namespace it made for them.
        let child = common::children(r.root)[0];
        let offsets = std::fs::read_to_string(format!("/proc/{child}/timens_offsets")).unwrap();
        let words: Vec<&str> = offsets.split_whitespace().collect();
        assert_eq!(
            words,
            ["monotonic", "7200", "0", "boottime", "600", "0"],
            "{offsets}"
        );
        assert_ne!(ns(r.root, "net"), ns(std::process::id() as i32, "net"));
        // The ipc namespace's own limit came back.
        let msgmax = Command::new("nsenter")
            .args([
                "-i",
                "-t",
                &r.root.to_string(),
                "cat",
                "/proc/sys/kernel/msgmax",
            ])
            .output()
            .expect("nsenter");
        assert_eq!(String::from_utf8_lossy(&msgmax.stdout).trim(), "12345");
    }
    // Side by side: each restart has namespaces of its own.
    for name in ["pid", "uts", "net", "ipc", "mnt"] {
        assert_ne!(
            ns(r1.root, name),
            ns(r2.root, name),
            "{name} namespace shared"
        );
    }
    let b = dir.join("b.kst");
    checkpoint_ok(r1.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(
        r1.finish().code(),
        Some(0),
        "the tree's own check (first restart)"
    );
    assert_eq!(
        r2.finish().code(),
        Some(0),
        "the tree's own check (second restart)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Namespaces shared by two branches of the tree and not by their common
/// parent (fixtures/nsshare.c: A makes uts, ipc, net and mnt; B enters
/// them; C is born in them): made once at restart, by A, and entered by B
/// and C; the hostname comes back; a second checkpoint equals the first.
#[test]
fn namespaces_shared_across_branches_are_made_once() {
    let dir = scratch("ns-share");
    let mut w = Reaped::start("nsshare", &[]);
    let pids: Vec<i32> = w.extra.iter().map(|p| p.parse().unwrap()).collect();
    let [a, b, c] = [pids[0], pids[1], pids[2]];
    let me = std::process::id() as i32;
    for name in ["uts", "ipc", "net", "mnt"] {
        assert_ne!(ns(a, name), ns(w.root, name), "{name}: A's own");
        assert_eq!(ns(b, name), ns(a, name), "{name}: B in A's");
    }
    let a_img = dir.join("a.kst");
    checkpoint_ok(w.root, &a_img, &[]);
    w.wait_gone();
    let r = Restarted::start(&a_img, &dir);
    assert_eq!(r.root, w.root, "same pid after restart");
    for name in ["uts", "ipc", "net", "mnt"] {
        let made = ns(a, name);
        assert_ne!(made, ns(me, name), "{name}: made anew");
        assert_ne!(made, ns(r.root, name), "{name}: not the root's");
        assert_eq!(ns(b, name), made, "{name}: B entered A's");
        assert_eq!(ns(c, name), made, "{name}: C too");
    }
    assert_eq!(hostname(b), "kstate-shared");
    let b_img = dir.join("b.kst");
    checkpoint_ok(r.root, &b_img, &["--leave-running"]);
    let (same, text) = diff(&a_img, &b_img);
    assert!(same, "second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(st.code(), Some(0), "the tree's own checks: {st}");
    let _ = std::fs::remove_dir_all(&dir);
}
