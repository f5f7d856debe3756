//! Reading what only a task inside a namespace can read (its hostname, its
//! clock offsets, its own view of a user namespace's maps, its ns_last_pid).
//!
//! setns(2) changes the calling thread for good, so the work happens in a
//! forked child: it enters the namespace, reads, writes the answers to a pipe
//! and exits. Between fork and exit the child only makes async-signal-safe
//! system calls on memory prepared before the fork (no allocation), so this is
//! sound even when the caller has other threads.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::clone::{clone3_raw, CloneArgs};

/// What the child does once inside the namespace.
pub enum Query<'a> {
    /// Reads each file; one answer per file.
    ReadFiles(&'a [&'a CStr]),
    /// uname(2): two answers, the nodename and the domainname.
    Uname,
    /// Inside a pid namespace at `levels` levels below the caller's: creates
    /// a task with clone3(set_tid) holding the same pid at each of those
    /// levels (so no level's pid cursor moves), and that task reads
    /// /proc/sys/kernel/ns_last_pid. Pids `first`, `first - 1`, … are tried
    /// in turn, `tries` of them, until one is free at every level. One answer.
    LastPid {
        levels: usize,
        first: i32,
        tries: i32,
    },
}

/// A query failed: at which step, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct QueryError {
    pub step: &'static str,
    #[source]
    pub source: io::Error,
}

fn qerr(step: &'static str) -> impl FnOnce(io::Error) -> QueryError {
    move |source| QueryError { step, source }
}

const ERR_MARK: u32 = u32::MAX;
const MAX_ANSWER: usize = 8192;
const STEP_SETNS: i32 = 1;
const STEP_OPEN: i32 = 2;
const STEP_READ: i32 = 3;
const STEP_CLONE3: i32 = 4;
const STEP_UNAME: i32 = 5;

/// Runs `q` inside the namespace `ns` (of CLONE_NEW* type `nstype`).
pub fn query(
    ns: BorrowedFd<'_>,
    nstype: libc::c_int,
    q: &Query<'_>,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>, QueryError> {
    let (rfd, wfd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| qerr("pipe")(io::Error::from(e)))?;
    // SAFETY: fork(2). The child runs only `child_main`, which makes
    // async-signal-safe system calls on memory that existed before the fork
    // and never returns (it ends in _exit).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(qerr("fork")(io::Error::last_os_error()));
    }
    if pid == 0 {
        child_main(ns.as_raw_fd(), nstype, q, wfd.as_raw_fd());
    }
    drop(wfd);
    let read = read_all(&rfd, timeout);
    if read.is_err() {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status = 0;
    // SAFETY: waitpid(2) on our own child with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    decode(&read.map_err(qerr("read answer"))?)
}

fn read_all(fd: &OwnedFd, timeout: Duration) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "namespace helper did not answer in time",
            ));
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            continue;
        }
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
}

fn decode(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, QueryError> {
    let short = || {
        qerr("decode answer")(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "namespace helper's answer is cut short",
        ))
    };
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(short)?;
        let len = u32::from_ne_bytes(*len);
        if len == ERR_MARK {
            let (step, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let (errno, _) = rest.split_first_chunk::<4>().ok_or_else(short)?;
            let step = match i32::from_ne_bytes(*step) {
                STEP_SETNS => "setns",
                STEP_OPEN => "open",
                STEP_READ => "read",
                STEP_CLONE3 => "clone3 with set_tid",
                STEP_UNAME => "uname",
                _ => "namespace helper",
            };
            return Err(qerr(step)(io::Error::from_raw_os_error(
                i32::from_ne_bytes(*errno),
            )));
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(short());
        }
        answers.push(rest[..len].to_vec());
        bytes = &rest[len..];
    }
    Ok(answers)
}

// ---- child side: async-signal-safe only ----

fn put(fd: RawFd, bytes: &[u8]) {
    let mut off = 0;
    while off < bytes.len() {
        // SAFETY: the slice is valid for reads of its length.
        let n = unsafe { libc::write(fd, bytes[off..].as_ptr().cast(), bytes.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

fn send(fd: RawFd, answer: &[u8]) {
    put(fd, &(answer.len() as u32).to_ne_bytes());
    put(fd, answer);
}

fn send_errno(fd: RawFd, step: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    let errno = unsafe { *libc::__errno_location() };
    put(fd, &ERR_MARK.to_ne_bytes());
    put(fd, &step.to_ne_bytes());
    put(fd, &errno.to_ne_bytes());
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit(2) ends the process without running atexit handlers or
    // destructors that belong to the parent.
    unsafe { libc::_exit(code) }
}

fn read_file(fd: RawFd, path: &CStr) -> bool {
    // SAFETY: `path` is NUL-terminated.
    let f = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if f < 0 {
        send_errno(fd, STEP_OPEN);
        return false;
    }
    let mut buf = [0u8; MAX_ANSWER];
    let mut len = 0;
    while len < buf.len() {
        // SAFETY: the tail of `buf` is writable for the length given.
        let n = unsafe { libc::read(f, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
        if n < 0 {
            send_errno(fd, STEP_READ);
            return false;
        }
        if n == 0 {
            break;
        }
        len += n as usize;
    }
    send(fd, &buf[..len]);
    true
}

fn cstr_field(field: &[libc::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { core::slice::from_raw_parts(field.as_ptr().cast(), field.len()) };
    let n = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..n]
}

fn child_main(ns: RawFd, nstype: libc::c_int, q: &Query<'_>, fd: RawFd) -> ! {
    // SAFETY: setns(2) on a descriptor the parent holds open.
    if unsafe { libc::setns(ns, nstype) } < 0 {
        send_errno(fd, STEP_SETNS);
        exit(1);
    }
    match q {
        Query::ReadFiles(paths) => {
            for p in paths.iter() {
                if !read_file(fd, p) {
                    exit(1);
                }
            }
        }
        Query::Uname => {
            // SAFETY: utsname is plain data; all-zero is a valid value.
            let mut u: libc::utsname = unsafe { core::mem::zeroed() };
            // SAFETY: `u` is a valid, writable utsname.
            if unsafe { libc::uname(&mut u) } < 0 {
                send_errno(fd, STEP_UNAME);
                exit(1);
            }
            send(fd, cstr_field(&u.nodename));
            send(fd, cstr_field(&u.domainname));
        }
        Query::LastPid {
            levels,
            first,
            tries,
        } => {
            let mut set_tid = [0i32; 33];
            let levels = (*levels).min(set_tid.len());
            for k in 0..*tries {
                for slot in set_tid.iter_mut().take(levels) {
                    *slot = first - k;
                }
                let args = CloneArgs {
                    exit_signal: libc::SIGCHLD as u64,
                    set_tid: set_tid.as_ptr() as u64,
                    set_tid_size: levels as u64,
                    ..CloneArgs::default()
                };
                let r = clone3_raw(&args);
                if r == 0 {
                    let ok = read_file(fd, c"/proc/sys/kernel/ns_last_pid");
                    exit(if ok { 0 } else { 1 });
                }
                if r > 0 {
                    let mut status = 0;
                    // SAFETY: waitpid(2) on the task just created.
                    unsafe { libc::waitpid(r as i32, &mut status, 0) };
                    exit(0);
                }
                // SAFETY: reads this thread's errno.
                let errno = unsafe { *libc::__errno_location() };
                if errno != libc::EEXIST {
                    break;
                }
            }
            send_errno(fd, STEP_CLONE3);
            exit(1);
        }
    }
    exit(0)
}
