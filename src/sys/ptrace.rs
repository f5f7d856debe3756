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
