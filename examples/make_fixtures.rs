//! Writes the image fixtures of `fixtures/images/`: valid images of several
//! shapes and hand-corrupted ones, plus their README.
//!
//! Run from the repository root: `cargo run --example make_fixtures`.
//! `tests/fuzz_corpus.rs` fails when the checked-in files and this generator
//! disagree.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/images");
    fs::create_dir_all(&dir)?;
    for f in support::fixtures() {
        assert!(f.bytes.len() < 64 * 1024, "{} is too large", f.name);
        fs::write(dir.join(f.name), &f.bytes)?;
        println!("{:>6} bytes  {}", f.bytes.len(), f.name);
    }
    fs::write(dir.join("README.md"), support::fixtures_readme())?;
    println!("wrote {}", dir.display());
    Ok(())
}
