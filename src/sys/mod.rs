//! The only place with `unsafe`: thin wrappers over system calls that neither
//! `std` nor `nix` offer in a safe form. Each wrapper names its system call
//! and man page, and each `unsafe` block says why it is sound.

pub mod clone;
pub mod inject;
pub mod mnt;
pub mod nsquery;
pub mod pipe;
pub mod ptrace;
pub mod regs;
pub mod tun;
pub mod vm;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Maps a file read-only (mmap(2)).
pub fn map_readonly(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. Another
    // process truncating or rewriting the file under us could change the
    // bytes (or raise SIGBUS on truncation); the image reader treats every
    // byte as untrusted and re-checks bounds on each access, and kstate never
    // maps a file it writes itself.
    unsafe { memmap2::MmapOptions::new().map(file) }
}

/// ioctl(NS_GET_PARENT) / ioctl(NS_GET_USERNS) on a namespace file
/// (ioctl_ns(2)). Returns `None` when the kernel says the answer lies outside
/// the caller's namespaces (EPERM) or there is none.
fn ns_ioctl_fd(fd: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<Option<OwnedFd>> {
    // SAFETY: NS_GET_PARENT and NS_GET_USERNS take no argument and return a
    // new file descriptor or -1; `fd` is a valid open descriptor for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EPERM) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just returned `r` as a new descriptor that nothing
    // else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r) }))
}

/// The parent of a pid or user namespace (NS_GET_PARENT), `None` at the top.
pub fn ns_get_parent(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    ns_ioctl_fd(fd, libc::NS_GET_PARENT)
}

/// The user namespace owning a namespace (NS_GET_USERNS), `None` when it is
/// outside the caller's reach.
pub fn ns_get_userns(fd: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    ns_ioctl_fd(fd, libc::NS_GET_USERNS)
}

/// The CLONE_NEW* type of a namespace file (NS_GET_NSTYPE).
pub fn ns_get_nstype(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns an int or -1.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// The system page size (sysconf(3)).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if r > 0 {
        r as usize
    } else {
        4096
    }
}

/// Whether `fd` is an open descriptor of this process (fcntl F_GETFD).
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table; an unused number
    // gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// fcntl(F_DUPFD_CLOEXEC): a duplicate of our `fd` numbered `min` or above.
pub fn dup_above(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

/// dup3(2): makes `new` a copy of `old` (closing what `new` was), with
/// O_CLOEXEC in `flags` or not. The caller gives up any ownership of `new`.
pub fn dup3(old: RawFd, new: RawFd, flags: i32) -> io::Result<()> {
    if old == new {
        return Ok(());
    }
    // SAFETY: dup3 on plain descriptor numbers; the caller owns the number
    // `new` in the sense that nothing else in this process uses it.
    if unsafe { libc::dup3(old, new, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// poll(2) for input on one descriptor, up to `timeout`.
pub fn poll_in(fd: RawFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd.
    let r = unsafe {
        libc::poll(
            &mut pfd,
            1,
            timeout.as_millis().min(i32::MAX as u128) as i32,
        )
    };
    match r {
        r if r < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of our descendants come to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// sigtimedwait(2) for the signals of `set` (blocked by the caller), up to
/// `timeout`; the signal taken, if any, is dropped (the caller only wants
/// to be woken).
pub fn sigtimedwait(set: &nix::sys::signal::SigSet, timeout: std::time::Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid sigset_t, the siginfo pointer may be null and
    // `ts` is a valid timespec; nothing is kept after the call.
    let _ = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
}
