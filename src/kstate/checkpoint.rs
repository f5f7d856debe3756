//! `kstate checkpoint`: freeze → collect → dump → release.
//!
//! Collection reads everything into the registry while the tree is frozen;
//! the dump then writes the records in dependency order (user namespaces,
//! pid namespaces by level, the other namespaces, nsproxies, tasks), so every
//! reference points to a record already written. The tree is released after
//! the image is complete, and on every error.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use super::freeze::{self, FrozenTree};
use super::output::Output;
use super::registry::{Registry, TaskState};
use super::Error;
use crate::image::{HeaderInfo, ImageWriter};
use crate::objects::{core, files, mm, mnt_ns, namespace, net, nsproxy, task, vma, ObjectError};
use crate::sys::inject::Injector;

#[derive(Clone, Debug)]
pub struct CheckpointOptions {
    /// Root of the tree (`-t`).
    pub root: i32,
    /// Image path, `-` for standard output.
    pub output: PathBuf,
    /// Keep the tree running after the checkpoint (`--leave-running`);
    /// otherwise it is killed once the image is complete, as CRIU does.
    pub leave_running: bool,
    /// `--external mnt[MOUNTPOINT]:KEY`: mounts recorded as external.
    pub external: Vec<String>,
    /// `--sync`: fdatasync the image before it is renamed into place.
    pub sync: bool,
}

/// What a checkpoint wrote.
#[derive(Clone, Debug)]
pub struct Summary {
    pub tasks: usize,
    pub namespaces: usize,
    pub external: usize,
    pub nsproxies: usize,
    pub bytes: u64,
}

/// Collects the whole tree into a registry. The tree must be frozen.
/// `external` holds the `--external` specs.
pub fn collect(frozen: &FrozenTree, external: &[String]) -> Result<Registry, Error> {
    let mut reg = Registry::default();
    for p in &frozen.processes {
        let key = nsproxy::collect(&mut reg, p.pid, &p.threads)?;
        let info = task::collect(p.pid, &p.threads)?;
        let np = reg.use_nsproxy(key);
        let parent = p
            .parent
            .and_then(|i| reg.find_task(frozen.processes[i].pid));
        reg.add_task(info, parent, np);
    }
    namespace::mark_external(&mut reg, &frozen.pids())?;
    namespace::collect_contents(&mut reg)?;
    mnt_ns::collect_all(&mut reg, external)?;
    net::collect(&mut reg)?;
    freeze::test_pause("after-net");
    for (i, p) in frozen.processes.iter().enumerate() {
        reg.tasks[i].state = Some(collect_state(&mut reg, p.pid, &p.threads)?);
    }
    mnt_ns::check_files(&reg)?;
    // The consistency digest: the network state read again must not have
    // changed (the tree is frozen, but outside processes are not).
    net::verify(&reg)?;
    Ok(reg)
}

/// Collects what a task needs to run again: its core (through injected
/// system calls), its memory layout and its files. Refuses what cannot be
/// restored, naming the task and the object.
fn collect_state(reg: &mut Registry, pid: i32, threads: &[i32]) -> Result<TaskState, Error> {
    let unsupported = |object: String| Error::Object(ObjectError::Unsupported { pid, object });
    if threads.len() > 1 {
        return Err(unsupported(format!(
            "{} threads (restoring threads is not supported yet)",
            threads.len()
        )));
    }
    let mut inj = Injector::new(pid).map_err(|e| {
        Error::Object(ObjectError::Task {
            pid,
            what: e.to_string(),
        })
    })?;
    let core = core::collect(pid, &mut inj);
    inj.finish().map_err(|e| {
        Error::Object(ObjectError::Task {
            pid,
            what: e.to_string(),
        })
    })?;
    let core = core?;
    let mm = mm::collect(pid).map_err(|e| {
        Error::Object(ObjectError::Task {
            pid,
            what: e.to_string(),
        })
    })?;
    vma::check_supported(pid, &mm)?;
    let fds = files::collect(pid)?;
    for f in &fds {
        if let files::FdKind::Pipe { ino, .. } = f.kind {
            if !reg.pipes.iter().any(|p| p.ino == ino) {
                reg.pipes.push(files::pipe_contents(pid, f.fd, ino)?);
            }
        }
    }
    Ok(TaskState { core, mm, fds })
}

