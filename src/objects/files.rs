//! Open files: the fd table of a task (regular files, character devices,
//! pipes with the bytes in flight, inherited terminals), cwd and root.
//!
//! Anything else (sockets, eventfd, epoll, …) is refused at checkpoint with an
//! error naming the task, the fd and what it is, never skipped.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

use serde_json::{json, Map, Value};

use super::namespace::ref_json;
use super::{proc_err, ObjectError};
use crate::image::format::fd_kind;
use crate::image::reader::{FdView, PipeView};
use crate::procfs;

/// Character devices a restarted task may open again by path.
const REOPENABLE_DEVICES: [&[u8]; 5] = [
    b"/dev/null",
    b"/dev/zero",
    b"/dev/full",
    b"/dev/random",
    b"/dev/urandom",
];

/// What an fd refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A regular file, reopened by path and checked by identity.
    Regular,
    /// One of [`REOPENABLE_DEVICES`].
    Device,
    /// A pipe end; the pipe is shared by inode across the tree.
    Pipe { ino: u64, write: bool },
    /// A terminal (or anything the user says is external): restored from
    /// the restarting process's own descriptor of the same number.
    Inherited,
}

/// One entry of a task's fd table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdInfo {
    pub fd: i32,
    pub kind: FdKind,
    /// The open flags (fdinfo `flags`, octal there), O_CLOEXEC included.
    pub flags: u32,
    pub pos: u64,
    pub path: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: u64,
}

/// A pipe seen in the tree, with what sits in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PipeInfo {
    pub ino: u64,
    pub capacity: u32,
    pub data: Vec<u8>,
}

fn is_tty(path: &[u8]) -> bool {
    path.starts_with(b"/dev/pts/") || path.starts_with(b"/dev/tty") || path == b"/dev/console"
}

/// Reads task `pid`'s fd table.
pub fn collect(pid: i32) -> Result<Vec<FdInfo>, ObjectError> {
    let dir = procfs::pid_path(pid, "fd");
    let fds = procfs::numeric_entries(&dir).map_err(proc_err(pid, &dir))?;
    let mut out = Vec::with_capacity(fds.len());
    for fd in fds {
        let link = dir.join(fd.to_string());
        let target = procfs::readlink(&link).map_err(proc_err(pid, &link))?;
        let info_path = procfs::pid_path(pid, &format!("fdinfo/{fd}"));
        let info = procfs::read(&info_path).map_err(proc_err(pid, &info_path))?;
        let pos = procfs::field(&info, b"pos").and_then(procfs::parse_u64);
        let flags = procfs::field(&info, b"flags")
            .and_then(|f| u32::from_str_radix(std::str::from_utf8(f).ok()?, 8).ok());
        let (Some(pos), Some(flags)) = (pos, flags) else {
            return Err(ObjectError::ProcParse {
                pid,
                path: info_path,
                field: "pos/flags",
            });
        };
        let meta = std::fs::metadata(&link).map_err(proc_err(pid, &link))?;
        let ft = meta.file_type();
        let unsupported = |what: &str| ObjectError::Unsupported {
            pid,
            object: format!("fd {fd} ({}): {what}", procfs::show(&target)),
        };
        let kind = if ft.is_file() {
            if target.ends_with(b" (deleted)") {
                return Err(unsupported("a deleted file"));
            }
            FdKind::Regular
        } else if ft.is_fifo() && target.starts_with(b"pipe:[") {
            FdKind::Pipe {
                ino: meta.ino(),
                write: flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32,
            }
        } else if ft.is_char_device() && REOPENABLE_DEVICES.contains(&target.as_slice()) {
            FdKind::Device
        } else if ft.is_char_device() && is_tty(&target) {
            FdKind::Inherited
        } else if ft.is_socket() {
            return Err(unsupported("a socket"));
        } else {
            return Err(unsupported("a kind of file kstate cannot restore yet"));
        };
        log::debug!(
            "collect: task {pid} fd {fd} {kind:?} {}",
            procfs::show(&target)
        );
        out.push(FdInfo {
            fd,
            kind,
            flags,
            pos,
            path: target,
            dev: meta.dev(),
            ino: meta.ino(),
            mode: meta.mode(),
            size: meta.size(),
        });
    }
    Ok(out)
}

/// The bytes in flight in the pipe behind `pid`'s fd `fd`, read without
/// consuming them: the pipe is opened again through /proc and tee(2) copies
/// its contents into a pipe of our own.
pub fn pipe_contents(pid: i32, fd: i32, ino: u64) -> Result<PipeInfo, ObjectError> {
    let link = procfs::pid_path(pid, &format!("fd/{fd}"));
    let src: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&link)
        .map_err(proc_err(pid, &link))?
        .into();
    let capacity = crate::sys::pipe::capacity(&src).map_err(proc_err(pid, &link))?;
    let data = crate::sys::pipe::peek(&src, capacity).map_err(proc_err(pid, &link))?;
    Ok(PipeInfo {
        ino,
        capacity,
        data,
    })
}

