//! Time namespaces: the CLOCK_MONOTONIC and CLOCK_BOOTTIME offsets, read by a
//! helper that enters the namespace (timens_offsets shows the offsets of the
//! reader's time_for_children namespace, which setns sets too).

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::I64;

use super::namespace::ask;
use super::ObjectError;
use crate::image::format::{NsCommon, TimeNsRecord};
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsContents, NsObject};
use crate::procfs;
use crate::sys::nsquery::Query;

pub fn collect(ns: &NsObject) -> Result<NsContents, ObjectError> {
    let files = [c"/proc/self/timens_offsets"];
    let answers = ask(ns, &Query::ReadFiles(&files), "timens_offsets")?;
    let (monotonic, boottime) = answers
        .first()
        .and_then(|a| procfs::parse_timens_offsets(a))
        .ok_or(ObjectError::Parse {
            ns: ns.key,
            what: "timens_offsets",
        })?;
    Ok(NsContents::Time {
        monotonic,
        boottime,
    })
}

pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    common: NsCommon,
    ns: &NsObject,
) -> std::io::Result<Ref> {
    let ((ms, mn), (bs, bn)) = match ns.contents {
        NsContents::Time {
            monotonic,
            boottime,
        } => (monotonic, boottime),
        _ => ((0, 0), (0, 0)),
    };
    let rec = TimeNsRecord {
        common,
        monotonic_sec: I64::new(ms),
        monotonic_nsec: I64::new(mn),
        boottime_sec: I64::new(bs),
        boottime_nsec: I64::new(bn),
    };
    w.push(Kind::TimeNs, &rec, &[])
}

pub fn describe(r: &TimeNsRecord, out: &mut Map<String, Value>) {
    out.insert(
        "monotonic".into(),
        json!([r.monotonic_sec.get(), r.monotonic_nsec.get()]),
    );
    out.insert(
        "boottime".into(),
        json!([r.boottime_sec.get(), r.boottime_nsec.get()]),
    );
}
