//! The tree's own mount namespace (root): fixtures/mntns.c runs in fresh
//! pid, mount, ipc and net namespaces, makes its copy of / nosuid,nodev,
//! and mounts its own proc, tmpfs mounts
//! with files (one overmounted in part, one read-only, one shared with a
//! slave bind of it, one unbindable, one wholly hidden by another), bind
//! mounts (of a host directory, read-only and nosuid, and of a tmpfs
//! directory), devpts, mqueue and a read-only sysfs; its child has a mount
//! namespace of its own, copied from the root's, with one more tmpfs. After
//! restart the restored root's and child's mountinfo are the same, line by line (order,
//! flags, options, propagation), the files are there, the workload's own
//! checks pass (proc shows the restored pids), and a second checkpoint
//! equals the first under `kstate diff`. A mount kstate cannot make (ramfs)
//! is refused at checkpoint naming it, unless marked external; a restart
//! that fails while mounting leaves no process and no mount behind.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::restart::*;

/// The scratch directory with the mount points the fixture expects.
fn scratch(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    for d in [
        "t", "src", "b", "b2", "ro", "sh", "sl", "ub", "pts", "mq", "sys", "z", "a", "ram", "img",
        "host",
    ] {
        std::fs::create_dir_all(p.join(d)).expect("scratch dir");
    }
    std::fs::write(p.join("src/hello"), "hi\n").expect("src/hello");
    p
}

/// One mountinfo line without what legitimately changes (mount ids, device
/// numbers of new superblocks, peer group numbers, which are renumbered in
/// order of appearance).
fn mounts(pid: i32) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let mut groups: Vec<String> = Vec::new();
    text.lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            let dash = w.iter().position(|x| *x == "-").expect("separator");
            let tags: Vec<String> = w[6..dash]
                .iter()
                .map(|t| match t.split_once(':') {
                    Some((k, g)) => {
                        if !groups.iter().any(|x| x == g) {
                            groups.push(g.to_string());
                        }
                        let n = groups.iter().position(|x| x == g).unwrap_or(0);
                        format!("{k}:{n}")
                    }
                    None => t.to_string(),
                })
                .collect();
            format!(
                "{} {} {} [{}] - {}",
                w[3],
                w[4],
                w[5],
                tags.join(" "),
                w[dash + 1..].join(" ")
            )
        })
        .collect()
}

fn mounts_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{name}/mountinfo")) {
            if text.contains(&needle) {
                out.push(name);
            }
        }
    }
    out
}

/// Kills the tree whose root a pidfile names, when dropped.
struct TreeGuard(PathBuf);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            kill_tree(pid);
        }
    }
}

