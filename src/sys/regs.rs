//! Registers, extended (FPU/SSE/AVX…) state and the signal mask of a
//! ptrace-stopped thread (ptrace(2): PTRACE_GETREGS, PTRACE_SETREGS,
//! PTRACE_GETREGSET, PTRACE_SETREGSET, PTRACE_GETSIGMASK, PTRACE_SETSIGMASK),
//! and how to read the system-call state out of the general registers.
//!
//! Every call here needs the thread to be in a ptrace stop of the calling
//! thread (the one that attached).

use std::io;
use std::mem::MaybeUninit;

/// The regset note type of the x86 XSAVE area (`NT_X86_XSTATE` in
/// `<elf.h>` / `include/uapi/linux/elf.h`).
pub const NT_X86_XSTATE: usize = 0x202;

/// First buffer size tried for the XSAVE area; AMX tile data makes it about
/// 11 KiB, so this is enough on current hardware. A reply that fills the
/// whole buffer may have been truncated: the buffer is then doubled, up to
/// [`XSTATE_MAX`].
const XSTATE_FIRST: usize = 16 * 1024;
const XSTATE_MAX: usize = 1024 * 1024;

/// A ptrace register request failed: on which thread, at which step.
#[derive(Debug, thiserror::Error)]
#[error("task {tid}: {step}: {source}")]
pub struct RegsError {
    pub tid: i32,
    pub step: &'static str,
    #[source]
    pub source: io::Error,
}

fn check(tid: i32, step: &'static str, r: libc::c_long) -> Result<(), RegsError> {
    if r < 0 {
        Err(RegsError {
            tid,
            step,
            source: io::Error::last_os_error(),
        })
    } else {
        Ok(())
    }
}

/// PTRACE_GETREGS (ptrace(2)): the general registers, `fs_base` and
/// `gs_base` included.
pub fn get_regs(tid: i32) -> Result<libc::user_regs_struct, RegsError> {
    let mut regs = MaybeUninit::<libc::user_regs_struct>::uninit();
    // SAFETY: PTRACE_GETREGS writes exactly one `user_regs_struct` at `data`,
    // which points to writable storage of that type and size.
    let r = unsafe { libc::ptrace(libc::PTRACE_GETREGS, tid, 0usize, regs.as_mut_ptr()) };
    check(tid, "PTRACE_GETREGS", r)?;
    // SAFETY: the call succeeded, so the kernel filled in every field (the
    // struct is plain integers, any bit pattern is valid).
    Ok(unsafe { regs.assume_init() })
}

/// PTRACE_SETREGS (ptrace(2)). The kernel refuses (EIO) segment selectors
/// and bases it does not allow; everything else is taken as given.
pub fn set_regs(tid: i32, regs: &libc::user_regs_struct) -> Result<(), RegsError> {
    // SAFETY: PTRACE_SETREGS reads one `user_regs_struct` from `data`, which
    // points to a valid, initialised value borrowed for the call.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGS,
            tid,
            0usize,
            regs as *const libc::user_regs_struct,
        )
    };
    check(tid, "PTRACE_SETREGS", r)
}

/// PTRACE_GETREGSET with NT_X86_XSTATE (ptrace(2)): the XSAVE area in the
/// standard (non-compacted) format, with the software-reserved bytes
/// 464..512 describing the features present. Its length is what the kernel
/// reports back in the iovec (`fpu_user_cfg.max_size`, which depends on the
/// CPU: 2432 bytes on an AVX-512 machine, about 11 KiB with AMX).
pub fn get_xstate(tid: i32) -> Result<Vec<u8>, RegsError> {
    let mut size = XSTATE_FIRST;
    loop {
        let mut buf = vec![0u8; size];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: PTRACE_GETREGSET writes at most `iov_len` bytes to
        // `iov_base` (our buffer, alive and exclusively borrowed for the call)
        // and stores the length it wrote back into `iov`, which is writable.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGSET,
                tid,
                NT_X86_XSTATE,
                &mut iov as *mut libc::iovec,
            )
        };
        check(tid, "PTRACE_GETREGSET(NT_X86_XSTATE)", r)?;
        if iov.iov_len < size || size >= XSTATE_MAX {
            buf.truncate(iov.iov_len.min(size));
            return Ok(buf);
        }
        size *= 2;
    }
}

