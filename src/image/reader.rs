//! Validating an image once, then handing out borrowed views.
//!
//! [`Image::parse`] checks everything before anyone uses the image: bounds,
//! CRCs, kinds, that each reference resolves to an earlier record of the right
//! kind, and the ordering rules. After that, [`Image::object`] gives zero-copy
//! views (fixed parts copied by value, variable parts borrowed) without any
//! allocation. No input makes it panic, and it allocates nothing in
//! proportion to counts read from the file.

use core::mem::{offset_of, size_of};

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use super::error::{At, FormatError};
use super::format::{
    fd_kind, task_core_flags, vma_flags, vma_kind, FdRecord, IpcNsRecord, MmRecord, PageRunRecord,
    PendingSignal, PipeRecord, Sigaction, TaskCoreRecord, VmaRecord,
};
use super::format::{mount_flags, mount_how, mount_prop, MntFileRecord, MountRecord, MOUNT_NONE};
use super::format::{
    ns_flags, ExtentRecord, FileHeader, IdExtent, IndexEntry, Kind, NsCommon, NsproxyRecord,
    PidNsRecord, RecordHeader, Ref, Setgroups, TaskRecord, TimeNsRecord, Trailer, UserNsRecord,
    UtsNsRecord, EXTENT_ALIGN, KNOWN_REQUIRED_FEATURES, MAGIC, MAJOR, RECORD_ALIGN, TRAILER_MAGIC,
};
use super::writer::trailer_crc;

type Result<T> = core::result::Result<T, FormatError>;

/// Deepest pid or user namespace nesting the kernel allows (32) plus the top.
pub const MAX_LEVELS: u32 = 33;
/// `__NEW_UTS_LEN` in `<linux/utsname.h>`.
pub const MAX_UTS_LEN: u32 = 64;
/// `PATH_MAX`.
pub const MAX_PATH_LEN: u32 = 4096;
/// Most extents a uid_map or gid_map can hold (`UID_GID_MAP_MAX_EXTENTS`).
pub const MAX_ID_EXTENTS: u32 = 340;

/// A validated image borrowed from a byte slice (usually a mapped file).
#[derive(Clone, Copy)]
pub struct Image<'a> {
    bytes: &'a [u8],
    header: FileHeader,
    index: &'a [IndexEntry],
}

/// A record's place and raw parts.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a> {
    pub at: At,
    pub kind: Kind,
    pub version: u16,
    /// File offset of the payload.
    pub payload_offset: u64,
    pub fixed: &'a [u8],
    /// The payload after the fixed part.
    pub var: &'a [u8],
}

/// A namespace record of a kind with no contents of its own yet (ipc, mnt,
/// net, cgroup).
#[derive(Clone, Copy, Debug)]
pub struct PlainNsView {
    pub kind: Kind,
    pub common: NsCommon,
}

#[derive(Clone, Copy, Debug)]
pub struct UserNsView<'a> {
    pub rec: UserNsRecord,
    pub uid_map: &'a [IdExtent],
    pub gid_map: &'a [IdExtent],
}

#[derive(Clone, Copy, Debug)]
pub struct UtsNsView<'a> {
    pub rec: UtsNsRecord,
    pub hostname: &'a [u8],
    pub domainname: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct TaskView<'a> {
    pub rec: TaskRecord,
    pub nspid: &'a [U32],
    pub nstgid: &'a [U32],
    pub nspgid: &'a [U32],
    pub nssid: &'a [U32],
    /// `threads` × `levels` pids, the leader first.
    pub threads: &'a [U32],
    pub exe: &'a [u8],
}

impl<'a> TaskView<'a> {
    /// The pid at the outermost level (as the checkpointer saw it).
    pub fn pid(&self) -> u32 {
        self.nspid.first().map_or(0, |p| p.get())
    }

    /// The comm, up to its first NUL.
    pub fn comm(&self) -> &[u8] {
        let c = &self.rec.comm;
        let n = c.iter().position(|&b| b == 0).unwrap_or(c.len());
        &c[..n]
    }

    /// Each thread's pids, one slice of `levels` per thread.
    pub fn thread_pids(&self) -> impl Iterator<Item = &'a [U32]> {
        let levels = (self.rec.levels.get() as usize).max(1);
        self.threads.chunks(levels)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ExtentView<'a> {
    pub rec: ExtentRecord,
    /// File offset of the data (a multiple of the page size).
    pub data_offset: u64,
    pub data: &'a [u8],
}

