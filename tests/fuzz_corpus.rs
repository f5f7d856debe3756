//! Replays the image fixtures (and a local fuzz corpus, when there is one)
//! through the reader and `show`, and checks the fixtures against their
//! generator. No privileges needed.
//!
//! Sources replayed:
//! - `fixtures/images/` (checked in, made by `examples/make_fixtures.rs`):
//!   `valid-*` must parse, `bad-<what>` must be refused with the variant
//!   [`expected_error`] names;
//! - `fuzz/corpus/parse/` and `fuzz/artifacts/parse/` (gitignored, present
//!   after `cargo fuzz run`): anything may be refused, nothing may panic.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use kstate::image::format::Kind;
use kstate::image::reader::Object;
use kstate::image::{FormatError, Image, Ref};
use kstate::kstate::show;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// A reference must be all-zero UNDEF or resolve to a record of `kind`.
fn check_ref(img: &Image<'_>, r: Ref, kind: Kind, what: &str) {
    let Some(id) = r.id() else {
        assert_eq!(r, Ref::UNDEF, "{what}: UNDEF ref with non-zero fields");
        return;
    };
    assert_eq!(img.kind_of(id), Some(kind), "{what}: ref #{id}");
    img.resolve(r)
        .unwrap_or_else(|e| panic!("{what}: ref #{id} does not resolve: {e}"));
}

/// Parses `bytes`; on success walks every object, follows every reference
/// and renders the JSON and text views, none of which may fail.
fn replay(bytes: &[u8], what: &str) -> Result<(), FormatError> {
    let img = Image::parse(bytes)?;
    let mut n = 0;
    for (id, obj) in img.objects() {
        n += 1;
        let obj = obj.unwrap_or_else(|e| panic!("{what}: record {id} after parse: {e}"));
        if let Some(c) = obj.ns_common() {
            check_ref(&img, c.owner, Kind::UserNs, what);
        }
        match obj {
            Object::PidNs(p) => check_ref(&img, p.parent, Kind::PidNs, what),
            Object::Nsproxy(np) => {
                for (_, r, kind) in np.refs() {
                    check_ref(&img, r, kind, what);
                }
            }
            Object::Task(t) => {
                check_ref(&img, t.rec.parent, Kind::Task, what);
                check_ref(&img, t.rec.nsproxy, Kind::Nsproxy, what);
                assert_eq!(t.nspid.len(), t.rec.levels.get() as usize, "{what}");
                assert_eq!(t.thread_pids().count(), t.rec.threads.get() as usize);
            }
            Object::Mount(m) => {
                check_ref(&img, m.rec.mnt_ns, Kind::MntNs, what);
                check_ref(&img, m.rec.pid_ns, Kind::PidNs, what);
            }
            Object::MntFile(f) => {
                check_ref(&img, f.rec.mount, Kind::Mount, what);
                check_ref(&img, f.rec.data, Kind::Extent, what);
            }
            Object::Extent(e) => {
                assert_eq!(e.data_offset % 4096, 0, "{what}: extent data not aligned");
                assert_eq!(e.data.len() as u64, e.rec.data_len.get());
                // An extent may belong to a record of any kind.
                let owner = e.rec.owner;
                let kind = owner.id().map_or(Some(Kind::Extent), |o| img.kind_of(o));
                check_ref(&img, owner, kind.expect("owner kind"), what);
            }
            _ => {}
        }
        let _ = std::hint::black_box(show::object_json(id, &obj));
    }
    assert_eq!(n, img.record_count(), "{what}");
    let json = show::to_json(&img).unwrap_or_else(|e| panic!("{what}: to_json: {e}"));
    assert_eq!(json["objects"].as_array().map(Vec::len), Some(n as usize));
    show::to_text(&img).unwrap_or_else(|e| panic!("{what}: to_text: {e}"));
    Ok(())
}

/// Whether `err` is the variant the fixture `bad-<what>.kst` must produce.
fn expected_error(name: &str, err: &FormatError) -> bool {
    use FormatError as E;
    match name {
        "bad-magic.kst" => matches!(err, E::BadMagic { .. }),
        "bad-mnt-shared-extent.kst" => matches!(err, E::Invalid { field: "data", .. }),
        "bad-mnt-path.kst" => matches!(
            err,
            E::Invalid {
                field: "path_len",
                ..
            }
        ),
        "bad-major.kst" => matches!(err, E::UnsupportedMajor { major: 2, .. }),
        "bad-truncated.kst" => matches!(err, E::BadTrailerMagic { .. }),
        "bad-bitflip.kst" => matches!(err, E::RecordCrc { .. }),
        "bad-forward-ref.kst" => matches!(err, E::RefForward { field: "pid", .. }),
        "bad-ref-missing.kst" => matches!(
            err,
            E::RefMissing {
                field: "nsproxy",
                target: 77,
                ..
            }
        ),
        "bad-ref-kind.kst" => matches!(
            err,
            E::RefWrongKind {
                field: "uts",
                expected: Kind::UtsNs,
                found: "ipc_ns",
                ..
            }
        ),
        "bad-pidns-level.kst" => matches!(
            err,
            E::BadLevel {
                level: 3,
                parent_level: 1,
                ..
            }
        ),
        "bad-count.kst" => matches!(
            err,
            E::CountTooLarge {
                field: "uid_extents",
                count: 340,
                ..
            }
        ),
        "bad-record-count.kst" => matches!(
            err,
            E::BadTrailerField {
                field: "record_count",
                ..
            }
        ),
        "bad-net-sysctl.kst" => matches!(err, E::Invalid { field: "name", .. }),
        other => panic!("no expected error for fixture {other}: add it to expected_error"),
    }
}

