//! Restart of a 10-process tree in 5 namespaces of its own (pid, uts, ipc,
//! net, mnt): kstate beside CRIU and beside the kernel's floor, in the same
//! run (issue 4).
//!
//! The workload (`bench/workloads/ns10.c`, built here with `cc -O2` into
//! `CARGO_TARGET_TMPDIR`) runs under `fixtures/reaper.c` (a subreaper of our
//! own, so a killed tree's pids are free again at once). Its root R is pid 1
//! of a new pid namespace, in new uts (hostname `ns10-bench`), ipc, net and
//! mnt namespaces; R keeps only "/" and a proc of its own in its mount
//! namespace, execs itself again there (so its mappings are on the new
//! namespace's mounts, which CRIU needs), and forks 3 children with 2
//! children each: 10 tasks, no descriptors.
//!
//! A round of an engine: start the workload, checkpoint it (timed too, shown
//! for information: `kstate checkpoint -t R -o IMAGE`, `criu dump -t R -D
//! DIR --network-lock skip`; both kill the tree), wait until every task is
//! reaped, then time the restart from its fork until it returns, under
//! `bench/workloads/reaprun.c` (`kstate restart IMAGE -d --pidfile F`;
//! `criu restore -D DIR -d -S --root / --network-lock skip --pidfile F`),
//! check that the tree runs again (10 tasks, none stopped; the root is pid 1
//! of its pid namespace; the same tree of inner pids as before the
//! checkpoint; the root's pid, uts, ipc, net and mnt namespaces are not ours
//! and every task shares them; the hostname is back), and kill it.
//!
//! The kernel's floor is timed the same way: `ns10 --floor PIDFILE` under
//! reaprun does `unshare` of the same 5 namespaces, the fork that makes the
//! pid namespace's init, and 9 more forks into the same shape of tree, until
//! all 10 have reported in; it leaves the tree running as a detached restart
//! does, and the same checks (but the inner pids and the hostname) are made.
//!
//! CRIU runs twice: as it is here (no kernel-probe cache: CRIU keeps
//! `/run/criu.kdat` only on a tmpfs, and /run is not one on this machine),
//! and with its cache, run through `nsenter -m` in a mount namespace of our
//! own whose /run is a tmpfs (the host's /run is not touched).
//!
//! One untimed warm-up round, then `KSTATE_BENCH_REPS` (default 7) rounds;
//! within a round the floor, kstate and CRIU (both ways) run one after the
//! other, so a change of load falls on all rows alike. Medians are shown.
//!
//! A per-phase hint follows: one more kstate restart with
//! `RUST_LOG=kstate::kstate::restart=debug` under `workloads/phaserun.c`
//! (env_logger's µs timestamps against the wall-clock time of the fork), and
//! one more CRIU restore each way with `-v4` (its log has timestamps from
//! its start); both are a little slower than the timed rounds.
//!
//! Run with `cargo bench --bench ns_restart` (as root); `CRIU=/path/to/criu`
//! names the CRIU to run beside kstate (else `criu` on PATH if `criu check`
//! passes). `KSTATE_CKPT_ARGS` / `KSTATE_RESTART_ARGS` add arguments to
//! kstate's command lines (split at whitespace).

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    bench_dirs, build_c, checkpoint_cmd, env_count, find_criu, first_line, fmt_med, med_ms, ms,
    range, read_pidfile, run_detached, run_timed, spawn_guarded, status_field, tree_pids,
    wait_running, Guarded, READY_TIMEOUT,
};

/// Timed rounds per row (`KSTATE_BENCH_REPS` overrides).
const DEFAULT_REPS: usize = 7;
/// Tasks in the tree (1 + 3 + 3×2).
const TASKS: usize = 10;
/// The namespaces the workload makes, as /proc/PID/ns names.
const NAMESPACES: [&str; 5] = ["pid", "uts", "ipc", "net", "mnt"];
const HOSTNAME: &str = "ns10-bench";

// ---------------------------------------------------------------- helpers

