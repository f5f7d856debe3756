//! Checks the `nstree` fixture itself, without kstate.
mod common;

use common::*;
use std::fs;
use std::time::Duration;

fn ns_link(pid: i32, ns: &str) -> String {
    let path = format!("/proc/{pid}/ns/{ns}");
    fs::read_link(&path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// First line of an id map, whitespace-normalised.
fn id_map(pid: i32, file: &str) -> String {
    let path = format!("/proc/{pid}/{file}");
    let s = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nstree_fixture_shape() {
    require_root();
    let me = std::process::id() as i32;
    let w = start_nstree();
    let root = w.root;

    // Tree: T1 A B C D E F, pre-order.
    let pids = tree_pids(root);
    assert_eq!(pids.len(), 7, "tree of {root}: {pids:?}");
    assert!(!pids.contains(&(w.child.id() as i32)), "launcher in tree");
    let [t1, a, b, c, d, e, f] = pids[..] else {
        unreachable!()
    };
    let ppid = |p: i32| proc_status_field(p, "PPid").unwrap_or_default();
    assert_eq!(ppid(t1), w.child.id().to_string());
    for (child, parent) in [(a, t1), (b, a), (c, b), (d, c), (e, d), (f, d)] {
        assert_eq!(ppid(child), parent.to_string(), "parent of {child}");
    }

    // NSpid: our pid, then ns1, ns2, ns3.
    let expected: [&[i32]; 7] = [
        &[1],
        &[2],
        &[3, 1],
        &[4, 2],
        &[5, 3, 1],
        &[6, 4, 2],
        &[7, 5, 3],
    ];
    assert_eq!(
        nspid(me).len(),
        1,
        "tests must run in the /proc pid namespace"
    );
    for (&pid, exp) in pids.iter().zip(expected) {
        let ns = nspid(pid);
        assert_eq!(ns.first(), Some(&pid), "NSpid of {pid}: {ns:?}");
        assert_eq!(&ns[1..], exp, "NSpid of {pid}: {ns:?}");
    }

    assert_running_untraced(&pids);

    // One pid namespace per level, shared within a level.
    let host_pidns = ns_link(me, "pid");
    let levels = [vec![t1, a], vec![b, c], vec![d, e, f]];
    let mut seen = vec![host_pidns.clone()];
    for level in &levels {
        let ns = ns_link(level[0], "pid");
        assert!(!seen.contains(&ns), "pid ns {ns} of {} not new", level[0]);
        for &p in level {
            assert_eq!(ns_link(p, "pid"), ns, "pid ns of {p}");
            assert_eq!(
                ns_link(p, "pid_for_children"),
                ns,
                "pid_for_children of {p}"
            );
        }
        seen.push(ns);
    }
    assert_eq!(ns_link(w.child.id() as i32, "pid"), host_pidns);

    // T1 has its own user/uts/ipc/net/mnt/cgroup namespaces, all shared
    // by the tree; B starts a second user namespace.
    for ns in ["user", "uts", "ipc", "net", "mnt", "cgroup"] {
        let t1_ns = ns_link(t1, ns);
        assert_ne!(t1_ns, ns_link(me, ns), "{ns} ns of T1");
        for &p in &pids {
            if ns != "user" || p == a {
                assert_eq!(ns_link(p, ns), t1_ns, "{ns} ns of {p}");
            }
        }
    }
    let b_user = ns_link(b, "user");
    assert_ne!(b_user, ns_link(t1, "user"));
    for p in [c, d, e, f] {
        assert_eq!(ns_link(p, "user"), b_user, "user ns of {p}");
    }
    assert_eq!(id_map(t1, "uid_map"), "0 100000 65536");
    assert_eq!(id_map(t1, "gid_map"), "0 100000 65536");
    assert_eq!(id_map(b, "uid_map"), "0 100000 1000");
    assert_eq!(id_map(b, "gid_map"), "0 100000 1000");
    assert_eq!(id_map(b, "setgroups"), "deny");

    // Time: T1 stays in ours, its descendants are in the new one.
    let t1_time = ns_link(t1, "time");
    let new_time = ns_link(t1, "time_for_children");
    assert_eq!(t1_time, ns_link(me, "time"));
    assert_ne!(t1_time, new_time, "T1 time vs time_for_children");
    for &p in &pids[1..] {
        assert_eq!(ns_link(p, "time"), new_time, "time ns of {p}");
    }
    assert_eq!(
        id_map(a, "timens_offsets"),
        "monotonic 86400 0\nboottime 3600 0"
    );

    // Dropping the workload leaves nothing of the tree.
    let started: Vec<(i32, u64)> = pids
        .iter()
        .map(|&p| (p, start_time(p).expect("start time")))
        .collect();
    let launcher = w.child.id() as i32;
    let launcher_start = start_time(launcher);
    drop(w);
    wait_for(Duration::from_secs(5), "the nstree processes to go", || {
        started
            .iter()
            .chain(launcher_start.as_ref().map(|s| (launcher, *s)).iter())
            .all(|&(p, t)| start_time(p) != Some(t))
    });
}
