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
    // --sync: the image is flushed to disk before it is renamed into place.
    checkpoint_ok(w.root, &a, &["--sync"]);
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

/// `kstate show --json IMAGE`, parsed.
fn show(image: &Path) -> serde_json::Value {
    let out = common::run_kstate(
        &["show", "--json", image.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::stdout_json(&out)
}

/// The objects of kind `kind` in a `show --json` value.
fn objects<'a>(v: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    v["objects"]
        .as_array()
        .map(|a| a.iter().filter(|o| o["kind"] == kind).collect())
        .unwrap_or_default()
}

/// True when signal `sig` is pending for `pid` (thread or process-wide).
fn signal_pending(pid: i32, sig: i32) -> bool {
    let bit = 1u64 << (sig - 1);
    ["SigPnd", "ShdPnd"].iter().any(|f| {
        common::proc_status_field(pid, f)
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|m| m & bit != 0)
    })
}

/// Waits until every task of the tree at `root` has pointed its fds 0, 1
/// and 2 at /dev/null (the fixtures do it right after their READY line), so
/// that no pipe of the test is checkpointed.
fn wait_quiet(root: i32) {
    common::wait_for(ms(5000), "the workload to leave the test's pipes", || {
        common::tree_pids(root).iter().all(|p| {
            (0..3).all(|fd| {
                std::fs::read_link(format!("/proc/{p}/fd/{fd}"))
                    .is_ok_and(|l| l == Path::new("/dev/null"))
            })
        })
    });
}

/// The whole cycle for workload `name`: start it, `before` (on the live
/// workload), checkpoint A (the workload is killed), restart from A (same
/// pid), `after` (on the restored tree), checkpoint B with the tree left
/// running, `kstate diff A B` must find nothing outside the legit list, then
/// SIGTERM and the workload's own check must exit 0. Returns A's `show`.
fn cycle(
    name: &str,
    args: &[&str],
    dir: &Path,
    before: impl FnOnce(&Reaped),
    after: impl FnOnce(&Restarted, &[String]),
) -> serde_json::Value {
    let mut w = Reaped::start(name, args);
    wait_quiet(w.root);
    before(&w);
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let shown = show(&a);
    let r = Restarted::start(&a, dir);
    assert_eq!(r.root, w.root, "{name}: same pid after restart");
    after(&r, &w.extra);
    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "{name}: second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "{name}: the workload's own check (exit status) failed: {st}"
    );
    shown
}

