//! System-call injection (`kstate::sys::inject`) and register access
//! (`kstate::sys::regs`) on real processes: `fixtures/spin.c` blocked in
//! nanosleep, blocked in read, or spinning in user code. Needs root.
//!
//! Each test attaches, injects and detaches on its own thread (ptrace
//! requests must come from the thread that attached), and its `Workload`
//! guard SIGKILLs and reaps the fixture however the test ends. Every wait is
//! bounded.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use kstate::sys::inject::{AltStack, Injector, KernelSigaction};
use kstate::sys::ptrace::{self, Stop};
use kstate::sys::regs::{self, Restart, SyscallState};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{assert_running_untraced, build_fixture, require_root, wait_for, READY_TIMEOUT};

const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
const SYS_READ: u64 = 0;
const SYS_NANOSLEEP: u64 = 35;
const SYS_RESTART_SYSCALL: u64 = 219;
/// `SA_RESTORER` of the kernel ABI (glibc sets it; the libc crate lacks it).
const SA_RESTORER: libc::c_int = 0x0400_0000;

/// A running `spin` fixture; dropping it SIGKILLs and reaps it.
struct Workload {
    child: Child,
    pid: i32,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// The `INFO key=value` fields the fixture printed.
    info: HashMap<String, u64>,
}

impl Drop for Workload {
    fn drop(&mut self) {
        // std never signals a child it has reaped itself; the pid stays ours
        // until it is reaped (a traced child's exit is reported to us too).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let end = Instant::now() + common::KILL_TIMEOUT;
            while Instant::now() < end {
                match self.child.try_wait() {
                    Ok(None) => thread::sleep(Duration::from_millis(5)),
                    _ => return,
                }
            }
            eprintln!("warning: spin {} not reaped after SIGKILL", self.pid);
        }
    }
}

fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn start(mode: &str) -> Workload {
    require_root();
    let bin = build_fixture("spin");
    let mut child = Command::new(&bin)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let stdin = child.stdin.take();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let pid = child.id() as i32;
    let mut w = Workload {
        child,
        pid,
        stdin,
        lines,
        info: HashMap::new(),
    };
    let end = Instant::now() + READY_TIMEOUT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = w
            .lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("spin {mode}: no READY line within {READY_TIMEOUT:?}: {e}"));
        if let Some(rest) = line.strip_prefix("INFO ") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv.split_once('=').expect("INFO key=value");
                let v = parse_num(v).unwrap_or_else(|| panic!("bad INFO value {kv:?}"));
                w.info.insert(k.to_string(), v);
            }
        } else if let Some(p) = line.strip_prefix("READY ") {
            assert_eq!(p.parse::<i32>().ok(), Some(pid), "READY line {line:?}");
            return w;
        } else {
            panic!("spin {mode}: unexpected line {line:?}");
        }
    }
}

impl Workload {
    fn info(&self, key: &str) -> u64 {
        *self
            .info
            .get(key)
            .unwrap_or_else(|| panic!("fixture printed no {key}="))
    }

    /// The next line the fixture prints; fails on a `BAD` line.
    fn next_line(&self, what: &str) -> String {
        let line = self
            .lines
            .recv_timeout(LINE_TIMEOUT)
            .unwrap_or_else(|e| panic!("no line ({what}) within {LINE_TIMEOUT:?}: {e}"));
        assert!(!line.starts_with("BAD"), "fixture failed: {line}");
        line
    }

    /// The first field of /proc/PID/syscall: the number of the blocking
    /// system call, or "running".
    fn syscall_field(&self) -> Option<String> {
        let s = fs::read_to_string(format!("/proc/{}/syscall", self.pid)).ok()?;
        s.split_whitespace().next().map(str::to_string)
    }

    fn maps(&self) -> String {
        fs::read_to_string(format!("/proc/{}/maps", self.pid)).expect("read maps")
    }

    fn read_u64(&self, addr: u64) -> u64 {
        let f = fs::File::open(format!("/proc/{}/mem", self.pid)).expect("open mem");
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, addr).expect("read mem");
        u64::from_ne_bytes(b)
    }
}