/// A typed view of one record.
// Views are short-lived values on the stack; boxing the large task core
// would allocate for each record read, which the reader never does.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Object<'a> {
    UserNs(UserNsView<'a>),
    PidNs(PidNsRecord),
    UtsNs(UtsNsView<'a>),
    TimeNs(TimeNsRecord),
    IpcNs(IpcNsRecord),
    /// mnt, net and cgroup namespaces.
    PlainNs(PlainNsView),
    Nsproxy(NsproxyRecord),
    Task(TaskView<'a>),
    Extent(ExtentView<'a>),
    TaskCore(TaskCoreView<'a>),
    Mm(MmView<'a>),
    Vma(VmaView<'a>),
    Pipe(PipeView<'a>),
    Fd(FdView<'a>),
    /// Network namespace contents (kinds 17..=22, image/net.rs).
    Net(super::net::NetView<'a>),
    Mount(MountView<'a>),
    MntFile(MntFileView<'a>),
}

/// One mount of a mount namespace of the tree's own.
#[derive(Clone, Copy, Debug)]
pub struct MountView<'a> {
    pub rec: MountRecord,
    pub mountpoint: &'a [u8],
    pub root: &'a [u8],
    pub fstype: &'a [u8],
    pub source: &'a [u8],
    pub options: &'a [u8],
    pub key: &'a [u8],
}

/// One entry of a tmpfs mount's contents.
#[derive(Clone, Copy, Debug)]
pub struct MntFileView<'a> {
    pub rec: MntFileRecord,
    pub path: &'a [u8],
    pub target: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct TaskCoreView<'a> {
    /// Borrowed, not copied: the record is large, and version 1 is its
    /// first, so every valid one holds at least this much.
    pub rec: &'a TaskCoreRecord,
    pub xstate: &'a [u8],
    pub groups: &'a [U32],
    pub sigactions: &'a [Sigaction],
    pub pending: &'a [PendingSignal],
    pub cwd: &'a [u8],
    pub root: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct MmView<'a> {
    pub rec: MmRecord,
    pub auxv: &'a [U64],
    pub exe: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct VmaView<'a> {
    pub rec: VmaRecord,
    pub path: &'a [u8],
    pub runs: &'a [PageRunRecord],
}

impl VmaView<'_> {
    /// The [`vma_kind`] of the mapping.
    pub fn kind(&self) -> u32 {
        (self.rec.flags.get() & vma_flags::KIND_MASK) >> vma_flags::KIND_SHIFT
    }
    pub fn shared(&self) -> bool {
        self.rec.flags.get() & vma_flags::SHARED != 0
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PipeView<'a> {
    pub rec: PipeRecord,
    pub data: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct FdView<'a> {
    pub rec: FdRecord,
    pub path: &'a [u8],
}

impl<'a> Object<'a> {
    /// The record kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::UserNs(_) => Kind::UserNs,
            Object::PidNs(_) => Kind::PidNs,
            Object::UtsNs(_) => Kind::UtsNs,
            Object::TimeNs(_) => Kind::TimeNs,
            Object::IpcNs(_) => Kind::IpcNs,
            Object::PlainNs(v) => v.kind,
            Object::Nsproxy(_) => Kind::Nsproxy,
            Object::Task(_) => Kind::Task,
            Object::Extent(_) => Kind::Extent,
            Object::TaskCore(_) => Kind::TaskCore,
            Object::Mm(_) => Kind::Mm,
            Object::Vma(_) => Kind::Vma,
            Object::Pipe(_) => Kind::Pipe,
            Object::Fd(_) => Kind::Fd,
            Object::Mount(_) => Kind::Mount,
            Object::MntFile(_) => Kind::MntFile,
            Object::Net(v) => v.kind(),
        }
    }

    /// The common namespace part, for namespace records.
    pub fn ns_common(&self) -> Option<&NsCommon> {
        match self {
            Object::UserNs(v) => Some(&v.rec.common),
            Object::PidNs(r) => Some(&r.common),
            Object::UtsNs(v) => Some(&v.rec.common),
            Object::TimeNs(r) => Some(&r.common),
            Object::IpcNs(r) => Some(&r.common),
            Object::PlainNs(v) => Some(&v.common),
            _ => None,
        }
    }
}

/// A count or length within the kernel's own bound.
fn limit(at: At, field: &'static str, value: u32, max: u32) -> Result<()> {
    if value > max {
        return Err(FormatError::Invalid {
            at,
            field,
            what: "larger than the kernel allows",
        });
    }
    Ok(())
}

/// Whether the top user namespace, top pid namespace and root task were seen.
#[derive(Default)]
struct Roots {
    user: bool,
    pid: bool,
    task: bool,
}

/// Copies a fixed part into a zeroed `T`: fields an older writer did not have
/// read as zero, fields a newer writer appended are ignored.
pub(crate) fn load_fixed<T: FromBytes + IntoBytes + FromZeros>(bytes: &[u8]) -> T {
    if let Ok((t, _)) = T::read_from_prefix(bytes) {
        // The usual case: a copy of a size known at compile time.
        return t;
    }
    let mut t = T::new_zeroed();
    let dst = t.as_mut_bytes();
    let n = dst.len().min(bytes.len());
    dst[..n].copy_from_slice(&bytes[..n]);
    t
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

/// Takes counted arrays off the variable part of a record.
struct Cursor<'a> {
    at: At,
    rest: &'a [u8],
    newer: bool,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn take<T: FromBytes + Immutable + KnownLayout + zerocopy::Unaligned>(
        &mut self,
        count: u64,
        field: &'static str,
    ) -> Result<&'a [T]> {
        let too_large = |rest: &[u8]| FormatError::CountTooLarge {
            at: self.at,
            field,
            count,
            available: rest.len() as u64,
        };
        let bytes = count
            .checked_mul(size_of::<T>() as u64)
            .filter(|b| *b <= self.rest.len() as u64)
            .ok_or_else(|| too_large(self.rest))?;
        let (head, tail) = self.rest.split_at(bytes as usize);
        self.rest = tail;
        <[T]>::ref_from_bytes(head).map_err(|_| too_large(head))
    }

    fn finish(self, field: &'static str) -> Result<()> {
        if self.rest.is_empty() || self.newer {
            Ok(())
        } else {
            Err(FormatError::TrailingBytes {
                at: self.at,
                field,
                extra: self.rest.len() as u64,
            })
        }
    }
}

/// Zeros to compare padding with (an extent's padding is under a page).
static ZEROS: [u8; EXTENT_ALIGN as usize] = [0; EXTENT_ALIGN as usize];

/// The offset of the first byte of `b` that is not zero: compared a page at
/// a time with a page of zeros (memcmp), byte by byte only to say where.
fn first_nonzero(b: &[u8]) -> Option<usize> {
    let mut off = 0;
    for chunk in b.chunks(ZEROS.len()) {
        if chunk != &ZEROS[..chunk.len()] {
            return chunk.iter().position(|x| *x != 0).map(|p| off + p);
        }
        off += chunk.len();
    }
    None
}

impl<'a> Image<'a> {
    /// Validates the whole image. Nothing about it is trusted before this
    /// returns `Ok`.
    pub fn parse(bytes: &'a [u8]) -> Result<Image<'a>> {
        let len = bytes.len() as u64;
        let min = (size_of::<FileHeader>() + size_of::<Trailer>()) as u64;
        if len < min {
            // Tell a foreign file from a truncated one where we can.
            let n = bytes.len().min(MAGIC.len());
            if bytes[..n] != MAGIC[..n] {
                let mut found = [0u8; 8];
                found[..n].copy_from_slice(&bytes[..n]);
                return Err(FormatError::BadMagic { found });
            }
            return Err(FormatError::TooShort { len, min });
        }
        let (header, _) =
            FileHeader::read_from_prefix(bytes).map_err(|_| FormatError::TooShort { len, min })?;
        if header.magic != MAGIC {
            return Err(FormatError::BadMagic {
                found: header.magic,
            });
        }
        if header.major.get() != MAJOR {
            return Err(FormatError::UnsupportedMajor {
                major: header.major.get(),
                supported: MAJOR,
            });
        }
        let header_len = header.header_len.get() as u64;
        if header_len < size_of::<FileHeader>() as u64
            || header_len % RECORD_ALIGN != 0
            || header_len > len - size_of::<Trailer>() as u64
        {
            return Err(FormatError::BadHeaderField {
                field: "header_len",
                value: header_len,
                expected: size_of::<FileHeader>() as u64,
            });
        }
        let unknown = header.required_features.get() & !KNOWN_REQUIRED_FEATURES;
        if unknown != 0 {
            return Err(FormatError::UnknownRequiredFeatures { bits: unknown });
        }
        let page = header.page_size.get() as u64;
        if !page.is_power_of_two() || page < 4096 {
            return Err(FormatError::BadHeaderField {
                field: "page_size",
                value: page,
                expected: 4096,
            });
        }
        if let Some(pos) = header.reserved.iter().position(|b| *b != 0) {
            return Err(FormatError::BadHeaderField {
                field: "reserved",
                value: pos as u64,
                expected: 0,
            });
        }

        // Trailer.
        let toff = len - size_of::<Trailer>() as u64;
        let (trailer, _) = Trailer::read_from_prefix(&bytes[toff as usize..])
            .map_err(|_| FormatError::BadTrailerMagic { offset: toff })?;
        if trailer.magic != TRAILER_MAGIC {
            return Err(FormatError::BadTrailerMagic { offset: toff });
        }
        if trailer.total_len.get() != len {
            return Err(FormatError::LengthMismatch {
                recorded: trailer.total_len.get(),
                actual: len,
            });
        }
        let index_offset = trailer.index_offset.get();
        let count = trailer.record_count.get() as u64;
        let index_len = count * size_of::<IndexEntry>() as u64;
        if index_offset < header_len || index_offset % RECORD_ALIGN != 0 || index_offset > toff {
            return Err(FormatError::BadTrailerField {
                field: "index_offset",
                value: index_offset,
                len,
            });
        }
        if index_offset + index_len != toff {
            return Err(FormatError::BadTrailerField {
                field: "record_count",
                value: count,
                len,
            });
        }
        let index_bytes = &bytes[index_offset as usize..toff as usize];
        let crc = trailer_crc(&bytes[..header_len as usize], index_bytes, &trailer);
        if crc != trailer.crc.get() {
            return Err(FormatError::IndexCrc {
                expected: trailer.crc.get(),
                actual: crc,
            });
        }
        let index = <[IndexEntry]>::ref_from_bytes(index_bytes).map_err(|_| {
            FormatError::BadTrailerField {
                field: "record_count",
                value: count,
                len,
            }
        })?;

        let image = Image {
            bytes,
            header,
            index,
        };
        image.check_records(header_len, index_offset)?;
        Ok(image)
    }

    /// Walks the records in file order, once: headers against the index,
    /// bounds, padding, CRCs, then each record's own rules. References point
    /// only backwards, so whatever a record refers to is checked already.
    fn check_records(&self, header_len: u64, index_offset: u64) -> Result<()> {
        let mut roots = Roots::default();
        let mut pos = header_len;
        for (i, entry) in self.index.iter().enumerate() {
            let id = i as u32 + 1;
            let raw_kind = entry.kind.get();
            let at = At {
                id,
                kind: Kind::from_raw(raw_kind),
                offset: entry.offset.get(),
            };
            if entry.offset.get() != pos {
                return Err(FormatError::Gap {
                    at,
                    end: pos,
                    next: entry.offset.get(),
                });
            }
            if entry.reserved.get() != 0 {
                return Err(FormatError::BadIndexEntry {
                    id,
                    field: "reserved",
                    value: entry.reserved.get() as u64,
                });
            }
            let hdr_end = pos + size_of::<RecordHeader>() as u64;
            if hdr_end > index_offset {
                return Err(FormatError::PayloadOutOfBounds {
                    at,
                    len: size_of::<RecordHeader>() as u64,
                    limit: index_offset,
                });
            }
            let (h, _) =
                RecordHeader::read_from_prefix(&self.bytes[pos as usize..]).map_err(|_| {
                    FormatError::PayloadOutOfBounds {
                        at,
                        len: size_of::<RecordHeader>() as u64,
                        limit: index_offset,
                    }
                })?;
            let mismatch = |field, found: u64, expected: u64| {
                if found != expected {
                    Err(FormatError::HeaderMismatch {
                        at,
                        field,
                        found,
                        expected,
                    })
                } else {
                    Ok(())
                }
            };
            mismatch("kind", h.kind.get() as u64, raw_kind as u64)?;
            mismatch(
                "version",
                h.version.get() as u64,
                entry.version.get() as u64,
            )?;
            mismatch("id", h.id.get() as u64, id as u64)?;
            mismatch(
                "header_len",
                h.header_len.get() as u64,
                size_of::<RecordHeader>() as u64,
            )?;
            let Some(kind) = Kind::from_raw(raw_kind) else {
                return Err(FormatError::UnknownKind { at, raw: raw_kind });
            };
            if h.version.get() == 0 {
                return Err(FormatError::Invalid {
                    at,
                    field: "version",
                    what: "record version 0 does not exist",
                });
            }
            if h.flags.get() != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field: "flags",
                    value: h.flags.get() as u64,
                });
            }
            if h.reserved.get() != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field: "reserved",
                    value: h.reserved.get() as u64,
                });
            }
            let plen = h.payload_len.get();
            let end = hdr_end
                .checked_add(plen)
                .filter(|e| *e <= index_offset)
                .ok_or(FormatError::PayloadOutOfBounds {
                    at,
                    len: plen,
                    limit: index_offset,
                })?;
            let fixed_len = h.fixed_len.get() as u64;
            if fixed_len < kind.min_fixed_len() as u64 || fixed_len > plen {
                return Err(FormatError::FixedTooShort {
                    at,
                    len: fixed_len.min(plen),
                    min: kind.min_fixed_len() as u64,
                });
            }
            // A record of a version this reader knows has exactly that
            // version's fixed part; only a newer version may be longer.
            if h.version.get() <= kind.current_version()
                && fixed_len != kind.fixed_len(h.version.get()) as u64
            {
                return Err(FormatError::Invalid {
                    at,
                    field: "fixed_len",
                    what: "longer than the fixed part of this record version",
                });
            }
            let payload = &self.bytes[hdr_end as usize..end as usize];
            // The header after its crc field and the payload are contiguous.
            let crc = crc32fast::hash(&self.bytes[pos as usize + 4..end as usize]);
            if crc != h.crc.get() {
                return Err(FormatError::RecordCrc {
                    at,
                    expected: h.crc.get(),
                    actual: crc,
                });
            }
            let next = align_up(end, RECORD_ALIGN).unwrap_or(u64::MAX);
            if next > index_offset {
                return Err(FormatError::Gap {
                    at,
                    end,
                    next: index_offset,
                });
            }
            if let Some(p) = first_nonzero(&self.bytes[end as usize..next as usize]) {
                return Err(FormatError::NonZeroPadding {
                    at,
                    offset: end + p as u64,
                });
            }
            let (fixed, var) = payload.split_at(fixed_len as usize);
            let raw = RawRecord {
                at: At {
                    id,
                    kind: Some(kind),
                    offset: pos,
                },
                kind,
                version: h.version.get(),
                payload_offset: hdr_end,
                fixed,
                var,
            };
            self.check_semantics(raw, &mut roots)?;
            pos = next;
        }
        if pos != index_offset {
            return Err(FormatError::Gap {
                at: At {
                    id: self.index.len() as u32,
                    kind: None,
                    offset: pos,
                },
                end: pos,
                next: index_offset,
            });
        }
        Ok(())
    }

    /// References, ordering and per-kind rules, record by record.
    fn check_semantics(&self, raw: RawRecord<'a>, roots: &mut Roots) -> Result<()> {
        let Roots {
            user: root_user,
            pid: root_pid,
            task: root_task,
        } = roots;
        {
            let obj = self.object_from_raw(raw)?;
            let at = raw.at;
            if let Some(common) = obj.ns_common() {
                if common.flags.get() & !ns_flags::KNOWN != 0 {
                    return Err(FormatError::NonZero {
                        at,
                        field: "flags",
                        value: common.flags.get() as u64,
                    });
                }
                if raw.kind != Kind::UserNs {
                    self.check_ref(at, "owner", common.owner, Kind::UserNs, true)?;
                }
            }
            match obj {
                Object::UserNs(v) => {
                    let level = v.rec.level.get();
                    let parent = v.rec.common.owner;
                    self.check_ref(at, "owner", parent, Kind::UserNs, true)?;
                    self.check_level(at, "owner", level, parent, root_user)?;
                    if Setgroups::from_raw(v.rec.setgroups.get()).is_none() {
                        return Err(FormatError::Invalid {
                            at,
                            field: "setgroups",
                            what: "not one of unknown (0), allow (1), deny (2)",
                        });
                    }
                }
                Object::PidNs(r) => {
                    self.check_ref(at, "parent", r.parent, Kind::PidNs, true)?;
                    self.check_level(at, "parent", r.level.get(), r.parent, root_pid)?;
                }
                Object::TimeNs(r) => {
                    for (field, ns) in [
                        ("monotonic_nsec", r.monotonic_nsec),
                        ("boottime_nsec", r.boottime_nsec),
                    ] {
                        if !(0..1_000_000_000).contains(&ns.get()) {
                            return Err(FormatError::Invalid {
                                at,
                                field,
                                what: "nanoseconds outside 0..1e9",
                            });
                        }
                    }
                }
                Object::UtsNs(_) | Object::PlainNs(_) => {}
                Object::IpcNs(r) => {
                    if r.recorded.get() > 1 || r.reserved.get() != 0 {
                        return Err(FormatError::NonZero {
                            at,
                            field: "recorded",
                            value: r.recorded.get() as u64,
                        });
                    }
                }
                Object::Nsproxy(r) => {
                    for (field, rf, kind) in r.refs() {
                        self.check_ref(at, field, rf, kind, false)?;
                    }
                    if r.reserved.get() != 0 {
                        return Err(FormatError::NonZero {
                            at,
                            field: "reserved",
                            value: r.reserved.get() as u64,
                        });
                    }
                }
                Object::Task(t) => {
                    self.check_ref(at, "parent", t.rec.parent, Kind::Task, true)?;
                    if t.rec.parent.is_undef() {
                        if *root_task {
                            return Err(FormatError::Invalid {
                                at,
                                field: "parent",
                                what: "a second task without a parent (the tree has one root)",
                            });
                        }
                        *root_task = true;
                    } else if !*root_task {
                        return Err(FormatError::Invalid {
                            at,
                            field: "parent",
                            what: "the first task must be the root of the tree",
                        });
                    }
                    self.check_ref(at, "nsproxy", t.rec.nsproxy, Kind::Nsproxy, false)?;
                    // Both records were checked already (earlier, right kind).
                    let pidns_level = self
                        .fixed_field::<Ref>(t.rec.nsproxy.id.get(), offset_of!(NsproxyRecord, pid))
                        .and_then(|pid| {
                            self.fixed_field::<U32>(pid.id.get(), offset_of!(PidNsRecord, level))
                        })
                        .map_or(u32::MAX, |l| l.get());
                    if t.rec.levels.get() != pidns_level.wrapping_add(1) {
                        return Err(FormatError::Invalid {
                            at,
                            field: "levels",
                            what: "does not match the level of the task's pid namespace plus one",
                        });
                    }
                    if t.rec.flags.get() != 0 || t.rec.reserved.get() != 0 {
                        return Err(FormatError::NonZero {
                            at,
                            field: "flags",
                            value: t.rec.flags.get() as u64,
                        });
                    }
                    if t.rec.threads.get() == 0 {
                        return Err(FormatError::Invalid {
                            at,
                            field: "threads",
                            what: "a task has at least one thread",
                        });
                    }
                    if t.nspid.iter().any(|p| p.get() == 0) {
                        return Err(FormatError::Invalid {
                            at,
                            field: "nspid",
                            what: "pid 0 at some level",
                        });
                    }
                }
                Object::Extent(e) => {
                    // An extent may belong to an earlier record of any kind:
                    // the kind it must be is the one the reference names.
                    let named = Kind::from_raw(e.rec.owner.kind.get()).unwrap_or(Kind::Extent);
                    self.check_ref(at, "owner", e.rec.owner, named, true)?;
                }
                Object::TaskCore(c) => self.check_task_core(at, &c)?,
                Object::Mm(m) => {
                    self.check_ref(at, "task", m.rec.task, Kind::Task, false)?;
                    limit(at, "auxv_words", m.rec.auxv_words.get(), 1024)?;
                    limit(at, "exe_len", m.rec.exe_len.get(), MAX_PATH_LEN)?;
                }
                Object::Vma(v) => self.check_vma(at, &v)?,
                Object::Pipe(p) => {
                    if p.rec.data_len.get() > p.rec.capacity.get() {
                        return Err(FormatError::Invalid {
                            at,
                            field: "data_len",
                            what: "more bytes in flight than the pipe holds",
                        });
                    }
                }
                Object::Fd(f) => {
                    self.check_ref(at, "task", f.rec.task, Kind::Task, false)?;
                    let kind = f.rec.kind.get();
                    if kind == 0 || kind > fd_kind::MAX {
                        return Err(FormatError::Invalid {
                            at,
                            field: "kind",
                            what: "not a known kind of fd",
                        });
                    }
                    let is_pipe = kind == fd_kind::PIPE_READ || kind == fd_kind::PIPE_WRITE;
                    self.check_ref(at, "pipe", f.rec.pipe, Kind::Pipe, !is_pipe)?;
                    if !is_pipe && !f.rec.pipe.is_undef() {
                        return Err(FormatError::Invalid {
                            at,
                            field: "pipe",
                            what: "set on an fd that is not a pipe end",
                        });
                    }
                    limit(at, "fd", f.rec.fd.get(), i32::MAX as u32)?;
                    limit(at, "path_len", f.rec.path_len.get(), MAX_PATH_LEN)?;
                }
                Object::Mount(m) => self.check_mount(at, &m)?,
                Object::MntFile(f) => self.check_mnt_file(at, &f)?,
                Object::Net(v) => super::net::check(at, &v, |field, r, kind, undef_ok| {
                    self.check_ref(at, field, r, kind, undef_ok)
                })?,
            }
        }
        Ok(())
    }

    fn check_mount(&self, at: At, m: &MountView<'_>) -> Result<()> {
        let r = &m.rec;
        self.check_ref(at, "mnt_ns", r.mnt_ns, Kind::MntNs, false)?;
        self.check_ref(at, "pid_ns", r.pid_ns, Kind::PidNs, true)?;
        let invalid = |field, what| Err(FormatError::Invalid { at, field, what });
        let how = r.how.get();
        if how == 0 || how > mount_how::MAX {
            return invalid("how", "not a known way to make a mount");
        }
        let index = r.index.get();
        if index == MOUNT_NONE {
            return invalid("index", "out of range");
        }
        let parent = r.parent.get();
        if parent != MOUNT_NONE && parent >= index {
            return invalid("parent", "not an earlier mount of the namespace");
        }
        let bind_of = r.bind_of.get();
        if (how == mount_how::BIND) != (bind_of != MOUNT_NONE)
            || (bind_of != MOUNT_NONE && bind_of >= index)
        {
            return invalid("bind_of", "set exactly for a bind, to an earlier mount");
        }
        if r.mnt_flags.get() & !mount_flags::KNOWN != 0 {
            return Err(FormatError::NonZero {
                at,
                field: "mnt_flags",
                value: r.mnt_flags.get() as u64,
            });
        }
        if r.propagation.get() & !mount_prop::KNOWN != 0 {
            return Err(FormatError::NonZero {
                at,
                field: "propagation",
                value: r.propagation.get() as u64,
            });
        }
        limit(at, "mountpoint_len", r.mountpoint_len.get(), MAX_PATH_LEN)?;
        limit(at, "root_len", r.root_len.get(), MAX_PATH_LEN)?;
        limit(at, "fstype_len", r.fstype_len.get(), 256)?;
        limit(at, "source_len", r.source_len.get(), MAX_PATH_LEN)?;
        limit(at, "options_len", r.options_len.get(), MAX_PATH_LEN)?;
        limit(at, "key_len", r.key_len.get(), MAX_PATH_LEN)?;
        let absolute = |p: &[u8]| p.first() == Some(&b'/') && !p.contains(&0);
        if !absolute(m.mountpoint) || !absolute(m.root) {
            return invalid(
                "mountpoint_len",
                "a mount point or root that is not an absolute path",
            );
        }
        if [m.fstype, m.source, m.options, m.key]
            .iter()
            .any(|b| b.contains(&0))
        {
            return invalid("source_len", "a NUL byte in a name");
        }
        Ok(())
    }

    fn check_mnt_file(&self, at: At, f: &MntFileView<'_>) -> Result<()> {
        let r = &f.rec;
        self.check_ref(at, "mount", r.mount, Kind::Mount, false)?;
        self.check_ref(at, "data", r.data, Kind::Extent, true)?;
        let invalid = |field, what| Err(FormatError::Invalid { at, field, what });
        limit(at, "path_len", r.path_len.get(), MAX_PATH_LEN)?;
        limit(at, "target_len", r.target_len.get(), MAX_PATH_LEN)?;
        // A relative path that stays inside the mount: no empty, `.` or
        // `..` component, no NUL.
        if !f.path.is_empty()
            && (f.path.contains(&0)
                || f.path
                    .split(|&b| b == b'/')
                    .any(|c| c.is_empty() || c == b"." || c == b".."))
        {
            return invalid("path_len", "not a plain relative path inside the mount");
        }
        if f.target.contains(&0) {
            return invalid("target_len", "a NUL byte in a link target");
        }
        let ty = r.mode.get() & libc::S_IFMT;
        if ![
            libc::S_IFDIR,
            libc::S_IFREG,
            libc::S_IFLNK,
            libc::S_IFCHR,
            libc::S_IFBLK,
            libc::S_IFIFO,
        ]
        .contains(&ty)
            || (f.path.is_empty() && ty != libc::S_IFDIR)
        {
            return invalid(
                "mode",
                "not a directory, file, link, device or fifo (the root a directory)",
            );
        }
        if !(0..1_000_000_000).contains(&r.mtime_nsec.get()) {
            return invalid("mtime_nsec", "nanoseconds outside 0..1e9");
        }
        // The data is the extent written just before the entry: so each
        // extent is hashed here once, however many entries a crafted image
        // points at it.
        if r.data.id().is_some_and(|d| Some(d) != at.id.checked_sub(1)) {
            return invalid("data", "not the extent just before the entry");
        }
        let (data, crc) = match r.data.id() {
            Some(id) => match self.object(id)? {
                Object::Extent(e) => (e.rec.data_len.get(), crc32fast::hash(e.data)),
                _ => (u64::MAX, 0),
            },
            None => (0, 0),
        };
        if r.data.id().is_some() && (ty != libc::S_IFREG || data != r.size.get()) {
            return invalid("data", "data for something not a regular file of that size");
        }
        if crc != r.data_crc.get() {
            return invalid("data_crc", "not the CRC of the file's data");
        }
        Ok(())
    }

    fn check_task_core(&self, at: At, c: &TaskCoreView<'_>) -> Result<()> {
        let r = &c.rec;
        self.check_ref(at, "task", r.task, Kind::Task, false)?;
        if r.flags.get() & !task_core_flags::KNOWN != 0 {
            return Err(FormatError::NonZero {
                at,
                field: "flags",
                value: r.flags.get() as u64,
            });
        }
        limit(at, "xstate_len", r.xstate_len.get(), 1 << 16)?;
        limit(at, "groups", r.groups.get(), 65536)?;
        limit(at, "sigactions", r.sigactions.get(), 64)?;
        limit(at, "cwd_len", r.cwd_len.get(), MAX_PATH_LEN)?;
        limit(at, "root_len", r.root_len.get(), MAX_PATH_LEN)?;
        if c.sigactions
            .iter()
            .any(|s| !(1..=64).contains(&s.signo.get()))
        {
            return Err(FormatError::Invalid {
                at,
                field: "sigactions",
                what: "a signal number outside 1..=64",
            });
        }
        Ok(())
    }

    fn check_vma(&self, at: At, v: &VmaView<'_>) -> Result<()> {
        let r = &v.rec;
        self.check_ref(at, "task", r.task, Kind::Task, false)?;
        self.check_ref(at, "pages", r.pages, Kind::Extent, true)?;
        let page = self.header.page_size.get() as u64;
        let (start, end) = (r.start.get(), r.end.get());
        if start >= end || start % page != 0 || end % page != 0 {
            return Err(FormatError::Invalid {
                at,
                field: "start",
                what: "not a page-aligned, non-empty range",
            });
        }
        if r.flags.get() & !vma_flags::KNOWN != 0 || v.kind() > vma_kind::MAX {
            return Err(FormatError::NonZero {
                at,
                field: "flags",
                value: r.flags.get() as u64,
            });
        }
        limit(at, "path_len", r.path_len.get(), MAX_PATH_LEN)?;
        let mut pages = 0u64;
        for run in v.runs {
            let (s, n) = (run.start.get(), run.pages.get());
            let e = n.checked_mul(page).and_then(|len| s.checked_add(len));
            if s % page != 0 || n == 0 || s < start || e.is_none_or(|e| e > end) {
                return Err(FormatError::Invalid {
                    at,
                    field: "runs",
                    what: "a run of pages outside the mapping",
                });
            }
            pages += n;
        }
        let data = match r.pages.id() {
            Some(id) => match self.object(id)? {
                Object::Extent(e) => e.rec.data_len.get(),
                _ => u64::MAX,
            },
            None => 0,
        };
        if pages.checked_mul(page) != Some(data) {
            return Err(FormatError::Invalid {
                at,
                field: "pages",
                what: "the runs' pages do not add up to the extent's data",
            });
        }
        Ok(())
    }

    /// A reference must be UNDEF (when allowed), or name an earlier record of
    /// the expected kind.
    fn check_ref(
        &self,
        at: At,
        field: &'static str,
        r: Ref,
        expected: Kind,
        undef_ok: bool,
    ) -> Result<()> {
        let Some(target) = r.id() else {
            if r.kind.get() != 0 || r.reserved.get() != 0 {
                return Err(FormatError::NonZero {
                    at,
                    field,
                    value: r.kind.get() as u64,
                });
            }
            return if undef_ok {
                Ok(())
            } else {
                Err(FormatError::RefUndef { at, field })
            };
        };
        if target as usize > self.index.len() {
            return Err(FormatError::RefMissing { at, field, target });
        }
        if target >= at.id {
            return Err(FormatError::RefForward { at, field, target });
        }
        let found_raw = self.index[target as usize - 1].kind.get();
        let found = Kind::from_raw(found_raw);
        if found != Some(expected) || r.kind.get() != expected as u16 || r.reserved.get() != 0 {
            return Err(FormatError::RefWrongKind {
                at,
                field,
                target,
                expected,
                found: found.map_or("unknown", Kind::name),
            });
        }
        Ok(())
    }

    /// A hierarchical namespace sits one level below its parent; only one
    /// may have no parent, and it is at level 0.
    fn check_level(
        &self,
        at: At,
        field: &'static str,
        level: u32,
        parent: Ref,
        root_seen: &mut bool,
    ) -> Result<()> {
        if level >= MAX_LEVELS {
            return Err(FormatError::Invalid {
                at,
                field: "level",
                what: "deeper than the kernel allows (32)",
            });
        }
        let parent_level = match parent.id() {
            None => {
                if *root_seen || level != 0 {
                    return Err(FormatError::BadLevel {
                        at,
                        field,
                        level,
                        parent_level: u32::MAX,
                    });
                }
                *root_seen = true;
                return Ok(());
            }
            Some(id) => {
                let at = match self.kind_of(id) {
                    Some(Kind::UserNs) => offset_of!(UserNsRecord, level),
                    _ => offset_of!(PidNsRecord, level),
                };
                self.fixed_field::<U32>(id, at)
                    .map_or(u32::MAX, |l| l.get())
            }
        };
        if parent_level.checked_add(1) != Some(level) {
            return Err(FormatError::BadLevel {
                at,
                field,
                level,
                parent_level,
            });
        }
        Ok(())
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The whole image.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn record_count(&self) -> u32 {
        self.index.len() as u32
    }

    /// The kernel release recorded in the header.
    pub fn kernel_release(&self) -> &[u8] {
        let k = &self.header.kernel_release;
        let n = k.iter().position(|&b| b == 0).unwrap_or(k.len());
        &k[..n]
    }

    /// The kind of record `id`, in O(1) from the index.
    pub fn kind_of(&self, id: u32) -> Option<Kind> {
        let e = self.index.get((id as usize).checked_sub(1)?)?;
        Kind::from_raw(e.kind.get())
    }

    /// Record `id`'s raw parts, in O(1) from the index.
    pub fn raw(&self, id: u32) -> Result<RawRecord<'a>> {
        let missing = FormatError::RefMissing {
            at: At {
                id: 0,
                kind: None,
                offset: 0,
            },
            field: "id",
            target: id,
        };
        let entry = id
            .checked_sub(1)
            .and_then(|i| self.index.get(i as usize))
            .ok_or_else(|| missing.clone())?;
        let offset = entry.offset.get();
        let kind = Kind::from_raw(entry.kind.get());
        let at = At { id, kind, offset };
        let bad = FormatError::PayloadOutOfBounds {
            at,
            len: 0,
            limit: self.bytes.len() as u64,
        };
        let hbytes = self
            .bytes
            .get(offset as usize..)
            .ok_or_else(|| bad.clone())?;
        let (h, _) = RecordHeader::ref_from_prefix(hbytes).map_err(|_| bad.clone())?;
        let Some(kind) = kind else {
            return Err(FormatError::UnknownKind {
                at,
                raw: entry.kind.get(),
            });
        };
        let start = offset + size_of::<RecordHeader>() as u64;
        let payload = start
            .checked_add(h.payload_len.get())
            .and_then(|end| self.bytes.get(start as usize..end as usize))
            .ok_or(bad)?;
        let fixed_len = (h.fixed_len.get() as usize).min(payload.len());
        let (fixed, var) = payload.split_at(fixed_len);
        Ok(RawRecord {
            at,
            kind,
            version: h.version.get(),
            payload_offset: start,
            fixed,
            var,
        })
    }

    /// The typed view of record `id`.
    pub fn object(&self, id: u32) -> Result<Object<'a>> {
        self.object_from_raw(self.raw(id)?)
    }

    /// A `T` at byte `at` of record `id`'s fixed part. Only for records
    /// already framed (whose fixed part is at least its kind's version-1
    /// size) and fields inside that size: it reads straight from the file.
    #[inline]
    fn fixed_field<T: FromBytes + KnownLayout + Immutable + zerocopy::Unaligned + Copy>(
        &self,
        id: u32,
        at: usize,
    ) -> Option<T> {
        let e = self.index.get((id as usize).checked_sub(1)?)?;
        let start = (e.offset.get() as usize).checked_add(size_of::<RecordHeader>() + at)?;
        T::ref_from_prefix(self.bytes.get(start..)?)
            .ok()
            .map(|(t, _)| *t)
    }

    #[inline]
    fn object_from_raw(&self, raw: RawRecord<'a>) -> Result<Object<'a>> {
        let at = raw.at;
        if raw.fixed.len() < raw.kind.min_fixed_len() {
            return Err(FormatError::FixedTooShort {
                at,
                len: raw.fixed.len() as u64,
                min: raw.kind.min_fixed_len() as u64,
            });
        }
        let mut cur = Cursor {
            at,
            rest: raw.var,
            newer: raw.version > raw.kind.current_version(),
        };
        let obj = match raw.kind {
            Kind::UserNs => {
                let rec: UserNsRecord = load_fixed(raw.fixed);
                let uid_map = cur.take::<IdExtent>(rec.uid_extents.get() as u64, "uid_extents")?;
                let gid_map = cur.take::<IdExtent>(rec.gid_extents.get() as u64, "gid_extents")?;
                for (field, n) in [
                    ("uid_extents", rec.uid_extents.get()),
                    ("gid_extents", rec.gid_extents.get()),
                ] {
                    if n > MAX_ID_EXTENTS {
                        return Err(FormatError::Invalid {
                            at,
                            field,
                            what: "more extents than the kernel allows (340)",
                        });
                    }
                }
                cur.finish("gid_extents")?;
                Object::UserNs(UserNsView {
                    rec,
                    uid_map,
                    gid_map,
                })
            }
            Kind::PidNs => {
                cur.finish("last_pid")?;
                Object::PidNs(load_fixed(raw.fixed))
            }
            Kind::UtsNs => {
                let rec: UtsNsRecord = load_fixed(raw.fixed);
                for (field, n) in [
                    ("hostname_len", rec.hostname_len.get()),
                    ("domainname_len", rec.domainname_len.get()),
                ] {
                    if n > MAX_UTS_LEN {
                        return Err(FormatError::Invalid {
                            at,
                            field,
                            what: "longer than the kernel's 64 bytes",
                        });
                    }
                }
                let hostname = cur.take::<u8>(rec.hostname_len.get() as u64, "hostname_len")?;
                let domainname =
                    cur.take::<u8>(rec.domainname_len.get() as u64, "domainname_len")?;
                cur.finish("domainname_len")?;
                Object::UtsNs(UtsNsView {
                    rec,
                    hostname,
                    domainname,
                })
            }
            Kind::TimeNs => {
                cur.finish("boottime_nsec")?;
                Object::TimeNs(load_fixed(raw.fixed))
            }
            Kind::IpcNs => {
                cur.finish("sem")?;
                Object::IpcNs(load_fixed(raw.fixed))
            }
            Kind::MntNs | Kind::NetNs | Kind::CgroupNs => {
                cur.finish("owner")?;
                Object::PlainNs(PlainNsView {
                    kind: raw.kind,
                    common: load_fixed(raw.fixed),
                })
            }
            Kind::Nsproxy => {
                cur.finish("time_for_children")?;
                Object::Nsproxy(load_fixed(raw.fixed))
            }
            Kind::Task => {
                let rec: TaskRecord = load_fixed(raw.fixed);
                let levels = rec.levels.get();
                if levels == 0 || levels > MAX_LEVELS {
                    return Err(FormatError::Invalid {
                        at,
                        field: "levels",
                        what: "must be 1 to 33",
                    });
                }
                if rec.exe_len.get() > MAX_PATH_LEN {
                    return Err(FormatError::Invalid {
                        at,
                        field: "exe_len",
                        what: "longer than PATH_MAX",
                    });
                }
                let l = levels as u64;
                let nspid = cur.take::<U32>(l, "levels")?;
                let nstgid = cur.take::<U32>(l, "levels")?;
                let nspgid = cur.take::<U32>(l, "levels")?;
                let nssid = cur.take::<U32>(l, "levels")?;
                let threads =
                    cur.take::<U32>((rec.threads.get() as u64).saturating_mul(l), "threads")?;
                let exe = cur.take::<u8>(rec.exe_len.get() as u64, "exe_len")?;
                cur.finish("exe_len")?;
                Object::Task(TaskView {
                    rec,
                    nspid,
                    nstgid,
                    nspgid,
                    nssid,
                    threads,
                    exe,
                })
            }
            Kind::Extent => {
                let rec: ExtentRecord = load_fixed(raw.fixed);
                let fixed_end = raw.payload_offset + raw.fixed.len() as u64;
                let data_offset = align_up(fixed_end, EXTENT_ALIGN).unwrap_or(u64::MAX);
                let pad = data_offset - fixed_end;
                let padding = cur.take::<u8>(pad, "data_len")?;
                if let Some(p) = first_nonzero(padding) {
                    return Err(FormatError::NonZeroPadding {
                        at,
                        offset: fixed_end + p as u64,
                    });
                }
                let data = cur.take::<u8>(rec.data_len.get(), "data_len")?;
                cur.finish("data_len")?;
                Object::Extent(ExtentView {
                    rec,
                    data_offset,
                    data,
                })
            }
            Kind::TaskCore => {
                let (rec, _) = TaskCoreRecord::ref_from_prefix(raw.fixed).map_err(|_| {
                    FormatError::FixedTooShort {
                        at,
                        len: raw.fixed.len() as u64,
                        min: size_of::<TaskCoreRecord>() as u64,
                    }
                })?;
                let xstate = cur.take::<u8>(rec.xstate_len.get() as u64, "xstate_len")?;
                let groups = cur.take::<U32>(rec.groups.get() as u64, "groups")?;
                let sigactions =
                    cur.take::<Sigaction>(rec.sigactions.get() as u64, "sigactions")?;
                let pending = cur.take::<PendingSignal>(rec.pending.get() as u64, "pending")?;
                let cwd = cur.take::<u8>(rec.cwd_len.get() as u64, "cwd_len")?;
                let root = cur.take::<u8>(rec.root_len.get() as u64, "root_len")?;
                cur.finish("root_len")?;
                Object::TaskCore(TaskCoreView {
                    rec,
                    xstate,
                    groups,
                    sigactions,
                    pending,
                    cwd,
                    root,
                })
            }
            Kind::Mm => {
                let rec: MmRecord = load_fixed(raw.fixed);
                let auxv = cur.take::<U64>(rec.auxv_words.get() as u64, "auxv_words")?;
                let exe = cur.take::<u8>(rec.exe_len.get() as u64, "exe_len")?;
                cur.finish("exe_len")?;
                Object::Mm(MmView { rec, auxv, exe })
            }
            Kind::Vma => {
                let rec: VmaRecord = load_fixed(raw.fixed);
                let path = cur.take::<u8>(rec.path_len.get() as u64, "path_len")?;
                let runs = cur.take::<PageRunRecord>(rec.runs.get() as u64, "runs")?;
                cur.finish("runs")?;
                Object::Vma(VmaView { rec, path, runs })
            }
            Kind::Pipe => {
                let rec: PipeRecord = load_fixed(raw.fixed);
                let data = cur.take::<u8>(rec.data_len.get() as u64, "data_len")?;
                cur.finish("data_len")?;
                Object::Pipe(PipeView { rec, data })
            }
            Kind::Fd => {
                let rec: FdRecord = load_fixed(raw.fixed);
                let path = cur.take::<u8>(rec.path_len.get() as u64, "path_len")?;
                cur.finish("path_len")?;
                Object::Fd(FdView { rec, path })
            }
            Kind::Mount => {
                let rec: MountRecord = load_fixed(raw.fixed);
                let mut text = |n: U32, field| cur.take::<u8>(n.get() as u64, field);
                let mountpoint = text(rec.mountpoint_len, "mountpoint_len")?;
                let root = text(rec.root_len, "root_len")?;
                let fstype = text(rec.fstype_len, "fstype_len")?;
                let source = text(rec.source_len, "source_len")?;
                let options = text(rec.options_len, "options_len")?;
                let key = text(rec.key_len, "key_len")?;
                cur.finish("key_len")?;
                Object::Mount(MountView {
                    rec,
                    mountpoint,
                    root,
                    fstype,
                    source,
                    options,
                    key,
                })
            }
            Kind::MntFile => {
                let rec: MntFileRecord = load_fixed(raw.fixed);
                let path = cur.take::<u8>(rec.path_len.get() as u64, "path_len")?;
                let target = cur.take::<u8>(rec.target_len.get() as u64, "target_len")?;
                cur.finish("target_len")?;
                Object::MntFile(MntFileView { rec, path, target })
            }
            Kind::NetLink
            | Kind::NetAddr
            | Kind::NetRoute
            | Kind::NetRule
            | Kind::NetNsid
            | Kind::NetSysctl => {
                let v = super::net::parse(raw.kind, raw.fixed, at, |n, field| {
                    cur.take::<u8>(n, field)
                })?;
                cur.finish("variable parts")?;
                Object::Net(v)
            }
        };
        Ok(obj)
    }

    /// Follows a reference (which must not be UNDEF).
    pub fn resolve(&self, r: Ref) -> Result<Object<'a>> {
        self.object(r.id.get())
    }

    /// Every record's view, in file order.
    pub fn objects(&self) -> impl Iterator<Item = (u32, Result<Object<'a>>)> + '_ {
        (1..=self.record_count()).map(move |id| (id, self.object(id)))
    }

    /// [`Image::objects`] of the kinds `keep` accepts only, in id order:
    /// the others are skipped by the index, without being decoded.
    pub fn objects_of<'s>(
        &'s self,
        keep: impl Fn(Kind) -> bool + 's,
    ) -> impl Iterator<Item = (u32, Result<Object<'a>>)> + 's {
        (1..=self.record_count())
            .filter(move |&id| self.kind_of(id).is_none_or(&keep))
            .map(move |id| (id, self.object(id)))
    }
}
