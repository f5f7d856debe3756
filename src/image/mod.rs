//! The on-disk image: format definitions, a streaming writer and a validating,
//! zero-copy reader. This layer makes no system calls beyond reading its input
//! (see [`source`]), so it can be fuzzed and tested without privileges.

pub mod error;
pub mod format;
pub mod net;
pub mod reader;
pub mod source;
pub mod writer;

pub use error::{At, FormatError};
pub use format::{Kind, Ref};
pub use reader::{Image, Object};
pub use source::ImageSource;
pub use writer::{HeaderInfo, ImageWriter};
