//! clone3(2) with set_tid: create a task with chosen pids, fork-like.

use std::io;

/// `struct clone_args` of `<linux/sched.h>` (the version with set_tid).
#[repr(C)]
#[derive(Default)]
pub(crate) struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// Raw clone3(2); returns the kernel's answer (0 in the child, the pid in
/// the parent, -1 with errno set on failure).
///
/// Only for callers that know the child can run on a copy of the caller's
/// memory: without CLONE_VM the child gets a copy of the address space, so
/// it keeps running the caller's code on its own stack.
pub(crate) fn clone3_raw(args: &CloneArgs) -> libc::c_long {
    // SAFETY: `args` is a valid clone_args of the size passed; without
    // CLONE_VM (never passed by this module's callers) the new task runs on
    // its own copy of memory, like fork(2).
    unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *const CloneArgs,
            core::mem::size_of::<CloneArgs>(),
        )
    }
}

/// Creates a child like fork(2), with the pid `set_tid[0]` in the innermost
/// pid namespace (and `set_tid[k]` k levels up). `flags` may add CLONE_NEW*
/// flags, never CLONE_VM. Returns 0 in the child and the child's pid (as the
/// caller sees it) in the parent.
///
/// The caller must be single-threaded (the child is a copy of this thread
/// only; with other threads, locks they hold would stay held forever).
pub fn fork_with_pids(flags: u64, set_tid: &[i32]) -> io::Result<i32> {
    if flags & libc::CLONE_VM as u64 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "CLONE_VM is not allowed",
        ));
    }
    let args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
        set_tid: set_tid.as_ptr() as u64,
        set_tid_size: set_tid.len() as u64,
        ..CloneArgs::default()
    };
    let r = clone3_raw(&args);
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as i32)
}

/// close_range(2) over `first..=last`.
pub fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range takes plain integers; closing descriptors is the
    // caller's intent (it owns none of them afterwards).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// _exit(2): ends a child without running the parent's destructors.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// rt_sigaction(sig, SIG_DFL): back to the default disposition. Errors (for
/// SIGKILL, SIGSTOP, out-of-range numbers) are ignored.
pub fn reset_signal(sig: i32) {
    let act = [0u64; 4];
    // SAFETY: `act` is a valid kernel `struct sigaction` (handler SIG_DFL, no
    // flags, empty mask) of the size passed; no old action is asked for.
    unsafe {
        libc::syscall(libc::SYS_rt_sigaction, sig, act.as_ptr(), 0usize, 8usize);
    }
}
