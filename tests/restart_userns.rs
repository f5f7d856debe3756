//! Restart of the tree's own user namespaces (root). The workloads of the
//! restart tests run under `fixtures/userns_run.c`: inside fresh user (map
//! 0 -> 100000, 65536 ids), pid, uts, ipc, mnt and time namespaces, as uid
//! and gid 1000 of the new user namespace. After restart they pass their
//! own checks (and the namespace init its own: pid 1, hostname, uid 0 inside,
//! uid_map, msgmax), the ids read from the host are the same, and a second
//! checkpoint equals the first under `kstate diff`.

mod common;
mod support;

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

/// Taken for reading by every test, for writing by the one that checks no
/// namespace of a failed restart is held (see there).
static NS_CHECK: std::sync::RwLock<()> = std::sync::RwLock::new(());

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

/// The init's uid_map, and each other task's Uid and Gid lines and NSpid
/// below the outermost level.
type HostView = (String, Vec<(Option<String>, Option<String>, Vec<i32>)>);

/// What the host sees of a tree under userns_run: the init's uid_map and
/// the ids of its children (the workload), with their NSpid.
fn host_view(root: i32) -> HostView {
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

/// Waits until every task of the tree has its fds 0, 1 and 2 on /dev/null
/// (the workloads do it right after READY), so no pipe of the test's is
/// checkpointed.
fn wait_quiet(root: i32) {
    common::wait_for(
        Duration::from_secs(5),
        "the workload to leave the test's pipes",
        || {
            common::tree_pids(root).iter().all(|p| {
                (0..3).all(|fd| {
                    std::fs::read_link(format!("/proc/{p}/fd/{fd}"))
                        .is_ok_and(|l| l == Path::new("/dev/null"))
                })
            })
        },
    );
}

fn signal_pending(pid: i32, sig: i32) -> bool {
    let bit = 1u64 << (sig - 1);
    ["SigPnd", "ShdPnd"].iter().any(|f| {
        common::proc_status_field(pid, f)
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|m| m & bit != 0)
    })
}

/// Starts `userns_run 1000 1000 WORKLOAD ARGS…`.
fn start(deny: bool, workload: &str, args: &[&str]) -> Reaped {
    start_with(deny, false, workload, args)
}

/// [`start`], with `proc`: a proc of the new pid namespace on /proc.
fn start_with(deny: bool, proc: bool, workload: &str, args: &[&str]) -> Reaped {
    let bin = common::build_fixture(workload);
    let mut all = Vec::new();
    if deny {
        all.push("-deny");
    }
    if proc {
        all.push("-proc");
    }
    all.extend(["1000", "1000", bin.to_str().unwrap()]);
    all.extend_from_slice(args);
    Reaped::start("userns_run", &all)
}

