//! Where an image goes: standard output, a device or pipe written directly,
//! or a regular file written under a temporary name and renamed into place
//! only once complete, so a failed checkpoint leaves no partial image.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::Error;

pub struct Output {
    target: Target,
    path: PathBuf,
}

enum Target {
    Stdout(io::Stdout),
    Direct(File),
    Temp {
        file: File,
        tmp: PathBuf,
        committed: bool,
    },
}

impl Output {
    /// Opens the destination (before anything is frozen).
    pub fn create(path: &Path) -> Result<Output, Error> {
        let err = |source| Error::Output {
            path: path.to_path_buf(),
            source,
        };
        let target = if path.as_os_str() == "-" {
            Target::Stdout(io::stdout())
        } else if path.exists() && !std::fs::metadata(path).map_err(err)?.is_file() {
            Target::Direct(OpenOptions::new().write(true).open(path).map_err(err)?)
        } else {
            let name = path.file_name().ok_or_else(|| {
                err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a file name",
                ))
            })?;
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".kstate-tmp-{}", std::process::id()));
            let tmp = path.with_file_name(tmp_name);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(err)?;
            Target::Temp {
                file,
                tmp,
                committed: false,
            }
        };
        Ok(Output {
            target,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A writer over the destination.
    pub fn writer(&mut self) -> Box<dyn Write + '_> {
        match &mut self.target {
            Target::Stdout(s) => Box::new(s.lock()),
            Target::Direct(f) | Target::Temp { file: f, .. } => Box::new(&*f),
        }
    }

    /// Whether bytes already written can be written again in place (a new
    /// regular file, not standard output, a pipe or a device).
    pub fn can_patch(&self) -> bool {
        matches!(self.target, Target::Temp { .. })
    }

    /// Writes each (offset, CRC) in place, little-endian: the record CRCs
    /// an [`crate::image::ImageWriter`] deferred. Call after the stream is
    /// flushed.
    pub fn patch(&mut self, patches: &[(u64, u32)]) -> Result<(), Error> {
        if patches.is_empty() {
            return Ok(());
        }
        let Target::Temp { file, .. } = &self.target else {
            return Err(Error::Output {
                path: self.path.clone(),
                source: io::Error::other(
                    "record CRCs to write in place, but the output cannot seek",
                ),
            });
        };
        for &(at, crc) in patches {
            file.write_all_at(&crc.to_le_bytes(), at)
                .map_err(|source| Error::Output {
                    path: self.path.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Makes the image visible under its name (after a full write), flushed
    /// to stable storage first with `sync`.
    pub fn commit(mut self, sync: bool) -> Result<(), Error> {
        let path = self.path.clone();
        let err = |source| Error::Output {
            path: path.clone(),
            source,
        };
        match &mut self.target {
            Target::Stdout(s) => s.flush().map_err(err),
            Target::Direct(f) => f.flush().map_err(err),
            Target::Temp {
                file,
                tmp,
                committed,
            } => {
                if sync {
                    file.sync_data().map_err(err)?;
                }
                std::fs::rename(&*tmp, &path).map_err(err)?;
                *committed = true;
                Ok(())
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Target::Temp {
            tmp,
            committed: false,
            ..
        } = &self.target
        {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
