//! Pipes: capacity (fcntl F_GETPIPE_SZ) and reading what is in one without
//! consuming it (tee(2) into a private pipe).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// fcntl(F_GETPIPE_SZ): the pipe's capacity in bytes.
pub fn capacity(fd: &OwnedFd) -> io::Result<u32> {
    // SAFETY: F_GETPIPE_SZ takes no argument and returns an int or -1.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as u32)
}

/// The bytes sitting in the pipe `src` (a read end), left in place: tee(2)
/// duplicates them into a private pipe of the same capacity, which is then
/// drained.
pub fn peek(src: &OwnedFd, capacity: u32) -> io::Result<Vec<u8>> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    // SAFETY: F_SETPIPE_SZ takes an int capacity; `w` is our own pipe.
    if unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, capacity as libc::c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: tee(2) between two pipe descriptors we hold; no memory passed.
    let n = unsafe {
        libc::tee(
            src.as_raw_fd(),
            w.as_raw_fd(),
            capacity as usize,
            libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        // An empty pipe.
        if e.raw_os_error() == Some(libc::EAGAIN) {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    let mut out = vec![0u8; n as usize];
    let mut got = 0;
    while got < out.len() {
        let k = nix::unistd::read(&r, &mut out[got..])?;
        if k == 0 {
            break;
        }
        got += k;
    }
    out.truncate(got);
    Ok(out)
}

/// fcntl(F_SETPIPE_SZ): sets a pipe's capacity (at least `bytes`).
pub fn set_capacity(fd: &OwnedFd, bytes: u32) -> io::Result<()> {
    // SAFETY: F_SETPIPE_SZ takes an int capacity.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes as libc::c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
