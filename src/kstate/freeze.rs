//! Freezing a process tree with ptrace, and letting it go exactly as it was.
//!
//! Each thread is attached with PTRACE_SEIZE (which sends no signal) and
//! stopped with PTRACE_INTERRUPT. A process's threads are listed again after
//! each round until no new one appears, and its children are read only once
//! all its threads are stopped, so a fork cannot slip past the walk.
//!
//! A [`FrozenTree`] can only be made by [`FrozenTree::freeze`], and collection
//! takes one, so "frozen before collected" is enforced by the types. Dropping
//! it detaches every thread, on success and on every error path.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::procfs;
use crate::sys::ptrace::{self, Stop};

/// How long a single thread may take to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the tree could not be frozen, or stopped being whole.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("task {pid} does not exist")]
    NoSuchTask { pid: i32 },
    #[error("task {tid}: {step}: {source}")]
    Ptrace {
        tid: i32,
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("task {tid} exited while being checkpointed ({how})")]
    Exited { tid: i32, how: String },
    #[error("task {tid} did not stop within {secs} s")]
    Timeout { tid: i32, secs: u64 },
    #[error("task {pid}: {path}: {source}")]
    Proc {
        pid: i32,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A process of the frozen tree.
#[derive(Clone, Debug)]
pub struct FrozenProcess {
    pub pid: i32,
    /// Index of the parent in [`FrozenTree::processes`], `None` for the root.
    pub parent: Option<usize>,
    pub threads: Vec<i32>,
}

#[derive(Debug)]
struct Seized {
    tid: i32,
    /// A signal that stopped the thread on its way to delivery: given back
    /// at detach so that it is delivered as it would have been.
    pending: i32,
    gone: bool,
}

/// A tree whose every thread is in a ptrace stop.
#[derive(Debug)]
pub struct FrozenTree {
    /// Parents before children (depth first, in the order of the children files).
    pub processes: Vec<FrozenProcess>,
    seized: Vec<Seized>,
}

fn ptrace_err(tid: i32, step: &'static str) -> impl FnOnce(std::io::Error) -> FreezeError {
    move |source| {
        if source.raw_os_error() == Some(libc::ESRCH) {
            FreezeError::Exited {
                tid,
                how: format!("{step} found it gone"),
            }
        } else {
            FreezeError::Ptrace { tid, step, source }
        }
    }
}

impl FrozenTree {
    /// Freezes `root` and all its descendants.
    pub fn freeze(root: i32) -> Result<FrozenTree, FreezeError> {
        if !procfs::pid_path(root, "task").exists() {
            return Err(FreezeError::NoSuchTask { pid: root });
        }
        let mut tree = FrozenTree {
            processes: Vec::new(),
            seized: Vec::new(),
        };
        let mut seen = HashSet::new();
        let mut stack = vec![(root, None)];
        seen.insert(root);
        while let Some((pid, parent)) = stack.pop() {
            let threads = tree.freeze_process(pid)?;
            let me = tree.processes.len();
            let mut children = Vec::new();
            for &tid in &threads {
                let path = procfs::pid_path(pid, &format!("task/{tid}/children"));
                let text = procfs::read(&path).map_err(|source| FreezeError::Proc {
                    pid,
                    path: path.clone(),
                    source,
                })?;
                for c in procfs::words(&text).filter_map(procfs::parse_u32) {
                    let c = c as i32;
                    if seen.insert(c) {
                        children.push(c);
                    }
                }
            }
            log::debug!(
                "freeze: task {pid} frozen ({} threads, {} children)",
                threads.len(),
                children.len()
            );
            tree.processes.push(FrozenProcess {
                pid,
                parent,
                threads,
            });
            // Depth first, first child first.
            stack.extend(children.into_iter().rev().map(|c| (c, Some(me))));
        }
        Ok(tree)
    }

    /// Seizes and stops every thread of `pid`, until no new thread appears.
    fn freeze_process(&mut self, pid: i32) -> Result<Vec<i32>, FreezeError> {
        let dir = procfs::pid_path(pid, "task");
        let mut threads: Vec<i32> = Vec::new();
        loop {
            let tids = procfs::numeric_entries(&dir).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => FreezeError::Exited {
                    tid: pid,
                    how: "its /proc entry is gone".into(),
                },
                _ => FreezeError::Proc {
                    pid,
                    path: dir.clone(),
                    source,
                },
            })?;
            let new: Vec<i32> = tids.into_iter().filter(|t| !threads.contains(t)).collect();
            if new.is_empty() {
                break;
            }
            for tid in new {
                ptrace::seize(tid).map_err(ptrace_err(tid, "PTRACE_SEIZE"))?;
                self.seized.push(Seized {
                    tid,
                    pending: 0,
                    gone: false,
                });
                ptrace::interrupt(tid).map_err(ptrace_err(tid, "PTRACE_INTERRUPT"))?;
                self.wait_stopped(tid)?;
                threads.push(tid);
            }
        }
        // The leader first.
        threads.sort_by_key(|&t| (t != pid, t));
        Ok(threads)
    }

    fn seized_mut(&mut self, tid: i32) -> Option<&mut Seized> {
        self.seized.iter_mut().find(|s| s.tid == tid)
    }

    /// Waits, with a deadline, until `tid` reports a stop.
    fn wait_stopped(&mut self, tid: i32) -> Result<(), FreezeError> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut pause = Duration::from_micros(20);
        loop {
            match ptrace::wait(tid, true).map_err(ptrace_err(tid, "waitpid"))? {
                Some(Stop::Event { .. }) => return Ok(()),
                Some(Stop::Signal(sig)) => {
                    if let Some(s) = self.seized_mut(tid) {
                        s.pending = sig;
                    }
                    return Ok(());
                }
                Some(Stop::Exited(code)) => {
                    self.mark_gone(tid);
                    return Err(FreezeError::Exited {
                        tid,
                        how: format!("exit status {code}"),
                    });
                }
                Some(Stop::Killed(sig)) => {
                    self.mark_gone(tid);
                    return Err(FreezeError::Exited {
                        tid,
                        how: format!("killed by signal {sig}"),
                    });
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(FreezeError::Timeout {
                    tid,
                    secs: STOP_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    fn mark_gone(&mut self, tid: i32) {
        if let Some(s) = self.seized_mut(tid) {
            s.gone = true;
        }
    }

    /// Checks that no thread of the tree has exited since it was frozen.
    pub fn verify_alive(&mut self) -> Result<(), FreezeError> {
        for i in 0..self.seized.len() {
            let tid = self.seized[i].tid;
            let how = match ptrace::wait(tid, true) {
                Ok(None) => continue,
                Ok(Some(Stop::Exited(code))) => format!("exit status {code}"),
                Ok(Some(Stop::Killed(sig))) => format!("killed by signal {sig}"),
                Ok(Some(other)) => {
                    log::warn!("freeze: task {tid} reported {other:?} while frozen");
                    continue;
                }
                Err(e) => format!("waitpid: {e}"),
            };
            self.seized[i].gone = true;
            return Err(FreezeError::Exited { tid, how });
        }
        Ok(())
    }

    /// Every pid of the tree (thread-group leaders).
    pub fn pids(&self) -> HashSet<i32> {
        self.processes.iter().map(|p| p.pid).collect()
    }

    /// Lets every thread go; same as dropping the tree.
    pub fn release(self) {}
}

impl Drop for FrozenTree {
    fn drop(&mut self) {
        for s in &self.seized {
            if s.gone {
                continue;
            }
            match ptrace::detach(s.tid, s.pending) {
                Ok(()) => log::debug!("freeze: task {} released", s.tid),
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    log::debug!("freeze: task {} was gone at release", s.tid)
                }
                Err(e) => log::warn!("freeze: releasing task {}: {e}", s.tid),
            }
        }
    }
}

/// Test hook: a pause at a named point, so a test can act at a moment it
/// could not otherwise catch (kill a task of a frozen tree, look at a tree
/// after a failed checkpoint while kstate still runs). Active only when
/// KSTATE_TEST_PAUSE_AT lists `point` (comma-separated) and
/// KSTATE_TEST_PAUSE_DIR names a directory: kstate creates `DIR/POINT` and
/// waits, ten seconds at most, for `DIR/POINT.go`.
pub fn test_pause(point: &str) {
    let (Some(at), Some(dir)) = (
        std::env::var_os("KSTATE_TEST_PAUSE_AT"),
        std::env::var_os("KSTATE_TEST_PAUSE_DIR"),
    ) else {
        return;
    };
    if !at.to_string_lossy().split(',').any(|p| p == point) {
        return;
    }
    let dir = Path::new(&dir);
    if let Err(e) = std::fs::write(dir.join(point), b"") {
        log::warn!("test hook: {}: {e}", dir.display());
        return;
    }
    let go = dir.join(format!("{point}.go"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !go.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
