//! ptrace(2) and waitpid(2) with raw statuses: nix's `WaitStatus` cannot carry
//! real-time signals, which a tracee can be stopped with.

use std::io;

/// What `waitpid` reported for a traced thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A ptrace event stop: `event` is PTRACE_EVENT_* (PTRACE_EVENT_STOP for
    /// an interrupt or group stop), `sig` the stop signal.
    Event {
        sig: i32,
        event: i32,
    },
    /// A signal-delivery stop: the signal is pending delivery.
    Signal(i32),
    Exited(i32),
    Killed(i32),
}

fn check(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// PTRACE_SEIZE: attach without stopping or signalling the thread.
pub fn seize(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SEIZE takes a tid, a null address and an options word;
    // it touches no memory of ours.
    check(unsafe { libc::ptrace(libc::PTRACE_SEIZE, tid, 0usize, 0usize) })
}

/// PTRACE_INTERRUPT: stop a seized thread (reported as PTRACE_EVENT_STOP).
pub fn interrupt(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_INTERRUPT ignores addr and data.
    check(unsafe { libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0usize, 0usize) })
}

/// PTRACE_DETACH, delivering `sig` (0 for none) as the thread resumes.
pub fn detach(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: PTRACE_DETACH takes the signal to deliver in data; no memory is
    // passed.
    check(unsafe { libc::ptrace(libc::PTRACE_DETACH, tid, 0usize, sig as usize) })
}

/// waitpid(tid, __WALL [| WNOHANG]). `Ok(None)` when nothing is ready.
pub fn wait(tid: i32, nohang: bool) -> io::Result<Option<Stop>> {
    let mut status: libc::c_int = 0;
    let flags = libc::__WALL | if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: `status` is a valid, writable int for the duration of the call.
    let r = unsafe { libc::waitpid(tid, &mut status, flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(decode(status)))
}

/// Blocks SIGCHLD in the calling thread (once per thread), so that the
/// notice of a child's stop stays pending for [`wait_until`] instead of
/// being dropped (its default action is to ignore it). The kstate binary
/// blocks it in its main thread before any other starts, so that every
/// thread inherits the mask and no other thread takes the signal.
pub fn block_sigchld() {
    thread_local! {
        static BLOCKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if BLOCKED.with(|b| b.replace(true)) {
        return;
    }
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    // Cannot fail with a valid set and how.
    let _ = set.thread_block();
}

/// waitpid(tid, __WALL) bounded by `deadline`, without spinning: between
/// two non-blocking waits the thread sleeps in sigtimedwait(SIGCHLD), which
/// a tracee's stop (or end) wakes at once. Each sleep is at most 2 ms, so a
/// notice taken by another thread that does not block SIGCHLD costs that
/// much, never a hang. `Ok(None)` once the deadline has passed.
pub fn wait_until(tid: i32, deadline: std::time::Instant) -> io::Result<Option<Stop>> {
    block_sigchld();
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    loop {
        match wait(tid, true) {
            Ok(Some(stop)) => return Ok(Some(stop)),
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        let slice = (deadline - now).min(std::time::Duration::from_millis(2));
        super::sigtimedwait(&set, slice);
    }
}

fn decode(status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        Stop::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Stop::Killed(libc::WTERMSIG(status))
    } else {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if event != 0 {
            Stop::Event { sig, event }
        } else {
            Stop::Signal(sig)
        }
    }
}

/// `struct ptrace_peeksiginfo_args` of `<linux/ptrace.h>`.
#[repr(C)]
struct PeekSiginfoArgs {
    off: u64,
    flags: u32,
    nr: i32,
}

const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
/// Size of a `siginfo_t`.
pub const SIGINFO_SIZE: usize = 128;

/// PTRACE_PEEKSIGINFO: the signals queued to a stopped thread (or, with
/// `shared`, to its thread group), without dequeuing them.
pub fn peek_siginfo(tid: i32, shared: bool) -> io::Result<Vec<[u8; SIGINFO_SIZE]>> {
    let mut out = Vec::new();
    let mut buf = [[0u8; SIGINFO_SIZE]; 32];
    loop {
        let args = PeekSiginfoArgs {
            off: out.len() as u64,
            flags: if shared { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
            nr: buf.len() as i32,
        };
        // SAFETY: the kernel reads `args` and writes at most `nr` siginfos
        // (128 bytes each) into `buf`, which has room for exactly that many.
        let n = unsafe {
            libc::ptrace(
                PTRACE_PEEKSIGINFO,
                tid,
                &args as *const PeekSiginfoArgs,
                buf.as_mut_ptr(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        out.extend_from_slice(&buf[..n as usize]);
        if (n as usize) < buf.len() {
            return Ok(out);
        }
    }
}

/// `struct ptrace_rseq_configuration` of `<linux/ptrace.h>`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RseqConfig {
    pub abi_pointer: u64,
    pub abi_size: u32,
    pub signature: u32,
    pub flags: u32,
    pub pad: u32,
}

const PTRACE_GET_RSEQ_CONFIGURATION: libc::c_uint = 0x420f;

/// PTRACE_GET_RSEQ_CONFIGURATION: the thread's registered rseq area (all
/// zero when none).
pub fn rseq_config(tid: i32) -> io::Result<RseqConfig> {
    let mut c = RseqConfig::default();
    // SAFETY: the kernel writes at most `addr` bytes (the struct's size) to
    // `data`, which points to our struct of that size.
    let r = unsafe {
        libc::ptrace(
            PTRACE_GET_RSEQ_CONFIGURATION,
            tid,
            core::mem::size_of::<RseqConfig>(),
            &mut c as *mut RseqConfig,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(c)
}