/// The status flags of `flags` (the saved open flags) that F_SETFL can
/// set, on `fd`: a pipe made anew at restart starts without them.
pub fn set_status_flags(fd: &OwnedFd, flags: u32) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let settable = (libc::O_NONBLOCK | libc::O_APPEND | libc::O_DIRECT | libc::O_NOATIME) as u32;
    let want = OFlag::from_bits_truncate((flags & settable) as i32);
    fcntl(fd, FcntlArg::F_SETFL(want))?;
    Ok(())
}

/// The cwd or root link of a task.
pub fn task_path(pid: i32, which: &str) -> Result<Vec<u8>, ObjectError> {
    let link = procfs::pid_path(pid, which);
    procfs::readlink(&link).map_err(proc_err(pid, &link))
}

pub fn describe_pipe(p: &PipeView<'_>, out: &mut Map<String, Value>) {
    out.insert("ino".into(), json!(p.rec.ino.get()));
    out.insert("capacity".into(), json!(p.rec.capacity.get()));
    out.insert("in_flight".into(), json!(p.data.len()));
}

pub fn describe_fd(f: &FdView<'_>, out: &mut Map<String, Value>) {
    let kind = match f.rec.kind.get() {
        fd_kind::REGULAR => "regular",
        fd_kind::DEVICE => "device",
        fd_kind::PIPE_READ => "pipe_read",
        fd_kind::PIPE_WRITE => "pipe_write",
        fd_kind::INHERITED => "inherited",
        _ => "?",
    };
    out.insert("task".into(), ref_json(f.rec.task));
    out.insert("fd".into(), json!(f.rec.fd.get()));
    out.insert("type".into(), json!(kind));
    out.insert("pipe".into(), ref_json(f.rec.pipe));
    out.insert("flags".into(), json!(format!("{:#o}", f.rec.flags.get())));
    out.insert("pos".into(), json!(f.rec.pos.get()));
    // A pipe end is known by its pipe record; its inode is the pipe's.
    if f.rec.pipe.is_undef() {
        out.insert("path".into(), json!(procfs::show(f.path)));
        out.insert("dev".into(), json!(f.rec.dev.get()));
        out.insert("ino".into(), json!(f.rec.ino.get()));
        out.insert("size".into(), json!(f.rec.size.get()));
    }
}

// ---- dump ----

use std::collections::HashMap;
use std::io::Write;

use zerocopy::little_endian::{U32, U64};

use crate::image::format::{FdRecord, PipeRecord};
use crate::image::{ImageWriter, Kind, Ref};

/// Dumps every pipe once; returns each pipe's record by inode.
pub fn dump_pipes<W: Write>(
    w: &mut ImageWriter<W>,
    pipes: &[PipeInfo],
) -> Result<HashMap<u64, Ref>, ObjectError> {
    let mut refs = HashMap::new();
    for p in pipes {
        let rec = PipeRecord {
            ino: U64::new(p.ino),
            capacity: U32::new(p.capacity),
            data_len: U32::new(p.data.len() as u32),
        };
        let r = w
            .push(Kind::Pipe, &rec, &[&p.data])
            .map_err(ObjectError::Write)?;
        log::debug!(
            "dump: pipe {} ({} bytes in flight) as record {}",
            p.ino,
            p.data.len(),
            r.id.get()
        );
        refs.insert(p.ino, r);
    }
    Ok(refs)
}

/// Dumps task `task`'s fd table.
pub fn dump_fds<W: Write>(
    w: &mut ImageWriter<W>,
    task: Ref,
    fds: &[FdInfo],
    pipes: &HashMap<u64, Ref>,
) -> Result<(), ObjectError> {
    for f in fds {
        let (kind, pipe) = match f.kind {
            FdKind::Regular => (fd_kind::REGULAR, Ref::UNDEF),
            FdKind::Device => (fd_kind::DEVICE, Ref::UNDEF),
            FdKind::Inherited => (fd_kind::INHERITED, Ref::UNDEF),
            FdKind::Pipe { ino, write } => (
                if write {
                    fd_kind::PIPE_WRITE
                } else {
                    fd_kind::PIPE_READ
                },
                pipes.get(&ino).copied().unwrap_or(Ref::UNDEF),
            ),
        };
        let rec = FdRecord {
            task,
            pipe,
            fd: U32::new(f.fd as u32),
            kind: U32::new(kind),
            flags: U32::new(f.flags),
            mode: U32::new(f.mode),
            pos: U64::new(f.pos),
            dev: U64::new(f.dev),
            ino: U64::new(f.ino),
            size: U64::new(f.size),
            path_len: U32::new(f.path.len() as u32),
            reserved: U32::ZERO,
        };
        w.push(Kind::Fd, &rec, &[&f.path])
            .map_err(ObjectError::Write)?;
    }
    Ok(())
}
