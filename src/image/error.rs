//! Errors of the image layer: each malformation has its own variant and names
//! the record (id, offset) and the field.

use super::format::Kind;

/// Where in the image a problem is: a record's id, its kind (when known) and
/// the offset of its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    pub id: u32,
    pub kind: Option<Kind>,
    pub offset: u64,
}

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.kind {
            Some(kind) => write!(
                f,
                "record {} ({}) at offset {:#x}",
                self.id, kind, self.offset
            ),
            None => write!(f, "record {} at offset {:#x}", self.id, self.offset),
        }
    }
}

/// A reason an image is refused. Every variant is a distinct malformation.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("image is {len} bytes, shorter than a header and a trailer ({min} bytes)")]
    TooShort { len: u64, min: u64 },
    #[error("bad magic {found:02x?} at offset 0: not a kstate image")]
    BadMagic { found: [u8; 8] },
    #[error(
        "header: format major version {major} is not supported (this kstate reads {supported})"
    )]
    UnsupportedMajor { major: u16, supported: u16 },
    #[error("header: field `{field}` is {value:#x}, expected {expected:#x}")]
    BadHeaderField {
        field: &'static str,
        value: u64,
        expected: u64,
    },
    #[error("header: required features {bits:#x} are unknown to this kstate")]
    UnknownRequiredFeatures { bits: u64 },
    #[error(
        "trailer: bad magic at offset {offset:#x}: the image is truncated or not a kstate image"
    )]
    BadTrailerMagic { offset: u64 },
    #[error("trailer: total length is {recorded} but the image is {actual} bytes (truncated or spliced)")]
    LengthMismatch { recorded: u64, actual: u64 },
    #[error("trailer: field `{field}` ({value:#x}) does not fit the image of {len} bytes")]
    BadTrailerField {
        field: &'static str,
        value: u64,
        len: u64,
    },
    #[error("trailer: CRC of header and index is {actual:#010x}, expected {expected:#010x}")]
    IndexCrc { expected: u32, actual: u32 },
    #[error("index entry {id}: field `{field}` is {value:#x}, which is invalid")]
    BadIndexEntry {
        id: u32,
        field: &'static str,
        value: u64,
    },
    #[error("{at}: header field `{field}` is {found:#x} but the index says {expected:#x}")]
    HeaderMismatch {
        at: At,
        field: &'static str,
        found: u64,
        expected: u64,
    },
    #[error("{at}: unknown record kind {raw}")]
    UnknownKind { at: At, raw: u16 },
    #[error("{at}: field `{field}` must be zero, found {value:#x}")]
    NonZero {
        at: At,
        field: &'static str,
        value: u64,
    },
    #[error(
        "{at}: field `payload_len`: {len} bytes run past the end of the records at {limit:#x}"
    )]
    PayloadOutOfBounds { at: At, len: u64, limit: u64 },
    #[error("{at}: record ends at {end:#x} but the next one starts at {next:#x}")]
    Gap { at: At, end: u64, next: u64 },
    #[error("{at}: non-zero padding byte at offset {offset:#x}")]
    NonZeroPadding { at: At, offset: u64 },
    #[error(
        "{at}: field `crc`: the record's CRC is {actual:#010x}, its header says {expected:#010x}"
    )]
    RecordCrc { at: At, expected: u32, actual: u32 },
    #[error("{at}: fixed part is {len} bytes, at least {min} needed (field `fixed_len`)")]
    FixedTooShort { at: At, len: u64, min: u64 },
    #[error(
        "{at}: field `{field}` counts {count} items, more than the {available} bytes left can hold"
    )]
    CountTooLarge {
        at: At,
        field: &'static str,
        count: u64,
        available: u64,
    },
    #[error("{at}: {extra} bytes after the last variable part (after field `{field}`)")]
    TrailingBytes {
        at: At,
        field: &'static str,
        extra: u64,
    },
    #[error("{at}: field `{field}` refers forward to record {target}; references go only to earlier records")]
    RefForward {
        at: At,
        field: &'static str,
        target: u32,
    },
    #[error("{at}: field `{field}` refers to record {target}, which does not exist")]
    RefMissing {
        at: At,
        field: &'static str,
        target: u32,
    },
    #[error("{at}: field `{field}` must refer to a {expected}, but record {target} is {found}")]
    RefWrongKind {
        at: At,
        field: &'static str,
        target: u32,
        expected: Kind,
        found: &'static str,
    },
    #[error("{at}: field `{field}` must not be UNDEF")]
    RefUndef { at: At, field: &'static str },
    #[error("{at}: field `level` is {level} but its parent (field `{field}`) is at level {parent_level}; a namespace sits exactly one level below its parent")]
    BadLevel {
        at: At,
        field: &'static str,
        level: u32,
        parent_level: u32,
    },
    #[error("{at}: field `{field}`: {what}")]
    Invalid {
        at: At,
        field: &'static str,
        what: &'static str,
    },
}
