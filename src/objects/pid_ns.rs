//! Pid namespaces: the hierarchy and the last pid allocated in each.
//!
//! last_pid is what /proc/sys/kernel/ns_last_pid shows to a task *inside* the
//! namespace. A helper creates such a task with clone3(set_tid), giving it a
//! chosen free pid at every level below the checkpointer's; allocating a pid
//! with set_tid does not move a namespace's pid cursor, so reading last_pid
//! does not change it.

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::U32;

use super::namespace::ask;
use super::ObjectError;
use crate::image::format::{NsCommon, PidNsRecord};
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsContents, NsObject};
use crate::procfs;
use crate::sys::nsquery::Query;

/// How many candidate pids the helper tries before giving up.
const PID_TRIES: i32 = 64;

pub fn collect(ns: &NsObject) -> Result<NsContents, ObjectError> {
    if ns.level == 0 {
        // The checkpointer's own pid namespace can only be external.
        return Ok(NsContents::None);
    }
    let pid_max = procfs::read(std::path::Path::new("/proc/sys/kernel/pid_max"))
        .ok()
        .and_then(|b| procfs::parse_u32(procfs::trim(&b)))
        .unwrap_or(32768) as i32;
    let q = Query::LastPid {
        levels: ns.level as usize,
        first: pid_max - 1,
        tries: PID_TRIES,
    };
    let answers = ask(ns, &q, "ns_last_pid")?;
    let last_pid = answers
        .first()
        .and_then(|a| procfs::parse_u32(procfs::trim(a)))
        .ok_or(ObjectError::Parse {
            ns: ns.key,
            what: "ns_last_pid",
        })?;
    Ok(NsContents::Pid { last_pid })
}

pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    common: NsCommon,
    ns: &NsObject,
    parent: Ref,
) -> std::io::Result<Ref> {
    let last_pid = match ns.contents {
        NsContents::Pid { last_pid } => last_pid,
        _ => 0,
    };
    let rec = PidNsRecord {
        common,
        parent,
        level: U32::new(ns.level),
        last_pid: U32::new(last_pid),
    };
    w.push(Kind::PidNs, &rec, &[])
}

pub fn describe(r: &PidNsRecord, out: &mut Map<String, Value>) {
    out.insert("level".into(), json!(r.level.get()));
    out.insert("parent".into(), super::namespace::ref_json(r.parent));
    out.insert("last_pid".into(), json!(r.last_pid.get()));
}