/// Extra arguments for kstate from the environment (split at whitespace),
/// e.g. `KSTATE_CKPT_ARGS="--external ..."` should a later kstate need an
/// option for this workload.
fn extra_args(name: &str) -> Vec<String> {
    std::env::var(name)
        .map(|v| v.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// The innermost pid of a task (the last NSpid entry).
fn inner_pid(pid: i32) -> Option<i32> {
    status_field(pid, "NSpid")?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// What /proc/PID/ns/NAME points at.
fn ns_link(pid: &str, name: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

struct Bins {
    kstate: PathBuf,
    reaper: PathBuf,
    reaprun: PathBuf,
    phaserun: PathBuf,
    ns10: PathBuf,
}

/// The tree under `root` as (inner pid, inner pid of its parent), sorted;
/// the root's parent is 0.
fn inner_shape(root: i32) -> Result<Vec<(i32, i32)>, String> {
    let mut out = Vec::new();
    for p in tree_pids(root) {
        let me = inner_pid(p).ok_or(format!("task {p}: no NSpid"))?;
        let parent = if p == root {
            0
        } else {
            let pp: i32 = status_field(p, "PPid")
                .and_then(|s| s.parse().ok())
                .ok_or(format!("task {p}: no PPid"))?;
            inner_pid(pp).ok_or(format!("task {pp}: no NSpid"))?
        };
        out.push((me, parent));
    }
    out.sort_unstable();
    Ok(out)
}

/// The host name in the uts namespace of `pid` (read through nsenter).
fn hostname_of(pid: i32) -> Result<String, String> {
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args(["-u", "cat", "/proc/sys/kernel/hostname"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("nsenter: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nsenter -t {pid} -u: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// What the checks compare against: the workload before its checkpoint.
struct Expect {
    shape: Vec<(i32, i32)>,
    hostname: &'static str,
}

/// Checks that the tree of `root` runs in namespaces of its own: TASKS
/// tasks, none stopped, traced or dead; the root pid 1 of its pid namespace;
/// the root's pid, uts, ipc, net and mnt namespaces unlike ours and shared
/// by every task; with `expect`, the same tree of inner pids and the host
/// name. Returns what the root sees beyond that: its mounts, and whether its
/// time namespace is a new one.
fn check_running(root: i32, expect: Option<&Expect>) -> Result<Seen, String> {
    let pids = wait_running(root, TASKS, "tree")?;
    if inner_pid(root) != Some(1) {
        return Err(format!(
            "root {root} is not pid 1 of its pid namespace (NSpid {:?})",
            status_field(root, "NSpid")
        ));
    }
    for name in NAMESPACES {
        let theirs = ns_link(&root.to_string(), name);
        if theirs.is_none() || theirs == ns_link("self", name) {
            return Err(format!(
                "root {root}: {name} namespace is ours ({theirs:?})"
            ));
        }
        for &p in &pids {
            if ns_link(&p.to_string(), name) != theirs {
                return Err(format!("task {p}: {name} namespace is not the root's"));
            }
        }
    }
    if let Some(e) = expect {
        let shape = inner_shape(root)?;
        if shape != e.shape {
            return Err(format!(
                "inner pids (pid, parent) are {shape:?}, were {:?}",
                e.shape
            ));
        }
        let h = hostname_of(root)?;
        if h != e.hostname {
            return Err(format!("hostname is {h:?}, was {:?}", e.hostname));
        }
    }
    Ok(Seen {
        mounts: std::fs::read_to_string(format!("/proc/{root}/mountinfo"))
            .map(|s| s.lines().count())
            .unwrap_or(0),
        new_time: ns_link(&root.to_string(), "time") != ns_link("self", "time"),
    })
}

/// What a tree's root sees beyond what the checks require.
#[derive(Clone, Copy)]
struct Seen {
    mounts: usize,
    new_time: bool,
}

// ---------------------------------------------------------------- engines

/// How CRIU is run: the program, and the arguments before CRIU's own (the
/// variant with its kernel-probe cache runs it through nsenter).
struct Criu {
    prog: PathBuf,
    prefix: Vec<String>,
}

impl Criu {
    fn command(&self) -> Command {
        let mut c = Command::new(&self.prog);
        c.args(&self.prefix);
        c
    }
}

/// A process in a mount namespace of its own whose /run is a tmpfs: CRIU
/// run in that namespace (`nsenter -t PID -m`) keeps its kernel-probe cache
/// (`/run/criu.kdat`, kept only on a tmpfs), as on a host with a tmpfs /run.
/// The host's /run is not touched.
fn kdat_holder() -> Result<Guarded, String> {
    let (g, out) = spawn_guarded(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs ns_restart-kdat /run && echo READY && exec sleep 1000000")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit()),
        "kdat holder",
    )
    .map_err(|e| format!("unshare: {e}"))?;
    match first_line(out, READY_TIMEOUT) {
        Some(l) if l.trim() == "READY" => Ok(g),
        l => Err(format!("the mount namespace for CRIU's cache: {l:?}")),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Kstate,
    Criu,
}

#[derive(Default)]
struct EngineRun {
    ckpt: Vec<Duration>,
    restore: Vec<Duration>,
    /// What the restored root sees (first round).
    seen: Option<Seen>,
    /// What the workload's root saw before its checkpoint.
    seen_before: Option<Seen>,
    errors: Vec<String>,
}

/// The workload under the reaper: its guard and R's host pid.
fn start_workload(bins: &Bins) -> Result<(Guarded, i32), String> {
    common::start_workload(&bins.reaper, &bins.ns10, &[], "ns10").map(|(g, root, _)| (g, root))
}

/// The restart command line of `engine` for the image at `img`.
fn restart_args(engine: Engine, img: &str, pidfile: &str, verbose: bool) -> Vec<String> {
    let mut a: Vec<String> = match engine {
        Engine::Kstate => vec!["restart", img, "-d", "--pidfile", pidfile],
        // `-S` (`--restore-sibling`): the root becomes a child of reaprun,
        // CRIU's caller, as kstate's root does, instead of CRIU's own.
        // `--root /`: CRIU requires a root to restore a mount namespace (it
        // bind-mounts it as the namespace's "/"); the workload's root mount
        // is the host's "/". `--network-lock skip`: see `dump_args`.
        Engine::Criu => vec![
            "restore",
            "-D",
            img,
            "-d",
            "-S",
            "--root",
            "/",
            "--network-lock",
            "skip",
            "--pidfile",
            pidfile,
            "-o",
            "restore.log",
        ],
    }
    .into_iter()
    .map(String::from)
    .collect();
    match engine {
        Engine::Kstate => a.extend(extra_args("KSTATE_RESTART_ARGS")),
        Engine::Criu if verbose => a.push("-v4".into()),
        Engine::Criu => {}
    }
    a
}

/// One engine's round (`warm`: the untimed warm-up, whose times and
/// errors are kept apart). After three failures and no success the engine
/// is given up.
fn engine_round(
    engine: Engine,
    criu: Option<&Criu>,
    bins: &Bins,
    dir: &Path,
    run: &mut EngineRun,
    rep: Option<usize>,
) {
    if run.errors.len() >= 3 && run.restore.is_empty() {
        return;
    }
    let Some(rep) = rep else {
        // Warm-up (page cache, the binaries, the first network namespace
        // of the run): its times are dropped, what the root sees is kept.
        let mut warm = EngineRun::default();
        if let Err(e) = round(engine, criu, bins, dir, &mut warm) {
            eprintln!("  warm-up round: {e}");
            run.errors.push(format!("warm-up round: {e}"));
        }
        run.seen = warm.seen;
        run.seen_before = warm.seen_before;
        return;
    };
    if let Err(e) = round(engine, criu, bins, dir, run) {
        eprintln!("  round {rep}: {e}");
        run.errors.push(format!("round {rep}: {e}"));
    }
}

/// Starts the workload and checkpoints it with `engine` into `img`; returns
/// what the checks will compare against.
fn checkpoint(
    engine: Engine,
    criu: Option<&Criu>,
    bins: &Bins,
    dir: &Path,
    img: &Path,
    run: &mut EngineRun,
) -> Result<Expect, String> {
    let _ = std::fs::remove_file(img);
    let _ = std::fs::remove_dir_all(img);
    let (mut g, root) = start_workload(bins)?;
    let before = check_running(root, None).map_err(|e| format!("workload: {e}"))?;
    run.seen_before.get_or_insert(before);
    let expect = Expect {
        shape: inner_shape(root)?,
        hostname: HOSTNAME,
    };
    let t = match engine {
        Engine::Kstate => run_timed(
            checkpoint_cmd(&bins.kstate, root, img).args(extra_args("KSTATE_CKPT_ARGS")),
            dir,
        ),
        Engine::Criu => {
            std::fs::create_dir_all(img).map_err(|e| format!("mkdir {}: {e}", img.display()))?;
            // `--network-lock skip`: CRIU locks a net namespace's traffic
            // with iptables-restore by default, and there is none here (nor
            // traffic in this namespace); kstate locks nothing either.
            run_timed(
                criu.expect("criu")
                    .command()
                    .arg("dump")
                    .arg("-t")
                    .arg(root.to_string())
                    .arg("-D")
                    .arg(img)
                    .args(["--network-lock", "skip", "-o", "dump.log"]),
                dir,
            )
        }
    }
    .map_err(|e| format!("checkpoint failed: {e}"))?;
    run.ckpt.push(t);
    // Every task must be gone and reaped before the pids can be used again.
    g.wait_gone()?;
    Ok(expect)
}

fn round(
    engine: Engine,
    criu: Option<&Criu>,
    bins: &Bins,
    dir: &Path,
    run: &mut EngineRun,
) -> Result<(), String> {
    let img = match engine {
        Engine::Kstate => dir.join("image.kst"),
        Engine::Criu => dir.join("criu-img"),
    };
    let expect = checkpoint(engine, criu, bins, dir, &img, run)?;
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut args = restart_args(
        engine,
        img.to_str().expect("utf-8"),
        pidfile.to_str().expect("utf-8"),
        false,
    );
    let prog = match (engine, criu) {
        (Engine::Criu, Some(c)) => {
            args.splice(0..0, c.prefix.iter().cloned());
            c.prog.as_path()
        }
        _ => bins.kstate.as_path(),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = run_detached(&bins.reaprun, prog, &args, dir, None)
        .map_err(|e| format!("restart failed: {e}"))?;
    let root = read_pidfile(&pidfile)?;
    let seen = check_running(root, Some(&expect))?;
    run.seen.get_or_insert(seen);
    run.restore.push(d.time);
    d.g.kill_below();
    d.g.wait_gone()?;
    Ok(())
}

/// The floor, `ns10 --floor PIDFILE` under reaprun: the times from fork to
/// exit, and the program's own split (unshare, fork of the tree).
struct Floor {
    total: Vec<Duration>,
    unshare: Vec<Duration>,
    forks: Vec<Duration>,
    errors: Vec<String>,
}

fn floor_round(bins: &Bins, dir: &Path, f: &mut Floor, timed: bool) -> Result<(), String> {
    let pidfile = dir.join("floor.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut d = run_detached(
        &bins.reaprun,
        &bins.ns10,
        &["--floor", pidfile.to_str().expect("utf-8")],
        dir,
        None,
    )?;
    let root = read_pidfile(&pidfile)?;
    check_running(root, None)?;
    let split: Vec<u64> = d
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("FLOOR "))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if timed {
        f.total.push(d.time);
        if let [u, k] = split[..] {
            f.unshare.push(Duration::from_nanos(u));
            f.forks.push(Duration::from_nanos(k));
        }
    }
    d.g.kill_below();
    d.g.wait_gone()?;
    Ok(())
}

fn floor_step(bins: &Bins, dir: &Path, f: &mut Floor, rep: Option<usize>) {
    if let Err(e) = floor_round(bins, dir, f, rep.is_some()) {
        let what = rep.map_or("warm-up round".into(), |r| format!("round {r}"));
        eprintln!("  floor {what}: {e}");
        f.errors.push(format!("{what}: {e}"));
    }
}

/// Wall time of a bare `kstate --help` spawned from here (it prints to
/// stdout, so it cannot run under reaprun, whose first line we read).
fn spawn_floor(bins: &Bins, reps: usize, dir: &Path) -> Vec<Duration> {
    (0..reps)
        .filter_map(|_| run_timed(Command::new(&bins.kstate).arg("--help"), dir).ok())
        .collect()
}

// ---------------------------------------------------------------- phases

/// Microseconds since the epoch of an env_logger line
/// (`[2026-11-25T12:34:01.903585Z LEVEL target] message`), and the message.
fn log_line(l: &str) -> Option<(i64, &str)> {
    let rest = l.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once(' ')?;
    let msg = rest.split_once("] ")?.1;
    // YYYY-MM-DDTHH:MM:SS.ffffffZ; only the time of day is used, so a run
    // across midnight would show nonsense (and say so by a negative phase).
    let t = stamp.split_once('T')?.1.strip_suffix('Z')?;
    let (hms, frac) = t.split_once('.')?;
    let mut it = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (it.next()??, it.next()??, it.next()??);
    let us: i64 = frac.get(..6)?.parse().ok()?;
    Some(((h * 3600 + m * 60 + s) * 1_000_000 + us, msg))
}

/// One kstate restart with the restart module's debug log, cut into
/// phases at its log lines.
fn kstate_phases(bins: &Bins, dir: &Path) -> Result<Vec<String>, String> {
    let img = dir.join("image.kst");
    let mut run = EngineRun::default();
    let expect = checkpoint(Engine::Kstate, None, bins, dir, &img, &mut run)?;
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    let args = restart_args(
        Engine::Kstate,
        img.to_str().expect("utf-8"),
        pidfile.to_str().expect("utf-8"),
        false,
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = run_detached(
        &bins.phaserun,
        &bins.kstate,
        &args,
        dir,
        Some("kstate::kstate::restart=debug"),
    )?;
    check_running(read_pidfile(&pidfile)?, Some(&expect))?;
    d.g.kill_below();
    d.g.wait_gone()?;
    let t0 = d.forked_at.ok_or("phaserun gave no time of its fork")? / 1000 % (86_400 * 1_000_000);
    let end = d.time.as_micros() as i64;
    let lines: Vec<(i64, &str)> = d
        .stderr
        .lines()
        .filter_map(log_line)
        .map(|(t, m)| (t - t0, m))
        .collect();
    let find = |pat: &dyn Fn(&str) -> bool, last: bool| {
        let mut it = lines.iter().filter(|(_, m)| pat(m));
        if last {
            it.next_back().map(|(t, _)| *t)
        } else {
            it.next().map(|(t, _)| *t)
        }
    };
    let is_task = |m: &str| {
        m.strip_prefix("restore: task ")
            .is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit()))
    };
    let checks = find(&|m| m.starts_with("restart: checks passed"), false);
    let first_task = find(&is_task, false);
    let last_ready = find(
        &|m| m.starts_with("restore: task ") && m.ends_with(" ready"),
        true,
    );
    let running = find(&|m| m.contains("tasks running"), true);
    let mut out = vec![format!(
        "kstate restart -d with RUST_LOG=kstate::kstate::restart=debug: {:.1} ms in all \
         (from the fork; the log adds a little)",
        end as f64 / 1e3
    )];
    let span = |a: i64, b: i64| format!("{:>7.1} ms", (b - a) as f64 / 1e3);
    match (checks, first_task, last_ready, running) {
        (Some(c), Some(f), Some(r), Some(n)) => {
            let restored = lines.iter().filter(|(_, m)| is_task(m)).count();
            out.push(format!(
                "  {}  exec, read + validate the image, plan, pre-flight checks",
                span(0, c)
            ));
            out.push(format!(
                "  {}  create the tasks in their new namespaces (clone3 + set_tid), wait until all are up, seize them",
                span(c, f)
            ));
            out.push(format!(
                "  {}  restore {restored} tasks (memory, registers, the rest), {:.2} ms per task",
                span(f, r),
                (r - f) as f64 / 1e3 / restored.max(1) as f64
            ));
            out.push(format!("  {}  detach, pidfile", span(r, n)));
            out.push(format!("  {}  exit", span(n, end)));
        }
        _ => {
            out.push(
                "  (the expected log lines were not all there; the restart module's log, from the fork:)"
                    .into(),
            );
            for (t, m) in lines.iter().take(40) {
                out.push(format!("  {:>8.2} ms  {m}", *t as f64 / 1e3));
            }
        }
    }
    Ok(out)
}

/// One CRIU restore with `-v4`, cut into phases at its log lines (CRIU
/// stamps each line with the seconds since its start).
fn criu_phases(criu: &Criu, bins: &Bins, dir: &Path) -> Result<Vec<String>, String> {
    let img = dir.join("criu-img");
    let mut run = EngineRun::default();
    let expect = checkpoint(Engine::Criu, Some(criu), bins, dir, &img, &mut run)?;
    let pidfile = dir.join("restored.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut args = restart_args(
        Engine::Criu,
        img.to_str().expect("utf-8"),
        pidfile.to_str().expect("utf-8"),
        true,
    );
    args.splice(0..0, criu.prefix.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut d = run_detached(&bins.reaprun, &criu.prog, &args, dir, None)?;
    check_running(read_pidfile(&pidfile)?, Some(&expect))?;
    d.g.kill_below();
    d.g.wait_gone()?;
    let log = std::fs::read_to_string(img.join("restore.log"))
        .map_err(|e| format!("read CRIU's restore.log: {e}"))?;
    let lines: Vec<(f64, &str)> = log
        .lines()
        .filter_map(|l| {
            let (stamp, msg) = l.strip_prefix('(')?.split_once(')')?;
            Some((stamp.trim().parse::<f64>().ok()? * 1e3, msg.trim()))
        })
        .collect();
    let find = |pat: &str| lines.iter().find(|(_, m)| m.contains(pat)).map(|(t, _)| *t);
    let cached = !criu.prefix.is_empty();
    let mut out = vec![format!(
        "CRIU restore -d -S -v4{}: {:.1} ms in all (from reaprun's fork; -v4 adds some)",
        if cached { ", with its cache (*)" } else { "" },
        ms(d.time)
    )];
    let span = |a: f64, b: f64| format!("{:>7.1} ms", b - a);
    match (
        find("Forking task with 1 pid"),
        find("Preparing info about shared resources"),
        find("Restore finished successfully"),
    ) {
        (Some(f), Some(p), Some(e)) => {
            out.push(format!(
                "  {}  start, {}, read the images",
                span(0.0, f),
                if cached {
                    "read the kernel-probe cache"
                } else {
                    "probe the kernel (no cache kept: /run is not a tmpfs here)"
                }
            ));
            out.push(format!(
                "  {}  create the root in its namespaces and fill them (net: links, `ip` addr/route/rule restore; mnt: the mounts)",
                span(f, p)
            ));
            out.push(format!(
                "  {}  fork the other tasks, restore them all, resume",
                span(p, e)
            ));
            out.push(format!(
                "  {}  exec of criu (and nsenter) before its first log line, and exit after its last",
                span(e, ms(d.time))
            ));
        }
        _ => out.push("  (the expected lines were not in CRIU's restore.log)".into()),
    }
    Ok(out)
}

// ---------------------------------------------------------------- main

fn main() {
    let reps = env_count("KSTATE_BENCH_REPS", DEFAULT_REPS);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("ns_restart: must run as root (namespaces, checkpoint and restart need it)");
        std::process::exit(1);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (bindir, dir, _rm) = bench_dirs("ns_restart");

    let wl = manifest.join("bench/workloads");
    let bins = Bins {
        kstate: PathBuf::from(env!("CARGO_BIN_EXE_kstate")),
        reaper: build_c(&manifest.join("fixtures/reaper.c"), &bindir, "reaper"),
        reaprun: build_c(&wl.join("reaprun.c"), &bindir, "reaprun"),
        phaserun: build_c(&wl.join("phaserun.c"), &bindir, "phaserun"),
        ns10: build_c(&wl.join("ns10.c"), &bindir, "ns10"),
    };

    println!(
        "ns_restart: a {TASKS}-task tree in new pid, uts, ipc, net and mnt namespaces; \
         median of {reps} rounds per row after one warm-up round"
    );
    for name in ["KSTATE_CKPT_ARGS", "KSTATE_RESTART_ARGS"] {
        if let Ok(v) = std::env::var(name) {
            println!("{name}={v:?} (added to kstate's command line)");
        }
    }
    let criu = find_criu();
    match &criu {
        Ok(c) => println!("CRIU: {} (same run)", c.display()),
        Err(why) => println!("CRIU: COULD NOT RUN HERE ({why}); no CRIU figures"),
    }
    let criu = criu.ok().map(|prog| Criu {
        prog,
        prefix: Vec::new(),
    });
    // CRIU again, with its kernel-probe cache (see kdat_holder).
    let holder = criu.as_ref().map(|_| kdat_holder());
    let criu_cached = match (&criu, &holder) {
        (Some(c), Some(Ok(h))) => Some(Criu {
            prog: PathBuf::from("nsenter"),
            prefix: vec![
                "-t".into(),
                h.pid().to_string(),
                "-m".into(),
                "--".into(),
                c.prog.to_string_lossy().into_owned(),
            ],
        }),
        _ => None,
    };
    if let Some(Err(e)) = &holder {
        println!("CRIU with its cache: cannot run ({e})");
    }

    // The rounds are interleaved (floor, kstate, CRIU, CRIU with its cache,
    // then again), so that a change of load on this shared machine falls on
    // every row alike.
    let mut fl = Floor {
        total: Vec::new(),
        unshare: Vec::new(),
        forks: Vec::new(),
        errors: Vec::new(),
    };
    let mut k = EngineRun::default();
    let mut c = criu.as_ref().map(|_| EngineRun::default());
    let mut cc = criu_cached.as_ref().map(|_| EngineRun::default());
    for rep in std::iter::once(None).chain((0..reps).map(Some)) {
        match rep {
            None => println!(
                "warm-up round: floor, kstate{} ...",
                if criu.is_some() {
                    ", CRIU, CRIU (*)"
                } else {
                    ""
                }
            ),
            Some(r) => println!("round {r} ..."),
        }
        floor_step(&bins, &dir, &mut fl, rep);
        engine_round(Engine::Kstate, None, &bins, &dir, &mut k, rep);
        if let (Some(cr), Some(run)) = (&criu, &mut c) {
            engine_round(Engine::Criu, Some(cr), &bins, &dir, run, rep);
        }
        if let (Some(cr), Some(run)) = (&criu_cached, &mut cc) {
            engine_round(Engine::Criu, Some(cr), &bins, &dir, run, rep);
        }
    }
    let spawn = spawn_floor(&bins, reps, &dir);
    let kdat = holder
        .as_ref()
        .and_then(|h| h.as_ref().ok())
        .and_then(|h| std::fs::metadata(format!("/proc/{}/root/run/criu.kdat", h.pid())).ok())
        .map(|m| m.len());
    println!("per-phase runs ...");
    let kp = kstate_phases(&bins, &dir);
    let cp = criu.as_ref().map(|c| criu_phases(c, &bins, &dir));
    let ccp = criu_cached.as_ref().map(|c| criu_phases(c, &bins, &dir));
    drop(holder);

    // --- table.
    println!();
    println!("restart of the tree, from the fork of the restarting program to its return (ms)");
    println!("{:<52} {:>8} {:>13}", "row", "median", "range");
    let row = |name: &str, v: &[Duration]| {
        println!("{:<52} {:>8} {:>13}", name, fmt_med(v), range(v, 1));
    };
    row(
        "floor: unshare 5 ns + fork init + 9 forks (ns10)",
        &fl.total,
    );
    row("  in it: unshare(pid|uts|ipc|net|mnt)", &fl.unshare);
    row("  in it: fork the 10 tasks until all are up", &fl.forks);
    row("spawn only: kstate --help (spawned from Rust)", &spawn);
    row("kstate restart -d", &k.restore);
    if let Some(c) = &c {
        row("CRIU restore -d -S --root /", &c.restore);
    }
    if let Some(c) = &cc {
        row(
            "CRIU, the same, with its kernel-probe cache (*)",
            &c.restore,
        );
    }
    println!();
    println!("checkpoint, for information (ms; both kill the tree after)");
    row("kstate checkpoint", &k.ckpt);
    if let Some(c) = &c {
        row("CRIU dump", &c.ckpt);
    }
    if let Some(c) = &cc {
        row("CRIU dump, with its kernel-probe cache (*)", &c.ckpt);
    }
    if cc.is_some() {
        println!(
            "(*) run as `nsenter -t HOLDER -m -- criu ...` in a mount namespace whose /run is a tmpfs, \
             where CRIU keeps /run/criu.kdat ({}); the nsenter exec is inside the time",
            kdat.map_or("but the file was NOT there: no cache".into(), |n| format!(
                "{n} bytes there after the runs"
            ))
        );
    }
    println!();
    println!("what the restored root sees beyond the checks (the workload's root: / and its own proc, 2 mounts; the host's time namespace)");
    let seen = |name: &str, r: &EngineRun| match (r.seen, r.seen_before) {
        (Some(s), Some(b)) => println!(
            "  {name:<7} {} mounts{}; {}",
            s.mounts,
            if s.mounts == b.mounts {
                ", as many as before".to_string()
            } else {
                format!(
                    ", NOT the {} of the checkpointed mount namespace: not rebuilt",
                    b.mounts
                )
            },
            match (s.new_time, b.new_time) {
                (false, false) => "the host's time namespace, as before",
                (true, true) => "a time namespace of its own, as before",
                (true, false) => "a NEW time namespace (the workload used ours)",
                (false, true) => "OUR time namespace (the workload had its own)",
            }
        ),
        _ => println!("  {name:<7} -"),
    };
    seen("kstate", &k);
    if let Some(c) = &c {
        seen("CRIU", c);
    }
    if let Some(c) = &cc {
        seen("CRIU (*)", c);
    }

    println!();
    println!("phases (one more run each, with logging)");
    for p in [Some(kp), cp, ccp].into_iter().flatten() {
        match p {
            Ok(lines) => lines.iter().for_each(|l| println!("  {l}")),
            Err(e) => println!("  failed: {e}"),
        }
    }

    // --- ratios and aims.
    println!();
    println!("aims");
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    match (med_ms(&k.restore), med_ms(&fl.total)) {
        (Some(km), Some(f)) => println!(
            "  kstate within 2x of the floor: {km:.1} / {f:.1} ms = {:.2}x the floor {}",
            km / f,
            verdict(km / f <= 2.0)
        ),
        _ => println!("  kstate within 2x of the floor: no figure (see errors)"),
    }
    for (what, r) in [("CRIU as-is", &c), ("CRIU with its cache (*)", &cc)] {
        match (
            med_ms(&k.restore),
            r.as_ref().and_then(|c| med_ms(&c.restore)),
        ) {
            (Some(km), Some(cm)) => println!(
                "  kstate >= 3x faster than {what}: {cm:.1} / {km:.1} ms = {:.2}x {}",
                cm / km,
                verdict(cm / km >= 3.0)
            ),
            (_, None) if criu.is_none() => {
                println!("  kstate >= 3x faster than {what}: NOT MEASURED (no CRIU)")
            }
            _ => println!("  kstate >= 3x faster than {what}: no figure (see errors)"),
        }
    }
    for e in &fl.errors {
        println!("  ERROR floor: {e}");
    }
    for e in &k.errors {
        println!("  ERROR kstate: {e}");
    }
    for e in c.iter().flat_map(|c| &c.errors) {
        println!("  ERROR CRIU: {e}");
    }
    for e in cc.iter().flat_map(|c| &c.errors) {
        println!("  ERROR CRIU (*): {e}");
    }
}
