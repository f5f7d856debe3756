//! Links the `kstate` binary with its hot code first (`link/kstate.order`,
//! made by `scripts/link-order`).
//!
//! Every restored task starts as a fork of kstate and runs a small part of
//! its code before it becomes the task; each text page it touches is a page
//! fault of its own (fork copies no page table entries of the program's
//! text). With the functions restorers and the restart run packed together
//! at the start of the text, a restorer faults in about 6 text pages
//! instead of 18 (BENCHMARKS.md, issue 4, fifth session).
//!
//! The order is a list of symbol names for the linker's
//! `--symbol-ordering-file`, which LLD has (rustc links with its own LLD on
//! x86_64-unknown-linux-gnu since 1.90) and GNU ld has not: the option is
//! given only there. Names that do not exist (the list is older than the
//! code) are skipped, silently: the binary is the same, only less packed.
//! `KSTATE_LINK_ORDER=off` leaves the option out; `KSTATE_LINK_ORDER=PATH`
//! uses another list (`scripts/link-order` does, while it makes one).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=KSTATE_LINK_ORDER");
    let order = match std::env::var_os("KSTATE_LINK_ORDER") {
        Some(v) if v == "off" => return,
        Some(v) => PathBuf::from(v),
        None => {
            let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
            dir.unwrap_or_default().join("link").join("kstate.order")
        }
    };
    println!("cargo:rerun-if-changed={}", order.display());
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-gnu" || !rustc_links_with_lld() || !order.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bin=kstate=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bin=kstate=-Wl,--no-warn-symbol-ordering");
}

/// Whether rustc is 1.90 or later, which links with its own LLD on this
/// target unless told otherwise.
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let mut v = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
