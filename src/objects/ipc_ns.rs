//! IPC namespaces: their sysctls (message queue, semaphore and shared
//! memory limits, the *_next_id values, the POSIX mqueue limits), read by a
//! helper inside the namespace and written back by the task that makes the
//! namespace at restart.

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::{I64, U32};

use super::namespace::ask;
use super::ObjectError;
use crate::image::format::{IpcNsRecord, NsCommon, IPC_SYSCTLS, IPC_SYSCTL_COUNT};
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{NsContents, NsObject};
use crate::procfs;
use crate::sys::nsquery::Query;

/// The sysctl values: the scalar ones, then kernel/sem's four numbers.
pub type IpcValues = ([i64; IPC_SYSCTL_COUNT - 1], [i64; 4]);

pub fn collect(ns: &NsObject) -> Result<NsContents, ObjectError> {
    let paths: Vec<std::ffi::CString> = IPC_SYSCTLS
        .iter()
        .map(|p| std::ffi::CString::new(format!("/proc/sys/{p}")).unwrap_or_default())
        .collect();
    let refs: Vec<&std::ffi::CStr> = paths.iter().map(|c| c.as_c_str()).collect();
    let answers = ask(ns, &Query::ReadFiles(&refs), "the ipc sysctls")?;
    let bad = |what| ObjectError::Parse { ns: ns.key, what };
    if answers.len() != IPC_SYSCTL_COUNT {
        return Err(bad("the ipc sysctls"));
    }
    let mut values = [0i64; IPC_SYSCTL_COUNT - 1];
    for (v, a) in values.iter_mut().zip(&answers) {
        // shmmax and shmall can exceed i64: kept as their 64 bits.
        let t = procfs::trim(a);
        *v = procfs::parse_i64(t)
            .or_else(|| procfs::parse_u64(t).map(|u| u as i64))
            .ok_or(bad("an ipc sysctl"))?;
    }
    let sem: Vec<i64> = procfs::words(&answers[IPC_SYSCTL_COUNT - 1])
        .map(procfs::parse_i64)
        .collect::<Option<_>>()
        .ok_or(bad("kernel/sem"))?;
    let sem: [i64; 4] = sem.try_into().map_err(|_| bad("kernel/sem"))?;
    Ok(NsContents::Ipc((values, sem)))
}

pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    common: NsCommon,
    ns: &NsObject,
) -> std::io::Result<Ref> {
    let (recorded, (values, sem)) = match &ns.contents {
        NsContents::Ipc(v) => (1, *v),
        _ => (0, ([0; IPC_SYSCTL_COUNT - 1], [0; 4])),
    };
    let rec = IpcNsRecord {
        common,
        recorded: U32::new(recorded),
        reserved: U32::ZERO,
        sysctls: values.map(I64::new),
        sem: sem.map(I64::new),
    };
    w.push(Kind::IpcNs, &rec, &[])
}

/// The values of a record, if it has them.
pub fn values(r: &IpcNsRecord) -> Option<IpcValues> {
    (r.recorded.get() == 1).then(|| (r.sysctls.map(|v| v.get()), r.sem.map(|v| v.get())))
}

/// What the restorer writes, file by file (relative to /proc/sys).
pub fn sysctl_writes(v: &IpcValues) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = IPC_SYSCTLS[..IPC_SYSCTL_COUNT - 1]
        .iter()
        .zip(v.0)
        // A *_next_id of -1 is the kernel's "none", which it does not take
        // as a value: it is left as a new namespace has it.
        .filter(|(p, x)| !(p.ends_with("_next_id") && *x < 0))
        .map(|(p, x)| {
            // The *_next_id values are signed; the rest unsigned.
            let text = if p.ends_with("_next_id") {
                x.to_string()
            } else {
                (x as u64).to_string()
            };
            (*p, text)
        })
        .collect();
    let [a, b, c, d] = v.1;
    out.push((
        IPC_SYSCTLS[IPC_SYSCTL_COUNT - 1],
        format!("{a} {b} {c} {d}"),
    ));
    out
}

pub fn describe(r: &IpcNsRecord, out: &mut Map<String, Value>) {
    if let Some(v) = values(r) {
        let mut m = Map::new();
        for (name, value) in sysctl_writes(&v) {
            m.insert(name.into(), json!(value));
        }
        out.insert("sysctls".into(), Value::Object(m));
    }
}
