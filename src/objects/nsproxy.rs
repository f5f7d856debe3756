//! The nsproxy: the set of namespaces a task uses (uts, ipc, mnt, pid and
//! pid_for_children, net, cgroup, time and time_for_children, and user),
//! recorded once for all tasks that use the same set.

use std::io::Write;

use serde_json::{Map, Value};
use zerocopy::little_endian::U32;

use super::namespace::{identify, ref_json, register_link, LINKS};
use super::ObjectError;
use crate::image::format::NsproxyRecord;
use crate::image::{ImageWriter, Kind};
use crate::kstate::registry::{NsproxyKey, Registry};
use crate::procfs;

/// Registers the namespaces of task `pid` and returns its nsproxy key.
/// Every thread must use the same namespaces as the leader.
pub fn collect(reg: &mut Registry, pid: i32, tids: &[i32]) -> Result<NsproxyKey, ObjectError> {
    let mut slots = [0usize; 10];
    let ns_dir = procfs::pid_path(pid, "ns");
    for (slot, (name, kind)) in slots.iter_mut().zip(LINKS) {
        *slot = register_link(reg, pid, &ns_dir.join(name), kind)?;
    }
    for &tid in tids.iter().filter(|&&t| t != pid) {
        let dir = procfs::pid_path(pid, &format!("task/{tid}/ns"));
        for (slot, (name, kind)) in slots.iter().zip(LINKS) {
            let key = identify(pid, &dir.join(name), kind)?;
            let leader = reg.namespaces[*slot].key;
            if key != leader {
                return Err(ObjectError::ThreadNamespace {
                    pid,
                    tid,
                    kind: name,
                    thread_ns: key.ino,
                    leader_ns: leader.ino,
                });
            }
        }
    }
    let [user, uts, ipc, mnt, pid_ns, pid_for_children, net, cgroup, time, time_for_children] =
        slots;
    Ok(NsproxyKey {
        user,
        uts,
        ipc,
        mnt,
        pid: pid_ns,
        pid_for_children,
        net,
        cgroup,
        time,
        time_for_children,
    })
}

/// Dumps every nsproxy; the namespaces must be dumped already.
pub fn dump_all<W: Write>(reg: &mut Registry, w: &mut ImageWriter<W>) -> Result<(), ObjectError> {
    for i in 0..reg.nsproxies.len() {
        let np = &reg.nsproxies[i];
        let r = |slot: usize| reg.namespaces[slot].image_ref;
        let k = np.key;
        let rec = NsproxyRecord {
            users: U32::new(np.users),
            reserved: U32::ZERO,
            user: r(k.user),
            uts: r(k.uts),
            ipc: r(k.ipc),
            mnt: r(k.mnt),
            pid: r(k.pid),
            pid_for_children: r(k.pid_for_children),
            net: r(k.net),
            cgroup: r(k.cgroup),
            time: r(k.time),
            time_for_children: r(k.time_for_children),
        };
        let out = w
            .push(Kind::Nsproxy, &rec, &[])
            .map_err(ObjectError::Write)?;
        log::debug!("dump: nsproxy {i} as record {}", out.id.get());
        reg.nsproxies[i].image_ref = out;
    }
    Ok(())
}

pub fn describe(r: &NsproxyRecord, out: &mut Map<String, Value>) {
    out.insert("users".into(), Value::from(r.users.get()));
    for (field, rf, _) in r.refs() {
        out.insert(field.into(), ref_json(rf));
    }
}
