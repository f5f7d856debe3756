//! The only place with `unsafe`: thin wrappers over system calls that neither
//! `std` nor `nix` offer in a safe form. Each wrapper names its system call
//! and man page, and each `unsafe` block says why it is sound.

pub mod nsquery;
pub mod ptrace;

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

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