/// PTRACE_SETREGSET with NT_X86_XSTATE (ptrace(2)). The kernel accepts only
/// a whole area of exactly the length [`get_xstate`] returns (else EFAULT),
/// and checks the header (else EINVAL).
pub fn set_xstate(tid: i32, xstate: &[u8]) -> Result<(), RegsError> {
    let mut iov = libc::iovec {
        // The kernel only reads through this pointer for SETREGSET.
        iov_base: xstate.as_ptr().cast_mut().cast(),
        iov_len: xstate.len(),
    };
    // SAFETY: PTRACE_SETREGSET reads `iov_len` bytes from `iov_base`, which
    // is our borrowed slice of that length; it does not write to it.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETREGSET,
            tid,
            NT_X86_XSTATE,
            &mut iov as *mut libc::iovec,
        )
    };
    check(tid, "PTRACE_SETREGSET(NT_X86_XSTATE)", r)
}

/// PTRACE_GETSIGMASK (ptrace(2)): the blocked set, bit `n - 1` for signal
/// `n`.
///
/// Inside ppoll, pselect, epoll_pwait or sigsuspend this is the call's
/// temporary mask; the thread's own mask is then saved in the kernel (with
/// TIF_RESTORE_SIGMASK) and not readable. It becomes the blocked set again
/// once the thread passes the signal-delivery code without a signal, which
/// happens the first time it is resumed (e.g. by an injected system call).
pub fn get_sigmask(tid: i32) -> Result<u64, RegsError> {
    let mut mask: u64 = 0;
    // SAFETY: PTRACE_GETSIGMASK writes `addr` bytes (8, the kernel's sigset
    // size on x86_64) to `data`, which points to our u64.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGMASK,
            tid,
            std::mem::size_of::<u64>(),
            &mut mask as *mut u64,
        )
    };
    check(tid, "PTRACE_GETSIGMASK", r)?;
    Ok(mask)
}

/// PTRACE_SETSIGMASK (ptrace(2)). The kernel drops SIGKILL and SIGSTOP from
/// the set, and clears TIF_RESTORE_SIGMASK: do not use it on a thread that
/// still holds a temporary mask (see [`get_sigmask`]).
pub fn set_sigmask(tid: i32, mask: u64) -> Result<(), RegsError> {
    // SAFETY: PTRACE_SETSIGMASK reads `addr` bytes (8) from `data`, which
    // points to our u64.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETSIGMASK,
            tid,
            std::mem::size_of::<u64>(),
            &mask as *const u64,
        )
    };
    check(tid, "PTRACE_SETSIGMASK", r)
}

/// The values the kernel leaves in `rax` of a system call it interrupted
/// for a signal or a ptrace stop (`include/linux/errno.h`, negated); only a
/// tracer or a signal frame ever sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// -ERESTARTSYS (512): restarted unless a handler without SA_RESTART runs.
    Sys,
    /// -ERESTARTNOINTR (513): always restarted.
    NoIntr,
    /// -ERESTARTNOHAND (514): restarted unless a handler runs.
    NoHand,
    /// -ERESTART_RESTARTBLOCK (516): continued through restart_syscall(2)
    /// with the kernel's per-thread restart block (nanosleep, poll with a
    /// timeout, futex wait, …), or -EINTR if a handler runs.
    RestartBlock,
}

impl Restart {
    /// The errno value (positive) as in the kernel headers.
    pub fn code(self) -> i64 {
        match self {
            Restart::Sys => 512,
            Restart::NoIntr => 513,
            Restart::NoHand => 514,
            Restart::RestartBlock => 516,
        }
    }

    fn from_rax(rax: i64) -> Option<Restart> {
        match rax {
            -512 => Some(Restart::Sys),
            -513 => Some(Restart::NoIntr),
            -514 => Some(Restart::NoHand),
            -516 => Some(Restart::RestartBlock),
            _ => None,
        }
    }
}

/// Where a stopped thread stands with respect to system calls, read from its
/// general registers: `orig_rax` is the number of the call being made (-1
/// outside one: the kernel sets it on every other entry, interrupts and
/// exceptions included), `rax` its result or one of the restart codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyscallState {
    /// Not in a system call (`orig_rax` < 0): stopped in user code, e.g. a
    /// busy loop interrupted by PTRACE_INTERRUPT.
    User,
    /// At the entry of call `nr` (a syscall-entry stop): `rax` is -ENOSYS
    /// and the call has not run yet.
    Entry { nr: u64 },
    /// Call `nr` was interrupted and will be restarted (or fail with EINTR)
    /// as `restart` says when the thread resumes.
    Interrupted { nr: u64, restart: Restart },
    /// Call `nr` has returned `ret` (a syscall-exit stop, or a stop right
    /// after the call) and nothing is pending for it.
    Returned { nr: u64, ret: i64 },
}

