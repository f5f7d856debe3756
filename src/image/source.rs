//! Where an image's bytes come from: a mapped file, or a buffer (stdin).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The bytes of an image, mapped from a file or read into memory.
pub enum ImageSource {
    /// A file, mapped; the file stays open (restart lets the tasks read
    /// their pages from it, [`ImageSource::file`]).
    Mapped(memmap2::Mmap, File),
    Owned(Vec<u8>),
}

/// Why an image could not be opened (before any format check).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct OpenError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl ImageSource {
    /// Maps `path`, or reads standard input when `path` is `-`.
    pub fn open(path: &Path) -> Result<ImageSource, OpenError> {
        let err = |source| OpenError {
            path: path.to_path_buf(),
            source,
        };
        if path.as_os_str() == "-" {
            let mut buf = Vec::new();
            io::stdin().lock().read_to_end(&mut buf).map_err(err)?;
            return Ok(ImageSource::Owned(buf));
        }
        let file = File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        if len == 0 || !file.metadata().map_err(err)?.is_file() {
            // Nothing to map (or not mappable): read it instead.
            let mut buf = Vec::new();
            (&file).read_to_end(&mut buf).map_err(err)?;
            return Ok(ImageSource::Owned(buf));
        }
        let map = crate::sys::map_readonly(&file).map_err(err)?;
        Ok(ImageSource::Mapped(map, file))
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            ImageSource::Mapped(m, _) => m,
            ImageSource::Owned(v) => v,
        }
    }

    /// The mapped file, when the image is one.
    pub fn file(&self) -> Option<&File> {
        match self {
            ImageSource::Mapped(_, f) => Some(f),
            ImageSource::Owned(_) => None,
        }
    }
}