/// Checkpoint, restart, compare what the host sees, checkpoint again and
/// diff, then SIGTERM: the workload's check and the init's.
fn round_trip(dir: &Path, mut w: Reaped, during: impl Fn(&Restarted)) -> HostView {
    let before = host_view(w.root);
    assert_eq!(before.0, "0 100000 65536", "the workload's uid_map");
    assert!(
        before
            .1
            .iter()
            .all(|t| t.0.as_deref()
                == Some(&format!("{HOST_ID}\t{HOST_ID}\t{HOST_ID}\t{HOST_ID}")[..])),
        "the workload runs as uid 1000 inside, {HOST_ID} on the host: {:?}",
        before.1
    );
    wait_quiet(w.root);
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let r = Restarted::start(&a, dir);
    let after = host_view(r.root);
    assert_eq!(after, before, "uid_map, ids and NSpid after restart");
    let me = std::process::id() as i32;
    for name in ["user", "pid", "uts", "ipc", "mnt"] {
        assert_ne!(
            ns(r.root, name),
            ns(me, name),
            "{name} namespace of its own"
        );
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
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
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

/// 64 MiB of memory checksummed, in a user namespace that denies
/// setgroups (the tasks keep the groups they were born with).
#[test]
fn memory_checksum_in_a_setgroups_deny_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-mem");
    let w = start(true, "memcheck", &["64"]);
    round_trip(&dir, w, |r| {
        assert_eq!(
            read(format!("/proc/{}/setgroups", r.root)).trim(),
            "deny",
            "setgroups of the restored user namespace"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A handler, blocked pending signals (one thread-directed, two queued).
#[test]
fn signals_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-sig");
    let w = start(false, "sigpend", &[]);
    round_trip(&dir, w, |r| {
        let task = common::children(r.root)[0];
        assert!(signal_pending(task, libc::SIGUSR2), "SIGUSR2 pending");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(task),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .expect("send SIGUSR1");
        common::wait_for(Duration::from_secs(5), "the SIGUSR1 handler to run", || {
            !signal_pending(task, libc::SIGUSR1)
        });
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two tasks (3 with the init) talking through pipes with bytes in flight.
#[test]
fn pipe_pair_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-pipe");
    let w = start(false, "pipepair", &[]);
    std::thread::sleep(Duration::from_millis(100));
    let after = round_trip(&dir, w, |_| std::thread::sleep(Duration::from_millis(300)));
    assert_eq!(after.1.len(), 2, "the pair under the init: {after:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asleep in nanosleep (interrupted by the checkpoint, EINTR after).
#[test]
fn asleep_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-sleep");
    let w = start(false, "sleeper", &["nanosleep"]);
    std::thread::sleep(Duration::from_millis(50));
    round_trip(&dir, w, |_| std::thread::sleep(Duration::from_millis(100)));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file opened twice at offsets by uid 1000 of the namespace.
#[test]
fn file_offsets_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-fileoff");
    let file = workload_file(&dir, "data");
    let w = start(false, "fileoff", &[file.to_str().unwrap()]);
    round_trip(&dir, w, |_| {});
    let _ = std::fs::remove_dir_all(&dir);
}

/// The counter under userns_run, checkpointed and killed: (dir, image).
fn counter_image(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let out = workload_file(&dir, "count.txt");
    let mut w = start(false, "counter", &[out.to_str().unwrap()]);
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    (dir, a)
}

/// Every "type:[inode]" namespace link any process holds, as ns links or
/// open descriptors.
fn all_ns_links() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        for sub in ["ns", "fd"] {
            let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/{sub}")) else {
                continue;
            };
            for l in dir.flatten() {
                if let Ok(t) = std::fs::read_link(l.path()) {
                    out.push((pid, t.to_string_lossy().into_owned()));
                }
            }
        }
    }
    out
}

#[test]
fn a_user_map_the_kernel_refuses_leaves_nothing_behind() {
    // Alone: it looks for its namespaces by inode number, which the
    // kernel hands out again at once to namespaces other tests make.
    let _alone = NS_CHECK.write().unwrap_or_else(|e| e.into_inner());
    use kstate::image::format::{IdExtent, UserNsRecord};
    use kstate::image::Kind;
    let (dir, a) = counter_image("userns-refused");
    // The tree's user namespace is the second (the first is the host's).
    let mut img = std::fs::read(&a).unwrap();
    let id = support::nth_of_kind(&img, Kind::UserNs, 1);
    let fixed = std::mem::size_of::<UserNsRecord>();
    let ext = std::mem::size_of::<IdExtent>();
    // gid_map (after the one uid_map extent): 4294900000 100000 70000 maps
    // every gid of the tree, but first + count wraps: the kernel says EINVAL.
    let mut bad = Vec::new();
    for v in [4_294_900_000u32, 100_000, 70_000] {
        bad.extend_from_slice(&v.to_le_bytes());
    }
    support::patch_payload(&mut img, id, fixed + ext, &bad);
    let b = dir.join("bad.kst");
    std::fs::write(&b, &img).unwrap();

    let pause = dir.join("pause");
    std::fs::create_dir_all(&pause).unwrap();
    let errfile = dir.join("stderr");
    let mut kstate = std::process::Command::new(common::kstate_bin())
        .arg("restart")
        .arg(&b)
        .env("KSTATE_TEST_PAUSE_AT", "userns-maps,before-exit")
        .env("KSTATE_TEST_PAUSE_DIR", &pause)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errfile).unwrap())
        .spawn()
        .expect("start kstate restart");
    struct Guard<'a>(&'a mut std::process::Child);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                for p in common::tree_pids(self.0.id() as i32).iter().rev() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let _ = self.0.wait();
            }
        }
    }
    let g = Guard(&mut kstate);
    let kpid = g.0.id() as i32;
    let at = |point: &str| {
        let p = pause.join(point);
        common::wait_for(Duration::from_secs(20), point, || p.exists());
    };
    // The task is made with its namespaces; its maps are not written yet.
    at("userns-maps");
    let made = common::children(kpid);
    assert_eq!(made.len(), 1, "the root task, in its new namespaces");
    let me = std::process::id() as i32;
    let mut links = Vec::new();
    for name in ["user", "pid_for_children", "uts", "ipc", "mnt"] {
        let l = ns(made[0], name);
        assert_ne!(l, ns(me, name), "{name} is new");
        links.push(l);
    }
    std::fs::write(pause.join("userns-maps.go"), b"").unwrap();
    at("before-exit");
    let left: Vec<i32> = common::tree_pids(kpid).into_iter().skip(1).collect();
    assert!(
        left.is_empty(),
        "kstate's descendants when exiting: {left:?}"
    );
    // Nothing holds the namespaces made, kstate included while it still
    // runs: no process uses them, no descriptor points at them.
    let held = |when: &str| {
        let held: Vec<(i32, String)> = all_ns_links()
            .into_iter()
            .filter(|(_, l)| links.contains(l))
            .collect();
        assert!(held.is_empty(), "namespaces still held {when}: {held:?}");
    };
    held("before kstate exits");
    std::fs::write(pause.join("before-exit.go"), b"").unwrap();
    let st = {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = g.0.try_wait() {
                break st;
            }
            assert!(std::time::Instant::now() < deadline, "kstate did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let err = std::fs::read_to_string(&errfile).unwrap_or_default();
    assert!(!st.success(), "restart succeeded?\n{err}");
    assert!(
        err.contains("gid_map") && err.contains("4294900000 100000 70000"),
        "the error names the map: {err}"
    );
    assert!(!Path::new(&format!("/proc/{}", made[0])).exists());
    held("after kstate exited");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The records of an image but its mappings and extents, as `kstate show
/// --json` gives them, without the fields `kstate diff` lets change.
fn records_but_memory(image: &Path) -> Vec<serde_json::Value> {
    let out = common::run_kstate(
        &["show", "--json", image.to_str().unwrap()],
        Duration::from_secs(30),
    );
    let json = common::stdout_json(&out);
    let mut objs = json["objects"].as_array().cloned().unwrap_or_default();
    objs.retain(|o| o["kind"] != "vma" && o["kind"] != "extent");
    for o in &mut objs {
        let Some(m) = o.as_object_mut() else { continue };
        for k in [
            "id",
            "dev",
            "ino",
            "regs",
            "itimers",
            "in_syscall",
            "pid",
            "ppid",
        ] {
            m.remove(k);
        }
        for k in ["nspid", "nstgid", "nspgid", "nssid"] {
            if let Some(v) = m.get_mut(k).and_then(|v| v.as_array_mut()) {
                v.remove(0);
            }
        }
        if let Some(t) = m.get_mut("threads").and_then(|v| v.as_array_mut()) {
            for th in t.iter_mut().filter_map(|v| v.as_array_mut()) {
                th.remove(0);
            }
        }
    }
    objs
}

/// fixtures/nstree.c: 7 tasks over 3 nested pid namespaces and two nested
/// user namespaces (the inner one's tasks have pids in pid namespaces owned
/// by the outer one, which clone3 cannot choose from inside the inner one:
/// those tasks are born in the outer one and enter theirs when restored).
/// After restart: the same pids at every level of the tree's own, the same
/// ids seen from the host, the maps, the hostname, every task in the user
/// namespace it had (the same pattern of sharing), and a second checkpoint
/// equal to the first.
#[test]
fn nested_user_namespaces_come_back() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-nested");
    let w = common::start_nstree();
    let view = |root: i32| {
        common::tree_pids(root)
            .into_iter()
            .map(|p| {
                (
                    common::nspid(p)[1..].to_vec(),
                    common::proc_status_field(p, "Uid"),
                    common::proc_status_field(p, "Gid"),
                    read(format!("/proc/{p}/uid_map")),
                    read(format!("/proc/{p}/gid_map")),
                    read(format!("/proc/{p}/setgroups")),
                )
            })
            .collect::<Vec<_>>()
    };
    // Which tasks share a user namespace: the index of the first task of
    // each one's namespace.
    let sharing = |root: i32| {
        let users: Vec<String> = common::tree_pids(root)
            .into_iter()
            .map(|p| ns(p, "user"))
            .collect();
        users
            .iter()
            .map(|u| users.iter().position(|v| v == u).unwrap())
            .collect::<Vec<_>>()
    };
    let before = view(w.root);
    let shared = sharing(w.root);
    assert_eq!(before.len(), 7);
    assert_eq!(
        shared,
        [0, 0, 2, 2, 2, 2, 2],
        "nstree's two user namespaces"
    );
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    drop(w);
    let r = Restarted::start(&a, &dir);
    assert_eq!(
        view(r.root),
        before,
        "NSpid, ids, maps and setgroups task by task"
    );
    assert_eq!(
        sharing(r.root),
        shared,
        "user namespaces shared as they were"
    );
    let me = std::process::id() as i32;
    assert_ne!(ns(r.root, "user"), ns(me, "user"));
    let b = dir.join("b.kst");
    checkpoint_ok(r.root, &b, &["--leave-running"]);
    // Known, not of user namespaces: nstree's tasks have adjacent anonymous
    // mappings the kernel kept apart (one inherited over fork, one their
    // own); mapped again at restart they merge, which shifts the mapping
    // records (vma restore, src/objects/vma.rs), so `kstate diff`, which
    // goes record by record, differs from there on. Every other record is
    // compared here instead, field by field, but for what diff also lets
    // change (identities, registers, timers, the outermost pids).
    let (same, text) = diff(&a, &b);
    if !same {
        let (x, y) = (records_but_memory(&a), records_but_memory(&b));
        assert_eq!(x.len(), y.len(), "record counts");
        for (x, y) in x.iter().zip(&y) {
            assert_eq!(x, y, "second checkpoint differs (kstate diff:\n{text})");
        }
    }
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A process of the test's in a new user namespace (fixtures/nsholder.c,
/// identity map on 0..65536), killed when the guard goes; and its pid.
fn user_holder() -> (Kill, i32) {
    let bin = common::build_fixture("nsholder");
    let mut holder = std::process::Command::new(bin)
        .arg("user")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start nsholder");
    let out = holder.stdout.take().expect("stdout");
    let holder = Kill(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    let hpid: i32 = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("nsholder did not start: {line:?}"));
    (holder, hpid)
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--join-ns user` with a tree that has user namespaces of its own is
/// refused before anything is made.
#[test]
fn join_user_namespace_refused_for_a_tree_with_its_own() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let (dir, a) = counter_image("userns-join-refused");
    let (_holder, hpid) = user_holder();
    let join = format!("user:{hpid}");
    let out = common::run_kstate(
        &["restart", a.to_str().unwrap(), "--join-ns", &join],
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("user namespace of the tree's own"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--join-ns user:PID` for a task that is not root: it enters the joined
/// namespace before its credentials are cut back (after them it could not),
/// and gets them all back there (fixtures/creds.c checks uids, gids, groups,
/// the five capability sets, securebits and no_new_privs itself). The
/// holder's map is the identity on 0..65536, so the host sees the same.
#[test]
fn join_user_namespace_as_a_task_that_is_not_root() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-join-creds");
    let (holder, hpid) = user_holder();
    let fields = [
        "Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
    ];
    let creds = |pid: i32| -> Vec<Option<String>> {
        fields
            .iter()
            .map(|f| common::proc_status_field(pid, f))
            .collect()
    };
    let mut w = Reaped::start("creds", &[]);
    wait_quiet(w.root);
    let before = creds(w.root);
    let a = dir.join("a.kst");
    checkpoint_ok(w.root, &a, &[]);
    w.wait_gone();
    let join = format!("user:{hpid}");
    let r = Restarted::start_with(&a, &dir, &["--join-ns", &join]);
    assert_eq!(
        ns(r.root, "user"),
        ns(hpid, "user"),
        "in the joined namespace"
    );
    assert_eq!(creds(r.root), before, "credentials as seen from the host");
    assert_eq!(r.finish().code(), Some(0), "the workload's own check");
    drop(holder);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A private file mapping the workload (uid 1000 inside) wrote to.
#[test]
fn private_file_mapping_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-filemap");
    let file = workload_file(&dir, "data");
    let w = start(false, "filemap", &[file.to_str().unwrap()]);
    round_trip(&dir, w, |_| {});
    let _ = std::fs::remove_dir_all(&dir);
}

/// AVX (AVX-512 where the CPU has it) registers across the restart, in a
/// user namespace.
#[test]
fn avx_registers_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-avx");
    let w = start(false, "avx", &[]);
    round_trip(&dir, w, |_| {});
    let _ = std::fs::remove_dir_all(&dir);
}

/// The 50-task tree with its groups and sessions, as uid 1000 of a user
/// namespace, under the namespace's init; it checks itself through a proc of
/// its pid namespace (which the restart mounts again).
#[test]
fn tree_of_50_in_a_user_namespace() {
    let _shared = NS_CHECK.read().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("userns-tree50");
    let log = workload_file(&dir, "tree50.log");
    let w = start_with(false, true, "tree50", &[log.to_str().unwrap()]);
    let view = round_trip(&dir, w, |_| {});
    assert_eq!(view.1.len(), 50, "the 50 tasks: {:?}", view.1);
    let _ = std::fs::remove_dir_all(&dir);
}