impl SyscallState {
    /// Classifies `regs` of a stopped thread.
    pub fn of(regs: &libc::user_regs_struct) -> SyscallState {
        let orig = regs.orig_rax as i64;
        if orig < 0 {
            return SyscallState::User;
        }
        let nr = regs.orig_rax;
        let rax = regs.rax as i64;
        if rax == -(libc::ENOSYS as i64) {
            return SyscallState::Entry { nr };
        }
        match Restart::from_rax(rax) {
            Some(restart) => SyscallState::Interrupted { nr, restart },
            None => SyscallState::Returned { nr, ret: rax },
        }
    }

    /// True when the thread is inside a system call (at its entry, or
    /// interrupted in it).
    pub fn in_syscall(&self) -> bool {
        matches!(
            self,
            SyscallState::Entry { .. } | SyscallState::Interrupted { .. }
        )
    }
}

/// The registers to give a thread that is restored from `regs` (saved while
/// it was stopped), so that it carries on as the kernel would have let it:
///
/// - interrupted with -ERESTARTSYS, -ERESTARTNOINTR or -ERESTARTNOHAND:
///   `rip -= 2` (back onto the 2-byte `syscall` instruction) and
///   `rax = orig_rax`, so the call runs again;
/// - interrupted with -ERESTART_RESTARTBLOCK: `rax = -EINTR`, because the
///   kernel's restart block (e.g. nanosleep's remaining time) cannot be
///   rebuilt from userspace; the program sees the call fail with EINTR, which
///   it must handle anyway;
/// - anything else: unchanged.
///
/// `orig_rax` is left as it was. The rule is what the kernel does when no
/// handler runs; a restored thread that also gets a signal delivered at
/// once restarts an -ERESTARTSYS/-ERESTARTNOHAND call where the kernel would
/// have returned EINTR.
///
/// Not for a thread that stays where it is: the kernel applies the rule
/// itself when such a thread resumes (and [`crate::sys::inject::Injector`]
/// restores the unmodified registers).
pub fn regs_for_resume(regs: &libc::user_regs_struct) -> libc::user_regs_struct {
    let mut out = *regs;
    if let SyscallState::Interrupted { nr, restart } = SyscallState::of(regs) {
        match restart {
            Restart::Sys | Restart::NoIntr | Restart::NoHand => {
                out.rip = regs.rip.wrapping_sub(2);
                out.rax = nr;
            }
            Restart::RestartBlock => out.rax = (-(libc::EINTR as i64)) as u64,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(orig_rax: i64, rax: i64, rip: u64) -> libc::user_regs_struct {
        // SAFETY: user_regs_struct is plain integers; all zero is valid.
        let mut r: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        r.orig_rax = orig_rax as u64;
        r.rax = rax as u64;
        r.rip = rip;
        r
    }

    #[test]
    fn classify() {
        assert_eq!(SyscallState::of(&regs(-1, -512, 0)), SyscallState::User);
        assert_eq!(
            SyscallState::of(&regs(0, -38, 0)),
            SyscallState::Entry { nr: 0 }
        );
        assert_eq!(
            SyscallState::of(&regs(35, -516, 0)),
            SyscallState::Interrupted {
                nr: 35,
                restart: Restart::RestartBlock
            }
        );
        assert_eq!(
            SyscallState::of(&regs(1, 5, 0)),
            SyscallState::Returned { nr: 1, ret: 5 }
        );
        assert!(!SyscallState::of(&regs(1, -4, 0)).in_syscall());
        assert!(SyscallState::of(&regs(7, -514, 0)).in_syscall());
    }

    #[test]
    fn resume_rule() {
        for code in [512, 513, 514] {
            let r = regs_for_resume(&regs(0, -code, 0x1002));
            assert_eq!((r.rip, r.rax, r.orig_rax), (0x1000, 0, 0));
        }
        let r = regs_for_resume(&regs(35, -516, 0x1002));
        assert_eq!((r.rip, r.rax as i64), (0x1002, -4));
        let r = regs_for_resume(&regs(-1, -512, 0x1002));
        assert_eq!((r.rip, r.rax as i64), (0x1002, -512));
    }
}