/// Writes the registry as an image.
pub fn dump<W: Write>(reg: &mut Registry, out: W) -> Result<u64, Error> {
    dump_patched(reg, out, false).map(|(bytes, _)| bytes)
}

/// Like [`dump`]; with `patches`, bulk data is read once and the CRCs of
/// its records are returned as (file offset, CRC) for the caller to write
/// in place once the output is flushed (see
/// [`ImageWriter::push_extent_deferred`]).
pub fn dump_patched<W: Write>(
    reg: &mut Registry,
    out: W,
    patches: bool,
) -> Result<(u64, Vec<(u64, u32)>), Error> {
    let info = HeaderInfo {
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().as_encoded_bytes().to_vec())
            .unwrap_or_default(),
        page_size: crate::sys::page_size() as u32,
        ..HeaderInfo::default()
    };
    let werr = |source| Error::Object(crate::objects::ObjectError::Write(source));
    let mut w = ImageWriter::new(out, &info).map_err(werr)?;
    if patches {
        w.allow_patches();
    }
    namespace::dump_all(reg, &mut w)?;
    mnt_ns::dump_all(reg, &mut w)?;
    net::dump(reg, &mut w)?;
    nsproxy::dump_all(reg, &mut w)?;
    task::dump_all(reg, &mut w)?;
    let page = crate::sys::page_size() as u64;
    let total: u64 = reg
        .tasks
        .iter()
        .filter_map(|t| t.state.as_ref())
        .map(|s| s.mm.dump_pages() * page)
        .sum();
    let mut progress = super::progress::Progress::new("dumping memory", total);
    for t in &reg.tasks {
        if let Some(s) = &t.state {
            core::dump(&mut w, t.image_ref, &s.core)?;
            vma::dump(
                &mut w,
                t.image_ref,
                t.info.pid,
                &s.mm,
                s.core.brk,
                &mut progress,
            )?;
        }
    }
    drop(progress);
    let pipes = files::dump_pipes(&mut w, &reg.pipes)?;
    for t in &reg.tasks {
        if let Some(s) = &t.state {
            files::dump_fds(&mut w, t.image_ref, &s.fds, &pipes)?;
        }
    }
    let bytes = w.position();
    let (_, patches) = w.finish_patched().map_err(werr)?;
    Ok((bytes, patches))
}

/// Checkpoints the tree rooted at `opts.root`; the tree keeps running.
pub fn checkpoint(opts: &CheckpointOptions) -> Result<Summary, Error> {
    let mut output = Output::create(&opts.output)?;
    let mut frozen = FrozenTree::freeze(opts.root)?;
    freeze::test_pause("after-freeze");
    let mut reg = match collect(&frozen, &opts.external) {
        Ok(reg) => reg,
        Err(e) => {
            // A task that died under us explains most collection errors:
            // say that rather than the /proc read that tripped over it.
            frozen.verify_alive()?;
            return Err(e);
        }
    };
    frozen.verify_alive()?;
    let path = output.path().to_path_buf();
    let seekable = output.can_patch();
    let (bytes, patches) = {
        let mut w = BufWriter::with_capacity(1 << 20, output.writer());
        let done = dump_patched(&mut reg, &mut w, seekable).map_err(|e| match e {
            Error::Object(crate::objects::ObjectError::Write(source)) => Error::Output {
                path: path.clone(),
                source,
            },
            other => other,
        })?;
        w.flush().map_err(|source| Error::Output {
            path: path.clone(),
            source,
        })?;
        done
    };
    output.patch(&patches)?;
    output.commit(opts.sync)?;
    if !opts.leave_running {
        // The image is complete: the tree ends here, as with CRIU. Killed
        // while still frozen, it runs no further instruction.
        for p in &frozen.processes {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    frozen.release();
    let external = reg.namespaces.iter().filter(|n| n.external).count();
    log::info!(
        "checkpoint: {} tasks, {} namespaces ({} external), {} nsproxies, written to {}",
        reg.tasks.len(),
        reg.namespaces.len(),
        external,
        reg.nsproxies.len(),
        path.display()
    );
    Ok(Summary {
        tasks: reg.tasks.len(),
        namespaces: reg.namespaces.len(),
        external,
        nsproxies: reg.nsproxies.len(),
        bytes,
    })
}
