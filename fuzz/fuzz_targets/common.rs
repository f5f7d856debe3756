//! What the fuzz targets check once `Image::parse` has accepted an input.

use std::hint::black_box;

use kstate::image::format::Kind;
use kstate::image::reader::Object;
use kstate::image::{Image, Ref};
use kstate::kstate::show;

/// A non-UNDEF reference must name an earlier record of `kind` and resolve.
fn follow(img: &Image<'_>, from: u32, r: Ref, kind: Kind) {
    let Some(id) = r.id() else {
        // All zero is UNDEF: a ref with id 0 and another kind is malformed.
        assert_eq!(
            r,
            Ref::UNDEF,
            "record {from}: UNDEF ref with non-zero fields"
        );
        return;
    };
    assert!(id < from, "record {from}: ref to #{id} is not backwards");
    assert_eq!(img.kind_of(id), Some(kind), "record {from}: ref #{id}");
    assert_eq!(
        r.kind.get(),
        kind as u16,
        "record {from}: ref #{id} kind field"
    );
    let target = img
        .resolve(r)
        .unwrap_or_else(|e| panic!("record {from}: ref #{id} does not resolve: {e}"));
    black_box(target);
}

/// Parses `data`; when it is accepted, walks every object, follows every
/// reference and renders `show`'s JSON and text, asserting the reader's
/// promises along the way.
pub fn check(data: &[u8]) {
    let Ok(img) = black_box(Image::parse(black_box(data))) else {
        return;
    };
    black_box(img.header());
    black_box(img.kernel_release());
    for (id, obj) in img.objects() {
        let obj = obj.unwrap_or_else(|e| panic!("record {id} refused after parse: {e}"));
        if let Some(c) = obj.ns_common() {
            follow(&img, id, c.owner, Kind::UserNs);
        }
        match obj {
            Object::PidNs(p) => follow(&img, id, p.parent, Kind::PidNs),
            Object::Nsproxy(np) => {
                for (_, r, kind) in np.refs() {
                    follow(&img, id, r, kind);
                }
            }
            Object::Task(t) => {
                follow(&img, id, t.rec.parent, Kind::Task);
                follow(&img, id, t.rec.nsproxy, Kind::Nsproxy);
                black_box(t.pid());
                black_box(t.comm());
                for pids in t.thread_pids() {
                    black_box(pids);
                }
            }
            Object::Extent(e) => {
                assert_eq!(e.data.len() as u64, e.rec.data_len.get());
                assert_eq!(
                    e.data_offset % 4096,
                    0,
                    "record {id}: extent data not aligned"
                );
                // An extent may belong to a record of any kind.
                let owner = e.rec.owner;
                let kind = owner.id().map_or(Some(Kind::Extent), |o| img.kind_of(o));
                let kind = kind.unwrap_or_else(|| panic!("record {id}: owner of unknown kind"));
                follow(&img, id, owner, kind);
            }
            _ => {}
        }
        black_box(show::object_json(id, &obj));
    }
    let json = show::to_json(&img).unwrap_or_else(|e| panic!("to_json after parse: {e}"));
    black_box(json);
    let text = show::to_text(&img).unwrap_or_else(|e| panic!("to_text after parse: {e}"));
    black_box(text);
}
