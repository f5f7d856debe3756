//! Reaching one mount of another mount namespace: open_tree(2) with
//! OPEN_TREE_CLONE, done by a forked helper inside that namespace, and the
//! resulting descriptor taken over with pidfd_getfd(2).
//!
//! The clone is a detached copy of that one mount alone (no submounts), so
//! its whole contents can be walked from outside, also what later mounts on
//! top of it or below it hide.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// `OPEN_TREE_CLONE` of `<linux/mount.h>`.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// How many mounts on top of the one wanted the helper takes away, at most.
const MAX_OVERMOUNTS: usize = 64;

/// pidfd_getfd(2): a duplicate of descriptor `fd` of the process behind
/// `pidfd`.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_getfd takes two descriptors numbers and flags (0), and
    // returns a new descriptor or -1.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `r` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Step numbers the helper reports on failure.
const STEPS: [&str; 6] = [
    "setns into the mount namespace",
    "unshare of a private copy",
    "making the copy private",
    "stat of the mount point",
    "umount of a mount on top of it",
    "open_tree(OPEN_TREE_CLONE)",
];

/// Clones the mount of device `dev` at `mountpoint` in the mount namespace
/// `ns` (a /proc/PID/ns/mnt descriptor): a helper enters it, makes a private
/// copy of it (so nothing changes in the original), takes away the mounts
/// stacked on `mountpoint` above the one of `dev` (in the copy, made
/// private first so that nothing propagates back), and clones that one.
/// Returns the detached mount, whose root the caller may walk.
pub fn clone_mount(
    ns: BorrowedFd<'_>,
    mountpoint: &CStr,
    dev: u64,
    timeout: Duration,
) -> io::Result<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: fork(2). The child runs only `helper`, which makes
    // async-signal-safe system calls on memory that existed before the fork
    // and then exits with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        helper(
            ns.as_raw_fd(),
            mountpoint,
            dev,
            w.as_raw_fd(),
            hold_r.as_raw_fd(),
        );
    }
    drop(w);
    drop(hold_r);
    let result = (|| {
        let pidfd = super::pidfd_open(pid)?;
        let mut word = [0u8; 8];
        let mut got = 0;
        let deadline = Instant::now() + timeout;
        while got < word.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !super::poll_in(r.as_raw_fd(), left)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the mount helper did not answer",
                ));
            }
            let n = nix::unistd::read(&r, &mut word[got..]).map_err(io::Error::from)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the mount helper died",
                ));
            }
            got += n;
        }
        let status = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let value = i32::from_le_bytes([word[4], word[5], word[6], word[7]]);
        if status != 0 {
            let step = STEPS.get(status as usize - 1).copied().unwrap_or("?");
            let e = io::Error::from_raw_os_error(value);
            return Err(io::Error::new(e.kind(), format!("{step}: {e}")));
        }
        pidfd_getfd(pidfd.as_fd(), value)
    })();
    drop(hold_w);
    // SAFETY: kill(2) and waitpid(2) on our own child, not reaped yet, with
    // a valid status pointer.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    result
}

/// Tells the parent (`status` 0 and the descriptor, or a step number and
/// an errno), waits until it is done with us, and exits.
fn report(out: i32, hold: i32, status: i32, value: i32) -> ! {
    let mut word = [0u8; 8];
    word[..4].copy_from_slice(&status.to_le_bytes());
    word[4..].copy_from_slice(&value.to_le_bytes());
    // SAFETY: write(2) of a buffer on our stack; read(2) blocks until the
    // parent closes the hold pipe (or kills us); _exit ends us.
    unsafe {
        libc::write(out, word.as_ptr().cast(), word.len());
        let mut b = 0u8;
        libc::read(hold, (&mut b as *mut u8).cast(), 1);
        libc::_exit(0)
    }
}

