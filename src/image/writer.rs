//! Writing an image as a stream: header, records in order, index, trailer.
//!
//! The writer never seeks, so it can write to a pipe (`-o -`). It hands out a
//! [`Ref`] for each record it writes; a caller can only refer to records that
//! it has already written, which keeps every reference pointing backwards.

use std::io::{self, Write};

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use super::format::{
    ExtentRecord, FileHeader, IndexEntry, Kind, RecordHeader, Ref, Trailer, ARCH_X86_64,
    EXTENT_ALIGN, MAGIC, MAJOR, MINOR, RECORD_ALIGN, TRAILER_MAGIC,
};

const ZEROS: [u8; EXTENT_ALIGN as usize] = [0; EXTENT_ALIGN as usize];

/// What goes into the file header.
#[derive(Clone, Debug)]
pub struct HeaderInfo {
    pub arch: u32,
    pub page_size: u32,
    pub kernel_release: Vec<u8>,
}

impl Default for HeaderInfo {
    fn default() -> Self {
        HeaderInfo {
            arch: ARCH_X86_64,
            page_size: 4096,
            kernel_release: Vec::new(),
        }
    }
}

/// A streaming image writer over any `Write`.
pub struct ImageWriter<W: Write> {
    out: W,
    pos: u64,
    index: Vec<IndexEntry>,
    header: FileHeader,
    /// Version to stamp on the next record (0: the kind's current one).
    version: u16,
    /// Record CRCs known only after their data was written
    /// ([`ImageWriter::push_extent_deferred`]): (file offset, CRC), to be
    /// written in place once the stream is flushed.
    patches: Vec<(u64, u32)>,
    /// The caller will write deferred CRCs in place: bulk data may be
    /// streamed once ([`ImageWriter::push_extent_deferred`]).
    can_patch: bool,
}