/// PTRACE_SEIZE + PTRACE_INTERRUPT and a bounded wait for the
/// PTRACE_EVENT_STOP.
fn freeze(pid: i32) {
    ptrace::seize(pid).unwrap_or_else(|e| panic!("seize {pid}: {e}"));
    ptrace::interrupt(pid).unwrap_or_else(|e| panic!("interrupt {pid}: {e}"));
    let end = Instant::now() + STOP_TIMEOUT;
    loop {
        match ptrace::wait(pid, true) {
            Ok(Some(Stop::Event { event, .. })) if event == libc::PTRACE_EVENT_STOP => return,
            Ok(Some(other)) => panic!("{pid}: unexpected stop {other:?}"),
            Ok(None) => {}
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
        assert!(
            Instant::now() < end,
            "{pid} did not stop within {STOP_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

fn detach(pid: i32) {
    ptrace::detach(pid, 0).unwrap_or_else(|e| panic!("detach {pid}: {e}"));
}

/// Freezes the fixture while it is blocked in system call `nr`. The fixture
/// may be between two calls when the stop lands (nanosleep loops every
/// second): then it is let go and frozen again.
fn freeze_in_syscall(w: &Workload, nr: u64) -> libc::user_regs_struct {
    let want = nr.to_string();
    for _ in 0..5 {
        wait_for(Duration::from_secs(5), "the fixture to block", || {
            w.syscall_field().as_deref() == Some(want.as_str())
        });
        freeze(w.pid);
        let r = regs::get_regs(w.pid).unwrap_or_else(|e| panic!("{e}"));
        if matches!(SyscallState::of(&r), SyscallState::Interrupted { nr: n, .. } if n == nr) {
            return r;
        }
        detach(w.pid);
    }
    panic!("could not freeze {} inside system call {nr}", w.pid);
}

/// Reads everything an injection can read and checks it against what the
/// fixture set up.
fn check_injected_state(w: &Workload, inj: &mut Injector) {
    let pid = inj
        .syscall(libc::SYS_getpid, [0; 6])
        .expect("inject getpid");
    assert_eq!(pid, w.pid as i64, "getpid in the task");

    let brk = inj.get_brk().expect("inject brk(0)");
    assert!(brk > 0, "brk {brk:#x}");
    if let Some(line) = w.maps().lines().find(|l| l.ends_with("[heap]")) {
        let range = line.split_whitespace().next().expect("range");
        let (a, b) = range.split_once('-').expect("a-b");
        let (a, b) = (parse_num(&format!("0x{a}")), parse_num(&format!("0x{b}")));
        let (a, b) = (a.expect("heap start"), b.expect("heap end"));
        assert!(a < brk && brk <= b, "brk {brk:#x} outside [heap] {range}");
    }

    let raw = inj
        .get_sigaction(libc::SIGUSR1)
        .expect("inject rt_sigaction");
    let sa = KernelSigaction::from_raw(&raw);
    assert_eq!(sa.handler, w.info("handler"), "SIGUSR1 handler: {sa:x?}");
    for (flag, name) in [
        (libc::SA_RESTART, "SA_RESTART"),
        (libc::SA_SIGINFO, "SA_SIGINFO"),
        (libc::SA_ONSTACK, "SA_ONSTACK"),
        (SA_RESTORER, "SA_RESTORER"),
    ] {
        assert!(sa.flags & flag as u64 != 0, "{name} not in {sa:x?}");
    }
    assert_ne!(sa.restorer, 0, "{sa:x?}");
    let dfl = KernelSigaction::from_raw(&inj.get_sigaction(libc::SIGUSR2).expect("SIGUSR2"));
    assert_eq!(dfl.handler, 0, "SIGUSR2 is SIG_DFL: {dfl:x?}");

    let it = inj
        .get_itimer(libc::ITIMER_VIRTUAL)
        .expect("inject getitimer");
    assert_eq!(it.it_interval.tv_sec, 100000, "ITIMER_VIRTUAL interval");
    // The kernel adds one tick (TICK_NSEC) to a CPU itimer when it is set,
    // so a timer that has barely run reads a little above what was set.
    let left = it.it_value.tv_sec * 1_000_000 + it.it_value.tv_usec;
    assert!(
        left > 0 && left <= 100_001_000_000,
        "ITIMER_VIRTUAL value {left} us"
    );

    let ss = inj.get_sigaltstack().expect("inject sigaltstack");
    assert_eq!(
        ss,
        AltStack {
            sp: w.info("altstack"),
            flags: 0,
            size: w.info("altsize"),
        }
    );
    assert!(inj.pending_signals().is_empty(), "{inj:?}");
}

/// What must be identical before and after an injection session.
#[derive(Debug, PartialEq)]
struct Snapshot {
    regs: libc::user_regs_struct,
    xstate: Vec<u8>,
    sigmask: u64,
    maps: String,
}

fn snapshot(w: &Workload) -> Snapshot {
    let xstate = regs::get_xstate(w.pid).unwrap_or_else(|e| panic!("{e}"));
    assert!(xstate.len() >= 576, "xstate is {} bytes", xstate.len());
    Snapshot {
        regs: regs::get_regs(w.pid).unwrap_or_else(|e| panic!("{e}")),
        xstate,
        sigmask: regs::get_sigmask(w.pid).unwrap_or_else(|e| panic!("{e}")),
        maps: w.maps(),
    }
}

/// The whole session on a frozen fixture: snapshot, inject, finish, compare.
fn inject_and_compare(w: &Workload) {
    let before = snapshot(w);
    let mut inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inj.saved_regs(), &before.regs);
    check_injected_state(w, &mut inj);
    // The scratch page is there during the session, gone after.
    let during = w.maps();
    assert_ne!(during, before.maps, "no scratch mapping appeared");
    inj.finish().unwrap_or_else(|e| panic!("finish: {e}"));
    let after = snapshot(w);
    assert_eq!(after.regs, before.regs, "registers changed");
    assert_eq!(after.sigmask, before.sigmask, "signal mask changed");
    assert!(after.xstate == before.xstate, "xstate changed");
    assert_eq!(after.maps, before.maps, "mappings changed");
}

#[test]
fn inject_into_nanosleep() {
    let w = start("sleep");
    let r = freeze_in_syscall(&w, SYS_NANOSLEEP);
    assert_eq!(
        SyscallState::of(&r),
        SyscallState::Interrupted {
            nr: SYS_NANOSLEEP,
            restart: Restart::RestartBlock
        }
    );
    let resume = regs::regs_for_resume(&r);
    assert_eq!(resume.rax as i64, -(libc::EINTR as i64));
    assert_eq!(resume.rip, r.rip);

    inject_and_compare(&w);
    detach(w.pid);
    assert_running_untraced(&[w.pid]);
    // The kernel continues the sleep through restart_syscall (not EINTR,
    // not a leaked -ERESTART_RESTARTBLOCK, which the fixture would report).
    wait_for(Duration::from_secs(5), "the sleep to go on", || {
        let f = w.syscall_field();
        f.as_deref() == Some(&SYS_RESTART_SYSCALL.to_string())
            || f.as_deref() == Some(&SYS_NANOSLEEP.to_string())
    });
    kill(Pid::from_raw(w.pid), Signal::SIGUSR1).expect("kill SIGUSR1");
    let me = std::process::id();
    assert_eq!(w.next_line("SIGUSR1 handler"), format!("USR1 {me} 1"));
}

#[test]
fn inject_into_read() {
    let mut w = start("read");
    let r = freeze_in_syscall(&w, SYS_READ);
    assert_eq!(
        SyscallState::of(&r),
        SyscallState::Interrupted {
            nr: SYS_READ,
            restart: Restart::Sys
        }
    );
    assert!(SyscallState::of(&r).in_syscall());
    let resume = regs::regs_for_resume(&r);
    assert_eq!(resume.rip, r.rip - 2);
    assert_eq!(resume.rax, SYS_READ);

    inject_and_compare(&w);
    detach(w.pid);
    assert_running_untraced(&[w.pid]);
    // read() was restarted: it gets what is written now.
    let stdin = w.stdin.as_mut().expect("stdin");
    stdin.write_all(b"hello\n").expect("write to fixture");
    stdin.flush().expect("flush");
    assert_eq!(w.next_line("echo"), "GOT hello");
}

#[test]
fn inject_into_busy_loop() {
    let w = start("spin");
    let counter = w.info("counter");
    // Past the write of the READY line (a stop on its way out of write()
    // shows `Returned`), into the loop.
    wait_for(Duration::from_secs(5), "the loop to start", || {
        w.read_u64(counter) > 0
    });
    freeze(w.pid);
    let r = regs::get_regs(w.pid).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(SyscallState::of(&r), SyscallState::User, "regs {r:x?}");
    assert_eq!(regs::regs_for_resume(&r), r);
    let c0 = w.read_u64(counter);

    inject_and_compare(&w);
    assert_eq!(w.read_u64(counter), c0, "the loop ran during injection");
    detach(w.pid);
    assert_running_untraced(&[w.pid]);
    wait_for(Duration::from_secs(5), "the counter to move", || {
        w.read_u64(counter) > c0
    });
}

/// A signal that arrives while calls are injected is held back, then
/// delivered once (with its siginfo: the sender's pid) after the detach.
#[test]
fn signal_during_injection_is_delivered_after() {
    let w = start("sleep");
    freeze_in_syscall(&w, SYS_NANOSLEEP);
    let before = snapshot(&w);
    // Queued now, dequeued (into a signal-delivery stop) as soon as the
    // thread is resumed for the first injected call.
    kill(Pid::from_raw(w.pid), Signal::SIGUSR1).expect("kill SIGUSR1");
    let mut inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
    let pid = inj.syscall(libc::SYS_getpid, [0; 6]).expect("getpid");
    assert_eq!(pid, w.pid as i64);
    assert_eq!(inj.pending_signals(), vec![libc::SIGUSR1]);
    let _ = inj.get_brk().expect("brk");
    inj.finish().unwrap_or_else(|e| panic!("finish: {e}"));
    let after = snapshot(&w);
    assert_eq!(after, before);
    detach(w.pid);

    let me = std::process::id();
    assert_eq!(w.next_line("held-back SIGUSR1"), format!("USR1 {me} 1"));
    // Exactly once: the next signal is the second the handler sees.
    kill(Pid::from_raw(w.pid), Signal::SIGUSR1).expect("kill SIGUSR1");
    assert_eq!(w.next_line("second SIGUSR1"), format!("USR1 {me} 2"));
    assert_running_untraced(&[w.pid]);
}

/// PTRACE_SETREGSET / PTRACE_SETSIGMASK / PTRACE_SETREGS take back what the
/// getters return.
#[test]
fn regs_round_trip() {
    let w = start("spin");
    freeze(w.pid);
    let before = snapshot(&w);
    eprintln!("xstate: {} bytes", before.xstate.len());
    regs::set_xstate(w.pid, &before.xstate).unwrap_or_else(|e| panic!("{e}"));
    regs::set_regs(w.pid, &before.regs).unwrap_or_else(|e| panic!("{e}"));
    let usr2 = 1u64 << (libc::SIGUSR2 - 1);
    regs::set_sigmask(w.pid, before.sigmask | usr2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        regs::get_sigmask(w.pid).unwrap_or_else(|e| panic!("{e}")),
        before.sigmask | usr2
    );
    regs::set_sigmask(w.pid, before.sigmask).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot(&w), before);
    // A truncated area is refused.
    assert!(regs::set_xstate(w.pid, &before.xstate[..512]).is_err());
    detach(w.pid);
    assert_running_untraced(&[w.pid]);
}

/// Dropping an injector without `finish` restores the task too.
#[test]
fn drop_without_finish_restores() {
    let mut w = start("read");
    freeze_in_syscall(&w, SYS_READ);
    let before = snapshot(&w);
    {
        let mut inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
        inj.scratch(10000).expect("scratch");
        assert!(inj.get_brk().expect("brk") > 0);
    }
    assert_eq!(snapshot(&w), before);
    detach(w.pid);
    let stdin = w.stdin.as_mut().expect("stdin");
    stdin.write_all(b"after drop\n").expect("write to fixture");
    assert_eq!(w.next_line("echo"), "GOT after drop");
}

/// A batch runs its calls in one resume: results and out-buffers come back,
/// the first failing call stops the run and is named, a signal arriving
/// meanwhile is held back like for single calls, and the session still
/// leaves the thread exactly as it was (a blocked read carries on).
#[test]
fn batch_of_calls() {
    use kstate::sys::inject::{Batch, InjectError, KERNEL_SIGACTION_SIZE};
    let mut w = start("read");
    freeze_in_syscall(&w, SYS_READ);
    let before = snapshot(&w);
    kill(Pid::from_raw(w.pid), Signal::SIGUSR1).expect("kill SIGUSR1");
    {
        let mut inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
        let area = inj.scratch(16384).expect("scratch");
        let mut b = Batch::new(area, 16384);
        let getpid = b.push("getpid", libc::SYS_getpid, [0; 6]);
        let sa = b.buffer(KERNEL_SIGACTION_SIZE);
        b.push(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [libc::SIGUSR1 as u64, 0, sa, 8, 0, 0],
        );
        let it = b.buffer(32);
        b.push(
            "getitimer",
            libc::SYS_getitimer,
            [libc::ITIMER_VIRTUAL as u64, it, 0, 0, 0, 0],
        );
        let brk = b.push("brk", libc::SYS_brk, [0; 6]);
        let res = inj.run(b).unwrap_or_else(|e| panic!("batch: {e}"));
        assert_eq!(res.ret(getpid), w.pid as u64);
        assert!(res.ret(brk) > 0);
        let mut raw = [0u8; KERNEL_SIGACTION_SIZE];
        raw.copy_from_slice(res.bytes(sa, KERNEL_SIGACTION_SIZE));
        assert_eq!(KernelSigaction::from_raw(&raw).handler, w.info("handler"));
        let interval = u64::from_ne_bytes(res.bytes(it, 8).try_into().expect("8 bytes"));
        assert_eq!(interval, 100000, "ITIMER_VIRTUAL interval");
        assert_eq!(inj.pending_signals(), vec![libc::SIGUSR1]);

        // close(-1) fails: the run stops there, getpid after it never runs.
        let mut b = Batch::new(area, 16384);
        let out = b.buffer(8);
        b.push("getppid", libc::SYS_getppid, [0; 6]);
        b.push("close", libc::SYS_close, [u64::MAX, 0, 0, 0, 0, 0]);
        b.push("gettimeofday", libc::SYS_gettimeofday, [out, 0, 0, 0, 0, 0]);
        match inj.run(b) {
            Err(InjectError::Syscall { call, errno, .. }) => {
                assert_eq!((call, errno), ("close", libc::EBADF))
            }
            other => panic!("a failing call must end the batch: {other:?}"),
        }
        // A table longer than the room runs in pieces (3 entries each here).
        let mut b = Batch::new(area, 256);
        let calls: Vec<usize> = (0..8)
            .map(|_| b.push("getpid", libc::SYS_getpid, [0; 6]))
            .collect();
        let res = inj
            .run(b)
            .unwrap_or_else(|e| panic!("batch in pieces: {e}"));
        for i in calls {
            assert_eq!(res.ret(i), w.pid as u64, "call {i}");
        }
        // Data too large for the area: refused before anything runs.
        let mut b = Batch::new(area, 256);
        b.buffer(200);
        b.push("getpid", libc::SYS_getpid, [0; 6]);
        assert!(matches!(
            inj.run(b),
            Err(InjectError::BatchTooLarge { calls: 1, .. })
        ));
        inj.finish().unwrap_or_else(|e| panic!("finish: {e}"));
    }
    assert_eq!(snapshot(&w), before);
    detach(w.pid);
    let me = std::process::id();
    assert_eq!(w.next_line("held-back SIGUSR1"), format!("USR1 {me} 1"));
    let stdin = w.stdin.as_mut().expect("stdin");
    stdin.write_all(b"after batch\n").expect("write to fixture");
    assert_eq!(w.next_line("echo"), "GOT after batch");
}

/// `Injector::last_call_start`: one last call, single-stepped, ends the
/// session in one stop and leaves the thread for the caller's registers
/// (here its own, as a restore gives them: back onto the `syscall` of its
/// read); detached, it carries on. With a signal held back the session
/// refuses and hands itself back, to be finished the usual way.
#[test]
fn last_call_ends_the_session_in_one_stop() {
    let mut w = start("read");
    let r = freeze_in_syscall(&w, SYS_READ);
    let inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
    let last = match inj.last_call_start("getpid", libc::SYS_getpid, [0; 6]) {
        Ok(Ok(last)) => last,
        Ok(Err(_)) => panic!("refused with no signal held back"),
        Err(e) => panic!("last_call_start: {e}"),
    };
    let got = last.complete().unwrap_or_else(|e| panic!("complete: {e}"));
    assert_eq!(got, w.pid as u64, "getpid in the task");
    let now = regs::get_regs(w.pid).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(now.rip, r.rip, "the task is left where the call left it");
    regs::set_regs(w.pid, &regs::regs_for_resume(&r)).unwrap_or_else(|e| panic!("{e}"));
    detach(w.pid);
    assert_running_untraced(&[w.pid]);
    let stdin = w.stdin.as_mut().expect("stdin");
    stdin.write_all(b"after\n").expect("write to fixture");
    stdin.flush().expect("flush");
    assert_eq!(w.next_line("echo"), "GOT after");

    // A held-back signal: refused, and the usual finish delivers it.
    let w = start("sleep");
    freeze_in_syscall(&w, SYS_NANOSLEEP);
    kill(Pid::from_raw(w.pid), Signal::SIGUSR1).expect("kill SIGUSR1");
    let mut inj = Injector::new(w.pid).unwrap_or_else(|e| panic!("{e}"));
    inj.syscall(libc::SYS_getpid, [0; 6]).expect("getpid");
    assert_eq!(inj.pending_signals(), vec![libc::SIGUSR1]);
    let inj = match inj.last_call_start("getpid", libc::SYS_getpid, [0; 6]) {
        Ok(Err(inj)) => inj,
        Ok(Ok(_)) => panic!("a last call with a signal held back"),
        Err(e) => panic!("last_call_start: {e}"),
    };
    inj.finish().unwrap_or_else(|e| panic!("finish: {e}"));
    detach(w.pid);
    let me = std::process::id();
    assert_eq!(w.next_line("held-back SIGUSR1"), format!("USR1 {me} 1"));
}
