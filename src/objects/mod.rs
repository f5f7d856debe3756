//! One module per kernel object kind, each holding that kind's collect (from
//! the live system), dump (to an image record) and describe (for `show`).

pub mod core;
pub mod files;
pub mod ipc_ns;
pub mod mm;
pub mod mnt_ns;
pub mod namespace;
pub mod net;
pub mod net_restore;
pub mod nsproxy;
pub mod pid_ns;
pub mod rtnl;
pub mod task;
pub mod time_ns;
pub mod user_ns;
pub mod uts_ns;
pub mod vma;

use std::io;
use std::path::PathBuf;

use crate::kstate::registry::NsKey;
use crate::sys::nsquery::QueryError;

/// Why an object could not be collected or dumped.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("task {pid}: {path}: {source}")]
    Proc {
        pid: i32,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("task {pid}: {path}: cannot parse field `{field}`")]
    ProcParse {
        pid: i32,
        path: PathBuf,
        field: &'static str,
    },
    #[error("namespace {ns}: {what}: {source}")]
    Namespace {
        ns: NsKey,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("namespace {ns}: reading {what} from inside it: {source}")]
    Query {
        ns: NsKey,
        what: &'static str,
        #[source]
        source: QueryError,
    },
    #[error("namespace {ns}: cannot parse {what}")]
    Parse { ns: NsKey, what: &'static str },
    #[error("task {pid}: thread {tid} uses {kind} namespace {thread_ns}, its leader {leader_ns}; threads in different namespaces are not supported")]
    ThreadNamespace {
        pid: i32,
        tid: i32,
        kind: &'static str,
        thread_ns: u64,
        leader_ns: u64,
    },
    #[error("task {pid}: {object} cannot be checkpointed")]
    Unsupported { pid: i32, object: String },
    #[error("task {pid}: {what}")]
    Task { pid: i32, what: String },
    #[error("mount namespace {ns}: mount {mountpoint} ({fstype}, source {device}): {what}")]
    Mount {
        ns: NsKey,
        mountpoint: String,
        fstype: String,
        device: String,
        what: String,
    },
    #[error("{0}")]
    Option(String),
    #[error("network namespace {ns}: {what}")]
    Net { ns: String, what: String },
    #[error("writing the image: {0}")]
    Write(#[source] io::Error),
}

/// Shorthand for a /proc read error of task `pid`.
pub(crate) fn proc_err(
    pid: i32,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> ObjectError + '_ {
    move |source| ObjectError::Proc {
        pid,
        path: path.to_path_buf(),
        source,
    }
}