impl<W: Write> ImageWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W, info: &HeaderInfo) -> io::Result<Self> {
        let mut header = FileHeader::new_zeroed();
        header.magic = MAGIC;
        header.major = U16::new(MAJOR);
        header.minor = U16::new(MINOR);
        header.header_len = U32::new(core::mem::size_of::<FileHeader>() as u32);
        header.arch = U32::new(info.arch);
        header.page_size = U32::new(info.page_size);
        let n = info
            .kernel_release
            .len()
            .min(header.kernel_release.len() - 1);
        header.kernel_release[..n].copy_from_slice(&info.kernel_release[..n]);
        out.write_all(header.as_bytes())?;
        Ok(ImageWriter {
            out,
            pos: header.as_bytes().len() as u64,
            index: Vec::new(),
            header,
            version: 0,
            patches: Vec::new(),
            can_patch: false,
        })
    }

    /// Says the caller will write deferred record CRCs in place after the
    /// output is flushed (its output is a regular file).
    pub fn allow_patches(&mut self) {
        self.can_patch = true;
    }

    /// Whether [`ImageWriter::push_extent_deferred`] may be used.
    pub fn can_patch(&self) -> bool {
        self.can_patch
    }

    /// Number of records written so far.
    pub fn record_count(&self) -> u32 {
        self.index.len() as u32
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> io::Result<()> {
        let pad = (align - self.pos % align) % align;
        self.put(&ZEROS[..pad as usize])
    }

    /// Writes one record: a fixed part and its variable parts in order.
    pub fn push<T: IntoBytes + zerocopy::Immutable>(
        &mut self,
        kind: Kind,
        fixed: &T,
        vars: &[&[u8]],
    ) -> io::Result<Ref> {
        self.push_version(kind, kind.current_version(), fixed, vars)
    }

    /// Like [`ImageWriter::push`], stamping an older record `version` (whose
    /// fixed part `fixed` must be): what an older kstate wrote, for tests of
    /// how newer readers take it.
    pub fn push_version<T: IntoBytes + zerocopy::Immutable>(
        &mut self,
        kind: Kind,
        version: u16,
        fixed: &T,
        vars: &[&[u8]],
    ) -> io::Result<Ref> {
        self.version = version;
        let fixed = fixed.as_bytes();
        let len = fixed.len() as u64 + vars.iter().map(|v| v.len() as u64).sum::<u64>();
        let r = self.begin(kind, fixed.len(), len, |crc| {
            crc.update(fixed);
            vars.iter().for_each(|v| crc.update(v));
        })?;
        self.put(fixed)?;
        for v in vars {
            self.put(v)?;
        }
        self.pad_to(RECORD_ALIGN)?;
        Ok(r)
    }

    /// Writes bulk data as an extent record whose data starts on a page
    /// boundary of the file.
    pub fn push_extent(&mut self, owner: Ref, data: &[u8]) -> io::Result<Ref> {
        let mut fixed = ExtentRecord::new_zeroed();
        fixed.data_len = U64::new(data.len() as u64);
        fixed.owner = owner;
        let fixed = fixed.as_bytes();
        let hdr_end = self.pos + core::mem::size_of::<RecordHeader>() as u64;
        let fixed_end = hdr_end + fixed.len() as u64;
        let pad = (EXTENT_ALIGN - fixed_end % EXTENT_ALIGN) % EXTENT_ALIGN;
        let len = fixed.len() as u64 + pad + data.len() as u64;
        let r = self.begin(Kind::Extent, fixed.len(), len, |crc| {
            crc.update(fixed);
            crc.update(&ZEROS[..pad as usize]);
            crc.update(data);
        })?;
        self.put(fixed)?;
        self.put(&ZEROS[..pad as usize])?;
        self.put(data)?;
        self.pad_to(RECORD_ALIGN)?;
        Ok(r)
    }

    /// Writes an extent of `len` bytes streamed by `fill` (through the sink
    /// it is given), without holding the data in memory. `data_crc` is a
    /// CRC state fed exactly those bytes beforehand: the record's CRC goes
    /// in its header, ahead of the data. Fails if `fill` writes another
    /// number of bytes.
    pub fn push_extent_streamed(
        &mut self,
        owner: Ref,
        len: u64,
        data_crc: &crc32fast::Hasher,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>,
    ) -> io::Result<Ref> {
        self.stream_extent(owner, len, Some(data_crc), fill)
            .map(|(r, _)| r)
    }

    /// Like [`ImageWriter::push_extent_streamed`], reading the data once:
    /// the record header goes out with a provisional CRC, the CRC is computed as
    /// the data streams, and is left as a patch for the caller to write in
    /// place (at the returned offset, 4 little-endian bytes) once the output
    /// is flushed — see [`ImageWriter::finish_patched`]. Only for an output
    /// that can be written at an offset afterwards (a regular file).
    pub fn push_extent_deferred(
        &mut self,
        owner: Ref,
        len: u64,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>,
    ) -> io::Result<Ref> {
        let at = self.pos;
        let (r, crc) = self.stream_extent(owner, len, None, fill)?;
        self.patches.push((at, crc.finalize()));
        Ok(r)
    }

    /// Writes an extent record whose `len` bytes of data `fill` streams.
    /// With `data_crc` (the CRC of exactly those bytes) the header carries
    /// the record's CRC; without, a provisional one, and the record's CRC is
    /// computed as the data goes by and returned.
    fn stream_extent(
        &mut self,
        owner: Ref,
        len: u64,
        data_crc: Option<&crc32fast::Hasher>,
        fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> io::Result<()>) -> io::Result<()>,
    ) -> io::Result<(Ref, crc32fast::Hasher)> {
        let mut fixed = ExtentRecord::new_zeroed();
        fixed.data_len = U64::new(len);
        fixed.owner = owner;
        let fixed = fixed.as_bytes();
        let hdr_end = self.pos + core::mem::size_of::<RecordHeader>() as u64;
        let fixed_end = hdr_end + fixed.len() as u64;
        let pad = (EXTENT_ALIGN - fixed_end % EXTENT_ALIGN) % EXTENT_ALIGN;
        let total = fixed.len() as u64 + pad + len;
        let mut running = crc32fast::Hasher::new();
        let r = self.begin(Kind::Extent, fixed.len(), total, |crc| {
            crc.update(fixed);
            crc.update(&ZEROS[..pad as usize]);
            running = crc.clone();
            if let Some(d) = data_crc {
                crc.combine(d);
            }
        })?;
        self.put(fixed)?;
        self.put(&ZEROS[..pad as usize])?;
        let mut written = 0u64;
        let track = data_crc.is_none();
        fill(&mut |chunk: &[u8]| {
            written += chunk.len() as u64;
            if track {
                running.update(chunk);
            }
            self.put(chunk)
        })?;
        if written != len {
            return Err(io::Error::other(format!(
                "extent of {len} bytes announced, {written} written"
            )));
        }
        self.pad_to(RECORD_ALIGN)?;
        Ok((r, running))
    }

    fn begin(
        &mut self,
        kind: Kind,
        fixed_len: usize,
        len: u64,
        payload: impl FnOnce(&mut crc32fast::Hasher),
    ) -> io::Result<Ref> {
        let id = self.index.len() as u32 + 1;
        let mut h = RecordHeader::new_zeroed();
        h.kind = U16::new(kind as u16);
        h.version = U16::new(if self.version == 0 {
            kind.current_version()
        } else {
            self.version
        });
        self.version = 0;
        h.header_len = U16::new(core::mem::size_of::<RecordHeader>() as u16);
        h.fixed_len = U16::new(fixed_len as u16);
        h.id = U32::new(id);
        h.payload_len = U64::new(len);
        let mut crc = h.crc_start();
        payload(&mut crc);
        h.crc = U32::new(crc.finalize());
        let mut e = IndexEntry::new_zeroed();
        e.offset = U64::new(self.pos);
        e.kind = h.kind;
        e.version = h.version;
        self.index.push(e);
        self.put(h.as_bytes())?;
        Ok(Ref::new(kind, id))
    }

    /// Writes the index and the trailer, flushes, and returns the output.
    /// Fails if a record's CRC is still to be written in place (use
    /// [`ImageWriter::finish_patched`]).
    pub fn finish(self) -> io::Result<W> {
        let (out, patches) = self.finish_patched()?;
        if !patches.is_empty() {
            return Err(io::Error::other(
                "the image has record CRCs to write in place; finish_patched returns them",
            ));
        }
        Ok(out)
    }

    /// Like [`ImageWriter::finish`], also returning the record CRCs to write
    /// in place, as (file offset, CRC), after the output is flushed: the
    /// image is valid only then.
    pub fn finish_patched(mut self) -> io::Result<(W, Vec<(u64, u32)>)> {
        let index_offset = self.pos;
        let index = std::mem::take(&mut self.index);
        self.put(index.as_bytes())?;
        let mut t = Trailer::new_zeroed();
        t.magic = TRAILER_MAGIC;
        t.total_len = U64::new(self.pos + core::mem::size_of::<Trailer>() as u64);
        t.index_offset = U64::new(index_offset);
        t.record_count = U32::new(index.len() as u32);
        t.crc = U32::new(trailer_crc(self.header.as_bytes(), index.as_bytes(), &t));
        self.put(t.as_bytes())?;
        self.out.flush()?;
        let patches = std::mem::take(&mut self.patches);
        Ok((self.out, patches))
    }
}

/// The CRC the trailer carries: over the header, the index, and the trailer's
/// own bytes before its `crc` field.
pub(super) fn trailer_crc(header: &[u8], index: &[u8], trailer: &Trailer) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(header);
    crc.update(index);
    let tb = trailer.as_bytes();
    crc.update(&tb[..tb.len() - 4]);
    crc.finalize()
}