#[test]
fn fixtures_parse_or_fail_as_expected() {
    let dir = root().join("fixtures/images");
    let all = files(&dir);
    let kst: Vec<_> = all
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "kst"))
        .collect();
    assert!(kst.len() >= 10, "fixtures missing in {}", dir.display());
    for path in kst {
        let name = path.file_name().unwrap().to_str().unwrap();
        let bytes = fs::read(path).unwrap();
        let res = replay(&bytes, name);
        if name.starts_with("valid-") {
            if let Err(e) = res {
                panic!("{name} must parse: {e}");
            }
        } else if name.starts_with("bad-") {
            match res {
                Ok(()) => panic!("{name} must be refused"),
                Err(e) => assert!(expected_error(name, &e), "{name}: unexpected error {e:?}"),
            }
        } else {
            panic!("{name}: fixtures are named valid-*.kst or bad-*.kst");
        }
    }
}

#[test]
fn fuzz_corpus_does_not_panic() {
    let mut n = 0;
    for sub in ["fuzz/corpus/parse", "fuzz/artifacts/parse"] {
        for path in files(&root().join(sub)) {
            let bytes = fs::read(&path).unwrap();
            let _ = replay(&bytes, &path.display().to_string());
            n += 1;
        }
    }
    eprintln!("replayed {n} fuzz inputs");
}

#[test]
fn fixtures_match_generator() {
    let dir = root().join("fixtures/images");
    let gen = support::fixtures();
    let mut expected: Vec<&str> = gen.iter().map(|f| f.name).collect();
    expected.push("README.md");
    expected.sort_unstable();
    let mut present: Vec<String> = files(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    present.sort();
    assert_eq!(
        present, expected,
        "fixtures/images is stale: run `cargo run --example make_fixtures`"
    );
    for f in &gen {
        let on_disk = fs::read(dir.join(f.name)).unwrap();
        assert!(
            on_disk == f.bytes,
            "{} differs from the generator: run `cargo run --example make_fixtures`",
            f.name
        );
        assert!(f.bytes.len() < 64 * 1024, "{} is too large", f.name);
    }
    let readme = fs::read_to_string(dir.join("README.md")).unwrap();
    assert_eq!(readme, support::fixtures_readme(), "README.md is stale");
}

#[test]
fn builder_images_parse() {
    for (name, bytes) in [
        ("empty", support::image_empty()),
        ("minimal", support::image_minimal()),
        ("extent", support::image_with_extent()),
        ("many", support::image_many(1000)),
    ] {
        replay(&bytes, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for levels in [1, 2, 3, 8, 33] {
        for per in [0, 1, 3] {
            let bytes = support::image_nested(levels, per);
            let img = Image::parse(&bytes)
                .unwrap_or_else(|e| panic!("image_nested({levels}, {per}): {e}"));
            let tasks = img
                .objects()
                .filter(|(_, o)| matches!(o, Ok(Object::Task(_))))
                .count();
            assert_eq!(tasks, (levels * per) as usize);
            replay(&bytes, "nested").unwrap();
        }
    }
}

#[test]
fn extent_data_is_page_aligned() {
    let bytes = support::image_with_extent();
    let img = Image::parse(&bytes).unwrap();
    let mut extents = img.objects().filter_map(|(_, o)| match o {
        Ok(Object::Extent(e)) => Some(e),
        _ => None,
    });
    let first = extents.next().expect("an extent");
    assert_eq!(first.data_offset % 4096, 0);
    assert_eq!(first.data, &support::extent_data()[..]);
    assert_eq!(extents.next().map(|e| e.data.len()), Some(0));
}

#[test]
fn many_objects_build_quickly() {
    let t = std::time::Instant::now();
    let bytes = support::image_many(100_000);
    let built = t.elapsed();
    let img = Image::parse(&bytes).unwrap();
    assert!(img.record_count() > 100_000);
    // Generous: debug builds are slow; release builds take a few ms.
    assert!(built.as_secs() < 5, "image_many(100_000) took {built:?}");
}

#[test]
fn patch_payload_keeps_framing_valid() {
    // Rewriting a field with itself must leave a parseable image.
    let mut bytes = support::image_minimal();
    let np = support::nth_of_kind(&bytes, Kind::Nsproxy, 0);
    let r = support::payload_range(&bytes, np);
    let old = bytes[r.start..r.start + 8].to_vec();
    support::patch_payload(&mut bytes, np, 0, &old);
    Image::parse(&bytes).unwrap();
    // And a changed payload gets a matching CRC: only the semantics trip.
    support::patch_payload(&mut bytes, np, 4, &1u32.to_le_bytes());
    assert!(matches!(
        Image::parse(&bytes),
        Err(FormatError::NonZero {
            field: "reserved",
            ..
        })
    ));
}
