//! User namespaces: parent, uid_map, gid_map and setgroups.
//!
//! The maps are read from inside the namespace (a helper enters it and reads
//! /proc/self/uid_map), because the kernel shows a map's lower ids in the
//! reader's namespace: from inside, they read in the parent's terms, which is
//! what a restorer writes back.

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use super::namespace::ask;
use super::ObjectError;
use crate::image::format::{IdExtent, NsCommon, Setgroups, UserNsRecord};
use crate::image::reader::UserNsView;
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsContents, NsObject};
use crate::procfs;
use crate::sys::nsquery::Query;

pub fn collect(ns: &NsObject) -> Result<NsContents, ObjectError> {
    let files = [
        c"/proc/self/uid_map",
        c"/proc/self/gid_map",
        c"/proc/self/setgroups",
    ];
    let answers = ask(
        ns,
        &Query::ReadFiles(&files),
        "uid_map, gid_map and setgroups",
    )?;
    let parse_err = |what| ObjectError::Parse { ns: ns.key, what };
    let [uid, gid, sg] = answers.as_slice() else {
        return Err(parse_err("the helper's answers"));
    };
    let uid_map = procfs::parse_id_map(uid).ok_or(parse_err("uid_map"))?;
    let gid_map = procfs::parse_id_map(gid).ok_or(parse_err("gid_map"))?;
    let setgroups = match procfs::trim(sg) {
        b"allow" => Setgroups::Allow,
        b"deny" => Setgroups::Deny,
        _ => return Err(parse_err("setgroups")),
    };
    Ok(NsContents::User {
        uid_map,
        gid_map,
        setgroups,
    })
}

fn extents(map: &[[u32; 3]]) -> Vec<IdExtent> {
    map.iter()
        .map(|e| IdExtent {
            first: U32::new(e[0]),
            lower_first: U32::new(e[1]),
            count: U32::new(e[2]),
        })
        .collect()
}

pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    common: NsCommon,
    ns: &NsObject,
) -> std::io::Result<Ref> {
    let (uid, gid, setgroups) = match &ns.contents {
        NsContents::User {
            uid_map,
            gid_map,
            setgroups,
        } => (extents(uid_map), extents(gid_map), *setgroups),
        _ => (Vec::new(), Vec::new(), Setgroups::Unknown),
    };
    let rec = UserNsRecord {
        common,
        level: U32::new(ns.level),
        setgroups: U32::new(setgroups as u32),
        uid_extents: U32::new(uid.len() as u32),
        gid_extents: U32::new(gid.len() as u32),
    };
    w.push(Kind::UserNs, &rec, &[uid.as_bytes(), gid.as_bytes()])
}

fn map_json(map: &[IdExtent]) -> Value {
    map.iter()
        .map(|e| json!([e.first.get(), e.lower_first.get(), e.count.get()]))
        .collect()
}

pub fn describe(v: &UserNsView<'_>, out: &mut Map<String, Value>) {
    out.insert("level".into(), json!(v.rec.level.get()));
    out.insert(
        "parent".into(),
        super::namespace::ref_json(v.rec.common.owner),
    );
    out.insert("uid_map".into(), map_json(v.uid_map));
    out.insert("gid_map".into(), map_json(v.gid_map));
    let sg = Setgroups::from_raw(v.rec.setgroups.get()).unwrap_or(Setgroups::Unknown);
    out.insert("setgroups".into(), json!(sg.name()));
}