fn read_in(pid: i32, path: &Path) -> Vec<u8> {
    let p = format!("/proc/{pid}/root{}", path.display());
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn mounts_come_back_in_order_with_flags_files_and_propagation() {
    let dir = scratch("mnt-all");
    let d = dir.to_str().unwrap();
    let mut w = Reaped::start("mntns", &[d]);
    let before = mounts(w.root);
    let child = common::children(w.root)[0];
    let child_before = mounts(child);
    assert!(child_before.iter().any(|l| l.contains("tmpfs kst-child")));
    for what in [
        "tmpfs kst-tmp",
        "shared:0",
        "master:0",
        "unbindable",
        "devpts",
        "mqueue",
    ] {
        assert!(
            before.iter().any(|l| l.contains(what)),
            "{what} in {before:#?}"
        );
    }
    let a = dir.join("img/a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    assert!(
        mounts_mentioning(&dir).is_empty(),
        "the original's mounts died with it"
    );

    let r = Restarted::start(&a, &dir.join("img"));
    let after = mounts(r.root);
    assert_eq!(
        after, before,
        "mountinfo of the restored root, line by line"
    );
    // proc shows the restored pid namespace: the root is 1 in it.
    let status = String::from_utf8(read_in(r.root, Path::new("/proc/1/status"))).unwrap();
    assert!(status.contains("NSpid:\t1"), "{status}");
    assert_eq!(read_in(r.root, &dir.join("t/a.txt")), b"alpha");
    assert_eq!(read_in(r.root, &dir.join("t/sub/top")), b"top");
    let blob: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(
        read_in(r.root, &dir.join("b2/b.bin")),
        blob,
        "the overmounted file, through the bind made before the overmount"
    );
    let link = std::fs::read_link(format!("/proc/{}/root{}/t/link", r.root, d)).unwrap();
    assert_eq!(link, Path::new("a.txt"));
    // Nothing leaked into the test's own namespace.
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(d));

    let b = dir.join("img/b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(r.finish().code(), Some(0), "the workload's own checks");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The container case: the tree inherited / alone (it took every other
/// mount of the host away), so the restorer keeps only the root mount and
/// takes the rest of its copy away at once (`sys::mnt::keep_only_root`).
/// The restored mounts are the same, line by line, and none of the host's
/// mounts but / shows.
#[test]
fn a_tree_that_inherited_only_the_root_mount_gets_only_that_one_back() {
    let dir = scratch("mnt-rootonly");
    let d = dir.to_str().unwrap();
    let mut w = Reaped::start("mntns", &[d, "rootonly"]);
    let before = mounts(w.root);
    let host: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|m| m != "/" && m != "/proc")
        .collect();
    assert!(!host.is_empty(), "the host has mounts besides / and /proc");
    let point = |l: &String| l.split(' ').nth(1).map(String::from).unwrap_or_default();
    for m in &host {
        assert!(
            !before.iter().any(|l| &point(l) == m),
            "{m} is gone from the workload's namespace: {before:#?}"
        );
    }
    assert_eq!(
        before.iter().filter(|l| point(l) == "/").count(),
        1,
        "/ once: {before:#?}"
    );
    let a = dir.join("img/a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();

    let r = Restarted::start(&a, &dir.join("img"));
    let after = mounts(r.root);
    assert_eq!(
        after, before,
        "mountinfo of the restored root, line by line"
    );
    assert_eq!(read_in(r.root, &dir.join("t/a.txt")), b"alpha");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(d));
    let b = dir.join("img/b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(r.finish().code(), Some(0), "the workload's own checks");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unsupported_mount_is_refused_naming_it_unless_marked_external() {
    let dir = scratch("mnt-ext");
    let d = dir.to_str().unwrap();
    let ram = format!("{d}/ram");
    let mut w = Reaped::start("mntns", &[d, "ramfs"]);
    let pids = common::tree_pids(w.root);
    let a = dir.join("img/a.kst");
    let root = w.root.to_string();
    let out = common::run_kstate(
        &[
            "checkpoint",
            "-t",
            &root,
            "-o",
            a.to_str().unwrap(),
            "--leave-running",
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a ramfs mount was accepted");
    assert!(
        err.contains(&ram) && err.contains("ramfs") && err.contains("--external"),
        "{err}"
    );
    assert!(!a.exists(), "no image after a refused checkpoint");
    common::assert_running_untraced(&pids);
    // An external mark on a mount point with no mount is refused too.
    let out = common::run_kstate(
        &[
            "checkpoint",
            "-t",
            &root,
            "-o",
            a.to_str().unwrap(),
            "--leave-running",
            "--external",
            &format!("mnt[{ram}]:ram"),
            "--external",
            &format!("mnt[{d}/nothing]:x"),
        ],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nothing]: no mount there"), "{err}");
    common::assert_running_untraced(&pids);

    // Marked external, it is recorded by its key; the restart binds the
    // path given for the key there.
    let spec = format!("mnt[{ram}]:ram");
    checkpoint_ok(w.root, &a, &["--external", &spec]);
    w.wait_gone();
    std::fs::write(dir.join("host/given"), "from the host").unwrap();
    let host = format!("mnt[ram]:{d}/host");
    let r = Restarted::start_with(&a, &dir.join("img"), &["--external", &host]);
    assert_eq!(
        read_in(r.root, Path::new(&format!("{ram}/given"))),
        b"from the host"
    );
    assert_eq!(r.finish().code(), Some(0), "the workload's own checks");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_failing_while_mounting_leaves_no_process_nor_mount() {
    let dir = scratch("mnt-fail");
    let d = dir.to_str().unwrap();
    let ram = format!("{d}/ram");
    let mut w = Reaped::start("mntns", &[d, "ramfs"]);
    let a = dir.join("img/a.kst");
    checkpoint_ok(w.root, &a, &["--external", &format!("mnt[{ram}]:ram")]);
    w.wait_gone();
    // Should a restart wrongly succeed, its tree goes when the test ends.
    let pidfile = dir.join("img/pid");
    let _guard = TreeGuard(pidfile.clone());
    let pf = pidfile.to_str().unwrap();
    // No path for the key: refused before anything is made.
    let out = common::run_kstate(
        &["restart", a.to_str().unwrap(), "-d", "--pidfile", pf],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--external mnt[ram]:PATH"), "{err}");
    // A path that is not there: the bind fails after the mounts before it
    // (proc, the tmpfs mounts with their files, …) were made.
    let missing = format!("mnt[ram]:{d}/not-there");
    let out = common::run_kstate(
        &[
            "restart",
            a.to_str().unwrap(),
            "-d",
            "--pidfile",
            pf,
            "--external",
            &missing,
        ],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "restart with a missing bind source");
    assert!(err.contains(&ram) && err.contains("not-there"), "{err}");
    // kstate has exited: every task it made is gone, and with them their
    // mount namespace; no process anywhere sees a mount under the scratch
    // directory, and the test's own namespace got none.
    assert_eq!(mounts_mentioning(&dir), Vec::<String>::new());
    let restored_tmpfs = std::fs::read_dir(dir.join("t")).unwrap().count();
    assert_eq!(restored_tmpfs, 0, "the host's mount point is empty");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_open_file_on_the_trees_own_mount_is_refused_naming_it() {
    let dir = scratch("mnt-fd");
    let d = dir.to_str().unwrap();
    let w = Reaped::start("mntns", &[d, "openfd"]);
    let pids = common::tree_pids(w.root);
    let a = dir.join("img/a.kst");
    let root = w.root.to_string();
    let out = common::run_kstate(
        &["checkpoint", "-t", &root, "-o", a.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "an fd on a tmpfs of the tree was accepted"
    );
    assert!(
        err.contains(&format!("{d}/t/a.txt")) && err.contains(&format!("mount at {d}/t ")),
        "{err}"
    );
    // Refused, so not killed: the tree runs on.
    common::assert_running_untraced(&pids);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run inside a mount namespace whose mounts are all shared (as on a
/// systemd host): the restart's copy of it is made of peers of those
/// mounts, so the mounts the restored tree makes would propagate back into
/// it unless kstate first gives the inherited mounts the propagation they
/// had (private, here). The whole scenario runs in a child process
/// (`unshare -m --propagation shared`, then the test's reaper, then a shell
/// script), which prints OK when the restored tree has its mounts and the
/// restarting namespace got none of them.
#[test]
fn mounts_made_at_restart_stay_out_of_a_shared_restarting_namespace() {
    let dir = scratch("mnt-shared");
    let script = r#"
        "$BIN" "$DIR" > "$DIR/img/ready" &
        i=0
        until grep -q READY "$DIR/img/ready"; do
            i=$((i + 1)); [ $i -lt 1000 ] || { echo "no READY"; exit 1; }; sleep 0.01
        done
        root=$(awk '{print $2}' "$DIR/img/ready")
        grep -q " shared:" /proc/self/mountinfo || { echo "not shared"; exit 1; }
        "$KSTATE" checkpoint -t "$root" -o "$DIR/img/a.kst" || { echo "checkpoint failed"; exit 1; }
        wait
        "$KSTATE" restart "$DIR/img/a.kst" -d --pidfile "$DIR/img/pid" || { echo "restart failed"; exit 1; }
        r=$(cat "$DIR/img/pid")
        grep -q kst-tmp "/proc/$r/mountinfo" || { echo "restored tree without its mounts"; exit 1; }
        if grep -q "$DIR/" /proc/self/mountinfo; then
            echo "leaked:"; grep "$DIR/" /proc/self/mountinfo; kill -KILL "$r"; exit 1
        fi
        kill -TERM "$r"
        echo OK
    "#;
    let (out, err) =
        in_own_mount_namespace("shared", &dir, script, &[], "the shared-namespace scenario");
    assert!(out.trim_end().ends_with("OK"), "{out}\n{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The mounts a restart takes away from its copy of the restarting
/// process's namespace must not be taken away there too, and all of them
/// go from the copy: run in a mount namespace of the test's own, with a
/// shared tmpfs holding another mount, and two tmpfs stacked on one
/// directory, all made after the checkpoint (so the restart's copy has them
/// and the image does not), both of the tree's shapes — / its one inherited
/// mount (all else goes by one umount of the old root) and every mount
/// inherited (what is new goes by lazy umounts of its own) — leave the
/// test's namespace with all four and the restored tree with none; in a
/// namespace whose mounts are all shared, the second shape is refused
/// naming the stacked mount (the lower one cannot be made private through
/// its path, and its umount would reach the test's namespace), with
/// nothing lost.
#[test]
fn mounts_taken_away_at_restart_stay_in_the_restarting_namespace() {
    // (the restarting namespace's propagation, the tree's shape, whether
    // the restart goes ahead)
    let cases = [
        ("private", "rootonly", "ok"),
        ("private", "all", "ok"),
        ("shared", "rootonly", "ok"),
        ("shared", "all", "refused"),
    ];
    for (propagation, mode, expect) in cases {
        let case = format!("{propagation}/{mode}");
        let dir = scratch(&format!("mnt-keep-{propagation}-{mode}"));
        let script = r#"
            if [ "$MODE" = rootonly ]; then "$BIN" "$DIR" rootonly > "$DIR/img/ready" &
            else "$BIN" "$DIR" > "$DIR/img/ready" &
            fi
            i=0
            until grep -q READY "$DIR/img/ready"; do
                i=$((i + 1)); [ $i -lt 1000 ] || { echo "no READY"; exit 1; }; sleep 0.01
            done
            root=$(awk '{print $2}' "$DIR/img/ready")
            "$KSTATE" checkpoint -t "$root" -o "$DIR/img/a.kst" || { echo "checkpoint failed"; exit 1; }
            wait
            mkdir -p "$DIR/px" "$DIR/ov" && mount -t tmpfs kst-px "$DIR/px" && mount --make-shared "$DIR/px" && mkdir "$DIR/px/y" && mount -t tmpfs kst-py "$DIR/px/y" && mount -t tmpfs kst-ova "$DIR/ov" && mount -t tmpfs kst-ovb "$DIR/ov" || { echo "setup failed"; exit 1; }
            if ! "$KSTATE" restart "$DIR/img/a.kst" -d --pidfile "$DIR/img/pid" 2> "$DIR/img/err"; then
                [ "$EXPECT" = refused ] || { echo "restart failed: $(cat "$DIR/img/err")"; exit 1; }
                grep -q "another mount is stacked on it" "$DIR/img/err" || { echo "refused for another reason: $(cat "$DIR/img/err")"; exit 1; }
                for m in kst-px kst-py kst-ova kst-ovb; do
                    grep -q " $m " /proc/self/mountinfo || { echo "lost here: $m"; exit 1; }
                done
                echo OK; exit 0
            fi
            [ "$EXPECT" = ok ] || { echo "the restart was not refused"; kill -KILL "$(cat "$DIR/img/pid")"; exit 1; }
            r=$(cat "$DIR/img/pid")
            if grep -E " kst-(px|py|ova|ovb) " "/proc/$r/mountinfo"; then
                echo "the restored tree has a mount it did not have"; kill -KILL "$r"; exit 1
            fi
            for m in kst-px kst-py kst-ova kst-ovb; do
                grep -q " $m " /proc/self/mountinfo || { echo "lost here: $m"; kill -KILL "$r"; exit 1; }
            done
            kill -TERM "$r"
            echo OK
        "#;
        let env = [("MODE", mode), ("EXPECT", expect)];
        let (out, err) = in_own_mount_namespace(propagation, &dir, script, &env, &case);
        assert!(out.trim_end().ends_with("OK"), "{case}: {out}\n{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Runs `script` with `sh -c` under the test's reaper, in a mount namespace
/// of its own (`unshare -m --propagation PROPAGATION`), with BIN (the
/// mntns fixture), DIR, KSTATE and `env` set; bounded by 60 s, after which
/// the tree named by DIR/img/pid is killed and the test fails naming
/// `what`. Returns the script's standard output and error.
fn in_own_mount_namespace(
    propagation: &str,
    dir: &Path,
    script: &str,
    env: &[(&str, &str)],
    what: &str,
) -> (String, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", propagation])
        .arg(common::build_fixture("reaper"))
        .args(["sh", "-c", script])
        .env("BIN", common::build_fixture("mntns"))
        .env("DIR", dir)
        .env("KSTATE", common::kstate_bin())
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::time::Instant::now() > deadline {
            if let Some(pid) = std::fs::read_to_string(dir.join("img/pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                kill_tree(pid);
            }
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("output");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cgroup of the test's own, a child of the cgroup2 hierarchy's root;
/// when dropped, every process in it is killed (by pid) and it is removed.
struct TestCgroup(PathBuf);

impl TestCgroup {
    /// `None` when no cgroup2 hierarchy is mounted.
    fn new() -> Option<TestCgroup> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let mp = info.lines().find_map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            let dash = w.iter().position(|x| *x == "-")?;
            (w.get(dash + 1) == Some(&"cgroup2")).then(|| w[4].to_string())
        })?;
        let p = Path::new(&mp).join(format!("kstate-test-cgns-{}", std::process::id()));
        std::fs::create_dir(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        Some(TestCgroup(p))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                kill_tree(pid);
            }
            if std::fs::remove_dir(&self.0).is_ok() || std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `kstate restart IMAGE --pidfile …` run from inside cgroup `cg`, until the
/// tree runs (20 s at most).
fn restart_in_cgroup(image: &Path, scratch: &Path, cg: &TestCgroup) -> Restarted {
    use std::process::{Command, Stdio};
    let pidfile = scratch.join("cg-pid");
    let errfile = scratch.join("cg-restart-stderr");
    let mut kstate = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
        .arg(&cg.0)
        .arg(common::kstate_bin())
        .arg("restart")
        .arg(image)
        .arg("--pidfile")
        .arg(&pidfile)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&errfile).expect("stderr file"))
        .spawn()
        .expect("start kstate restart");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
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
        if std::time::Instant::now() > deadline {
            let _ = kstate.kill();
            let _ = kstate.wait();
            panic!("kstate restart did not bring the tree up within 20 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// mntns.c with a cgroup namespace of its own too (no user namespace),
/// restarted from a cgroup of the test's own: the restorers' new cgroup
/// namespace is rooted there, so they read the inherited cgroup2 mount's
/// root as `/..` where kstate read `/` at checkpoint (mountinfo shows a
/// cgroup mount's root relative to the reader's cgroup namespace). The
/// restored root's and child's mountinfo, read here, equal the originals',
/// the workload's checks pass, and a second checkpoint is diff-equal.
#[test]
fn inherited_cgroup_mounts_with_a_cgroup_namespace_of_the_trees_own() {
    let dir = scratch("mnt-cgns");
    let d = dir.to_str().unwrap();
    let Some(cg) = TestCgroup::new() else {
        eprintln!("skipped: no cgroup2 hierarchy mounted, so no cgroup mount to inherit");
        return;
    };
    let cgns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/cgroup")).unwrap();
    let mut w = Reaped::start("mntns", &[d, "cgns"]);
    let me = std::process::id() as i32;
    assert_ne!(cgns(w.root), cgns(me), "the tree's own cgroup namespace");
    let before = mounts(w.root);
    let child_before = mounts(common::children(w.root)[0]);
    assert!(
        before.iter().any(|l| l.contains("- cgroup2 ")),
        "an inherited cgroup2 mount in {before:#?}"
    );
    let a = dir.join("img/a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();

    let r = restart_in_cgroup(&a, &dir.join("img"), &cg);
    assert_ne!(cgns(r.root), cgns(me), "a cgroup namespace of its own");
    let procs = std::fs::read_to_string(cg.0.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l.trim() == r.root.to_string()),
        "the restored root runs in the test's cgroup: {procs}"
    );
    assert_eq!(mounts(r.root), before, "the restored root's mountinfo");
    assert_eq!(
        mounts(common::children(r.root)[0]),
        child_before,
        "the restored child's mountinfo"
    );
    let b = dir.join("img/b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    let (same, text) = diff(&a, &b);
    assert!(same, "second checkpoint differs:\n{text}");
    assert_eq!(r.finish().code(), Some(0), "the workload's own checks");
    drop(cg);
    let _ = std::fs::remove_dir_all(&dir);
}