/// Whether the root task of a `show --json` value was stopped inside a
/// system call.
fn root_in_syscall(v: &serde_json::Value) -> bool {
    objects(v, "task_core")[0]["in_syscall"]
        .as_bool()
        .expect("task_core.in_syscall")
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

#[test]
fn memory_256mib_keeps_its_checksum() {
    let dir = scratch("memcheck");
    let shown = cycle("memcheck", &["256"], &dir, |_| {}, |_, _| {});
    let pages: u64 = objects(&shown, "vma")
        .iter()
        .filter_map(|v| v["pages"].as_u64())
        .sum();
    assert!(
        pages >= 256 * 256,
        "the image holds only {pages} pages, not the 256 MiB"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Private anonymous pages whose mapping is no longer writable: code the
/// program wrote at run time into a mapping it then made read+exec (as a
/// JIT does), which kstate writes itself (`vma::fill`: through /proc/PID/mem,
/// since process_vm_writev cannot write there), and data behind PROT_NONE
/// and read-only, which the task reads back into itself with the mapping
/// writable for the reads (`vma::opened_for_reads`). The generated function
/// still returns its value and the data are as written
/// (`fixtures/jitmem.c`), and the second checkpoint matches the first
/// (it fails when `fill` leaves executable mappings out).
#[test]
fn code_written_at_run_time_and_inaccessible_pages_come_back() {
    let dir = scratch("jitmem");
    let shown = cycle("jitmem", &[], &dir, |_| {}, |_, _| {});
    // The image holds the three anonymous mappings with their two pages each.
    for (prot, what) in [(5, "read+exec"), (0, "PROT_NONE"), (1, "read-only")] {
        let found = objects(&shown, "vma").iter().any(|v| {
            v["vma_kind"] == 0
                && v["shared"] == false
                && v["prot"] == prot
                && v["pages"].as_u64().is_some_and(|n| n >= 2)
        });
        assert!(
            found,
            "no private {what} anonymous mapping with its pages in the image"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A child maps other files than its parent (`fixtures/mapfork.c`: it
/// unmaps one and maps another in its place, then a second copy of one of
/// its parent's): each restorer opens the files of its mappings before its
/// children, who take over those their own list begins with and open the
/// rest (`restart::inherited_preopens`). After the restart each process
/// finds its own files' contents at its mappings, under their names, and
/// the second checkpoint matches the first.
#[test]
fn a_child_mapping_other_files_than_its_parent() {
    let dir = scratch("mapfork");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let shown = cycle(
        "mapfork",
        &[files.to_str().unwrap()],
        &dir,
        |_| {},
        |_, _| {},
    );
    // Both processes map a; only the parent c; only the child b.
    let tasks = objects(&shown, "task").len();
    assert_eq!(tasks, 2, "two tasks in the image");
    let maps_of = |name: &str| {
        let path = files.join(name);
        objects(&shown, "vma")
            .iter()
            .filter(|v| v["path"] == path.to_str().unwrap())
            .count()
    };
    assert_eq!(
        (maps_of("a"), maps_of("b"), maps_of("c")),
        (3, 1, 1),
        "mappings of a (parent once, child twice), b and c"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn signal_handler_and_pending_blocked_signals() {
    let dir = scratch("sigpend");
    let shown = cycle(
        "sigpend",
        &[],
        &dir,
        |_| {},
        |r, _| {
            assert!(
                signal_pending(r.root, libc::SIGUSR2),
                "SIGUSR2 is not pending after the restart"
            );
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(r.root),
                nix::sys::signal::Signal::SIGUSR1,
            )
            .expect("send SIGUSR1");
            common::wait_for(ms(5000), "the SIGUSR1 handler to run", || {
                !signal_pending(r.root, libc::SIGUSR1)
            });
        },
    );
    let core = objects(&shown, "task_core");
    let pending = core[0]["pending"].as_array().expect("pending list");
    assert_eq!(pending.len(), 3, "SIGUSR2 and two SIGRTMIN+1: {pending:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pipe_pair_with_bytes_in_flight() {
    let dir = scratch("pipepair");
    let shown = cycle(
        "pipepair",
        &[],
        &dir,
        |_| std::thread::sleep(ms(100)),
        // Let them exchange for a while after the restart.
        |_, _| std::thread::sleep(ms(300)),
    );
    let in_flight: u64 = objects(&shown, "pipe")
        .iter()
        .filter_map(|p| p["in_flight"].as_u64())
        .sum();
    assert!(in_flight > 0, "no bytes in flight at the checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn asleep_in_nanosleep() {
    let dir = scratch("sleeper-ns");
    let shown = cycle(
        "sleeper",
        &["nanosleep"],
        &dir,
        |_| std::thread::sleep(ms(50)),
        |_, _| std::thread::sleep(ms(100)),
    );
    assert!(root_in_syscall(&shown), "checkpointed outside nanosleep");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blocked_in_read() {
    let dir = scratch("sleeper-read");
    let shown = cycle(
        "sleeper",
        &["read"],
        &dir,
        |_| std::thread::sleep(ms(50)),
        |_, extra| {
            let child: i32 = extra
                .first()
                .and_then(|c| c.parse().ok())
                .expect("the child's pid on the READY line");
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGUSR1,
            )
            .expect("send SIGUSR1 to the writer");
            common::wait_for(ms(5000), "the writer to get SIGUSR1", || {
                !signal_pending(child, libc::SIGUSR1)
            });
            // It writes within 20 ms; the reader wakes at once.
            std::thread::sleep(ms(200));
        },
    );
    assert!(root_in_syscall(&shown), "checkpointed outside read");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn file_open_at_an_offset() {
    let dir = scratch("fileoff");
    let file = dir.join("data");
    let shown = cycle(
        "fileoff",
        &[file.to_str().unwrap()],
        &dir,
        |_| {},
        |_, _| {},
    );
    let pos: Vec<u64> = objects(&shown, "fd")
        .iter()
        .filter(|f| f["type"] == "regular")
        .filter_map(|f| f["pos"].as_u64())
        .collect();
    assert_eq!(pos, vec![12345, 40000], "the offsets in the image");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn private_file_mapping_written_to() {
    let dir = scratch("filemap");
    let file = dir.join("data");
    let shown = cycle(
        "filemap",
        &[file.to_str().unwrap()],
        &dir,
        |_| {},
        |_, _| {},
    );
    let path = file.to_str().unwrap();
    let mapped: Vec<u64> = objects(&shown, "vma")
        .iter()
        .filter(|v| v["path"] == path)
        .filter_map(|v| v["pages"].as_u64())
        .collect();
    assert_eq!(mapped, vec![1], "one private copy of the file mapping");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn avx_registers_survive() {
    let dir = scratch("avx");
    let shown = cycle(
        "avx",
        &[],
        &dir,
        |w| {
            assert_eq!(
                w.extra.first().map(String::as_str),
                Some("1"),
                "this CPU has AVX-512: the fixture should use it"
            );
            std::thread::sleep(ms(100));
        },
        |_, _| std::thread::sleep(ms(100)),
    );
    assert!(
        !root_in_syscall(&shown),
        "checkpointed inside a system call, not in the busy loop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An image read from standard input (`kstate restart -`) has no file the
/// tasks could read their pages from: kstate writes them all itself. The
/// memory's checksum (the workload's own check) must hold as with a file.
#[test]
fn memory_from_an_image_on_standard_input() {
    let dir = scratch("memstdin");
    let mut w = Reaped::start("memcheck", &["8"]);
    wait_quiet(w.root);
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let redirect = format!("exec \"$@\" < '{}'", a.display());
    let prefix: Vec<&std::ffi::OsStr> = ["sh", "-c", redirect.as_str(), "sh"]
        .into_iter()
        .map(std::ffi::OsStr::new)
        .collect();
    let r = Restarted::start_under(&prefix, Path::new("-"), &dir, &[]);
    assert_eq!(r.root, w.root, "same pid after restart");
    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    let st = r.finish();
    assert_eq!(
        st.code(),
        Some(0),
        "the workload's memory check failed after a restart from stdin: {st}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
