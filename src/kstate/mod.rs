//! The engine: the checkpoint context and its object registry, freezing, and
//! the collect → dump order; `show` and `check` for people and tools.

pub mod check;
pub mod checkpoint;
pub mod diff;
pub mod freeze;
pub mod output;
pub mod progress;
pub mod registry;
pub mod restart;
pub mod show;
pub mod userns;

use std::time::Duration;

pub use checkpoint::{checkpoint, CheckpointOptions};

/// How long a namespace helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(5);

/// An error of the engine, with the object, pid or path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("freezing the tree: {0}")]
    Freeze(#[from] freeze::FreezeError),
    #[error(transparent)]
    Object(#[from] crate::objects::ObjectError),
    #[error("output {path}: {source}")]
    Output {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] crate::image::source::OpenError),
    #[error(transparent)]
    Format(#[from] crate::image::FormatError),
}
