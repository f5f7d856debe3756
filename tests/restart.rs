//! Checkpoint → restart → second checkpoint of real workloads (root).
//! Each workload checks itself on SIGTERM and exits 0 when all is well;
//! `kstate restart` exits with the restored root's status.

mod common;

use std::path::{Path, PathBuf};

use common::restart::*;

fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("scratch dir");
    p
}

#[test]
fn counter_carries_on_without_gap_or_repeat() {
    let dir = scratch("counter");
    let out = dir.join("count.txt");
    let mut w = Reaped::start("counter", &[out.to_str().unwrap()]);
    // Let it count a little first.
    common::wait_for(
        std::time::Duration::from_secs(5),
        "the counter to count",
        || {
            std::fs::read_to_string(&out)
                .map(|s| s.lines().count() > 5)
                .unwrap_or(false)
        },
    );
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let before = std::fs::read_to_string(&out).unwrap().lines().count();
    let r = Restarted::start(&a, &dir);
    assert_eq!(r.root, w.root, "same pid after restart");
    common::wait_for(
        std::time::Duration::from_secs(5),
        "the restored counter to count on",
        || {
            std::fs::read_to_string(&out)
                .map(|s| s.lines().count() > before + 5)
                .unwrap_or(false)
        },
    );
    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "the counter's own check (exit status) failed: {st}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
