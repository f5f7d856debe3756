//! Fuzzes `Image::parse` and everything a valid image lets a caller do:
//! typed views, reference resolution and `show` (see `common.rs`).
//!
//! Beyond "no panic, no hang, no huge allocation", it asserts the reader's
//! promise: once `parse` accepts an image, every object view succeeds and
//! every reference resolves to an earlier record of the kind it claims.
//!
//! Seed it with the fixtures:
//! `cargo fuzz run -s none parse fuzz/corpus/parse fixtures/images`.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| common::check(data));
