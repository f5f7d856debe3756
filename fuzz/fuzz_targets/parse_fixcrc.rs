//! Like `parse`, but first recomputes every record CRC and the trailer CRC
//! the input's own framing points at, so mutations reach the semantic checks
//! instead of dying at a CRC mismatch. Seed it like `parse`:
//! `cargo fuzz run -s none parse_fixcrc fuzz/corpus/parse_fixcrc fixtures/images`.
#![no_main]

mod common;

use kstate::image::format::RecordHeader;
use libfuzzer_sys::fuzz_target;
use zerocopy::FromBytes;

const HEADER_LEN_AT: usize = 12;
const TRAILER: usize = 32;
const RECORD_HEADER: usize = 32;
const INDEX_ENTRY: usize = 16;
/// Offset of `payload_len` in a record header (the CRC is at 0).
const PAYLOAD_LEN_AT: usize = 24;

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Rewrites the CRCs wherever the framing makes sense; gives up quietly
/// (leaving the rest as is) wherever it does not.
fn fix_crcs(b: &mut [u8]) -> Option<()> {
    let toff = b.len().checked_sub(TRAILER)?;
    // Trailer: magic, total_len, index_offset, record_count, crc.
    let index = usize::try_from(u64_at(b, toff + 16)?).ok()?;
    let count = u32_at(b, toff + 24)? as usize;
    let index_end = index.checked_add(count.checked_mul(INDEX_ENTRY)?)?;
    if index_end > toff {
        return None;
    }
    for i in 0..count {
        let off = usize::try_from(u64_at(b, index + i * INDEX_ENTRY)?).ok()?;
        let plen = usize::try_from(u64_at(b, off.checked_add(PAYLOAD_LEN_AT)?)?).ok()?;
        let start = off.checked_add(RECORD_HEADER)?;
        let Some(payload) = b.get(start..start.saturating_add(plen)) else {
            continue;
        };
        let Ok((h, _)) = RecordHeader::read_from_prefix(&b[off..]) else {
            continue;
        };
        let crc = h.crc_of(payload);
        if let Some(dst) = b.get_mut(off..off + 4) {
            dst.copy_from_slice(&crc.to_le_bytes());
        }
    }
    let header_len = u32_at(b, HEADER_LEN_AT)? as usize;
    let mut h = crc32fast::Hasher::new();
    h.update(b.get(..header_len)?);
    h.update(b.get(index..toff)?);
    h.update(&b[toff..b.len() - 4]);
    let crc = h.finalize();
    let n = b.len();
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    Some(())
}

fuzz_target!(|data: &[u8]| {
    let mut b = data.to_vec();
    let _ = fix_crcs(&mut b);
    common::check(&b);
});
