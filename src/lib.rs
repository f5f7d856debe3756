//! kstate: checkpoint and restart of a Linux process tree together with the
//! namespaces it lives in. See ARCHITECTURE.md for the map.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod image;
pub mod kstate;
pub mod objects;
pub mod procfs;
#[allow(unsafe_code)]
pub mod sys;