/// mount(2) with MS_REC | MS_PRIVATE on "/": every mount of the calling
/// process's namespace private (in that namespace only). False on failure,
/// errno set. Async-signal-safe.
fn make_all_private() -> bool {
    // SAFETY: mount(2) with NUL-terminated strings and no data.
    unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) == 0
    }
}

/// The helper child: never returns.
fn helper(ns: i32, mountpoint: &CStr, dev: u64, out: i32, hold: i32) -> ! {
    let report = |status: i32, value: i32| report(out, hold, status, value);
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // SAFETY: setns(2) and unshare(2) take plain integers.
    if unsafe { libc::setns(ns, libc::CLONE_NEWNS) } < 0 {
        report(1, errno());
    }
    // SAFETY: as above.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } < 0 {
        report(2, errno());
    }
    // The copy's mounts are peers of the originals where those are shared:
    // made private first, so that the umounts below stay in the copy.
    if !make_all_private() {
        report(3, errno());
    }
    for _ in 0..MAX_OVERMOUNTS {
        // SAFETY: an all-zero `struct stat` is a valid value to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: stat(2) of a NUL-terminated path into a valid buffer.
        if unsafe { libc::stat(mountpoint.as_ptr(), &mut st) } < 0 {
            report(4, errno());
        }
        if st.st_dev == dev {
            break;
        }
        // SAFETY: umount2(2) of a NUL-terminated path, in our private copy.
        if unsafe { libc::umount2(mountpoint.as_ptr(), libc::MNT_DETACH) } < 0 {
            report(5, errno());
        }
    }
    // SAFETY: open_tree(2) of a NUL-terminated path; returns a new
    // descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            mountpoint.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        report(6, errno());
    }
    report(0, fd as i32)
}

/// `MOVE_MOUNT_F_EMPTY_PATH` of `<linux/mount.h>`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Leaves the calling process's mount namespace with its root mount alone:
/// a clone of that one mount (open_tree(OPEN_TREE_CLONE), no submounts)
/// is put on top of "/" and made the root (pivot_root(".", ".")), and the
/// old root goes with every mount below it by one lazy umount. The same
/// result as a lazy umount of each other mount, with one wait for the
/// namespace lock's grace period instead of one per umount. Everything is
/// made private first (in this namespace only), so that taking the mounts
/// away does not reach the peers of the shared ones in the namespace this
/// one was copied from. The old root must not be shared (pivot_root
/// refuses that). The working directory is left at the new root. Returns
/// the step that failed and its error.
pub fn keep_only_root() -> Result<(), (&'static str, io::Error)> {
    let fail = |step: &'static str| Err((step, io::Error::last_os_error()));
    if !make_all_private() {
        return fail("making every mount private");
    }
    // SAFETY: open_tree(2) of a NUL-terminated path; returns a new
    // descriptor or -1.
    let r = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if r < 0 {
        return fail("open_tree(OPEN_TREE_CLONE) of /");
    }
    // SAFETY: `r` is a new descriptor that nothing else owns.
    let tree = unsafe { OwnedFd::from_raw_fd(r as i32) };
    // SAFETY: move_mount(2) of the detached tree (an empty path relative to
    // its descriptor) onto the NUL-terminated path "/".
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c"/".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return fail("move_mount of the clone onto /");
    }
    // SAFETY: fchdir(2) to a descriptor we own.
    if unsafe { libc::fchdir(tree.as_raw_fd()) } < 0 {
        return fail("fchdir into the clone");
    }
    // SAFETY: pivot_root(2) of two NUL-terminated paths.
    if unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } < 0 {
        return fail("pivot_root(\".\", \".\")");
    }
    // SAFETY: umount2(2) of a NUL-terminated path: the old root, now on
    // top of the new one.
    if unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) } < 0 {
        return fail("umount of the old root");
    }
    // SAFETY: chdir(2) to a NUL-terminated path.
    if unsafe { libc::chdir(c"/".as_ptr()) } < 0 {
        return fail("chdir /");
    }
    Ok(())
}
