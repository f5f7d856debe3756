//! Tasks: pids at every pid-namespace level, tgid and threads, parent,
//! process group and session, comm and exe.

use std::io::Write;

use serde_json::{json, Map, Value};
use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use super::{proc_err, ObjectError};
use crate::image::format::TaskRecord;
use crate::image::reader::TaskView;
use crate::image::{ImageWriter, Kind, Ref};
use crate::kstate::registry::{Registry, TaskInfo};
use crate::procfs;

fn list_field(
    pid: i32,
    path: &std::path::Path,
    status: &[u8],
    field: &'static str,
) -> Result<Vec<u32>, ObjectError> {
    procfs::field(status, field.as_bytes())
        .and_then(procfs::parse_u32_list)
        .filter(|v| !v.is_empty())
        .ok_or(ObjectError::ProcParse {
            pid,
            path: path.to_path_buf(),
            field,
        })
}

/// Reads task `pid` (a thread-group leader) and its threads `tids`.
pub fn collect(pid: i32, tids: &[i32]) -> Result<TaskInfo, ObjectError> {
    let path = procfs::pid_path(pid, "status");
    let status = procfs::read(&path).map_err(proc_err(pid, &path))?;
    let nspid = list_field(pid, &path, &status, "NSpid")?;
    let nstgid = list_field(pid, &path, &status, "NStgid")?;
    let nspgid = list_field(pid, &path, &status, "NSpgid")?;
    let nssid = list_field(pid, &path, &status, "NSsid")?;
    let ppid = procfs::field(&status, b"PPid")
        .and_then(procfs::parse_u32)
        .ok_or(ObjectError::ProcParse {
            pid,
            path: path.clone(),
            field: "PPid",
        })?;
    let levels = nspid.len();
    if [nstgid.len(), nspgid.len(), nssid.len()]
        .iter()
        .any(|&l| l != levels)
    {
        return Err(ObjectError::ProcParse {
            pid,
            path,
            field: "NSpid/NStgid/NSpgid/NSsid lengths",
        });
    }
    let comm_path = procfs::pid_path(pid, "comm");
    let mut comm = procfs::read(&comm_path).map_err(proc_err(pid, &comm_path))?;
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    let exe_path = procfs::pid_path(pid, "exe");
    let exe = procfs::readlink(&exe_path).map_err(proc_err(pid, &exe_path))?;
    let mut threads = Vec::with_capacity(tids.len());
    for &tid in tids {
        if tid == pid {
            threads.insert(0, nspid.clone());
            continue;
        }
        let tpath = procfs::pid_path(pid, &format!("task/{tid}/status"));
        let tstatus = procfs::read(&tpath).map_err(proc_err(pid, &tpath))?;
        let t = list_field(pid, &tpath, &tstatus, "NSpid")?;
        if t.len() != levels {
            return Err(ObjectError::ProcParse {
                pid,
                path: tpath,
                field: "NSpid",
            });
        }
        threads.push(t);
    }
    Ok(TaskInfo {
        pid,
        ppid,
        nspid,
        nstgid,
        nspgid,
        nssid,
        comm,
        exe,
        threads,
    })
}

/// Dumps every task, parents first; nsproxies must be dumped already.
pub fn dump_all<W: Write>(reg: &mut Registry, w: &mut ImageWriter<W>) -> Result<(), ObjectError> {
    for i in 0..reg.tasks.len() {
        let t = &reg.tasks[i];
        let info = &t.info;
        let mut comm = [0u8; 16];
        let n = info.comm.len().min(15);
        comm[..n].copy_from_slice(&info.comm[..n]);
        let rec = TaskRecord {
            parent: t.parent.map_or(Ref::UNDEF, |p| reg.tasks[p].image_ref),
            nsproxy: reg.nsproxies[t.nsproxy].image_ref,
            ppid: U32::new(info.ppid),
            levels: U32::new(info.nspid.len() as u32),
            threads: U32::new(info.threads.len() as u32),
            exe_len: U32::new(info.exe.len() as u32),
            flags: U32::ZERO,
            reserved: U32::ZERO,
            comm,
        };
        let le = |v: &[u32]| v.iter().map(|&x| U32::new(x)).collect::<Vec<_>>();
        let threads: Vec<U32> = info.threads.iter().flat_map(|t| le(t)).collect();
        let r = w
            .push(
                Kind::Task,
                &rec,
                &[
                    le(&info.nspid).as_bytes(),
                    le(&info.nstgid).as_bytes(),
                    le(&info.nspgid).as_bytes(),
                    le(&info.nssid).as_bytes(),
                    threads.as_bytes(),
                    &info.exe,
                ],
            )
            .map_err(ObjectError::Write)?;
        log::debug!("dump: task {} as record {}", info.pid, r.id.get());
        reg.tasks[i].image_ref = r;
    }
    Ok(())
}

fn pids(v: &[U32]) -> Value {
    v.iter().map(|p| p.get()).collect()
}

pub fn describe(t: &TaskView<'_>, out: &mut Map<String, Value>) {
    out.insert("pid".into(), json!(t.pid()));
    out.insert("parent".into(), super::namespace::ref_json(t.rec.parent));
    out.insert("nsproxy".into(), super::namespace::ref_json(t.rec.nsproxy));
    out.insert("ppid".into(), json!(t.rec.ppid.get()));
    out.insert("nspid".into(), pids(t.nspid));
    out.insert("nstgid".into(), pids(t.nstgid));
    out.insert("nspgid".into(), pids(t.nspgid));
    out.insert("nssid".into(), pids(t.nssid));
    out.insert("threads".into(), t.thread_pids().map(pids).collect());
    out.insert("comm".into(), json!(procfs::show(t.comm())));
    out.insert("exe".into(), json!(procfs::show(t.exe)));
}
