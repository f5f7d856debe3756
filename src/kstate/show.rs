//! `kstate show`: an image's object graph, as JSON for tools or as an
//! indented listing for people. Both come from the same JSON description.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::image::format::ARCH_X86_64;
use crate::image::reader::Object;
use crate::image::{FormatError, Image};
use crate::objects::{core, files, mnt_ns, namespace, nsproxy, task, vma};
use crate::procfs;

fn arch_name(arch: u32) -> String {
    match arch {
        ARCH_X86_64 => "x86_64".into(),
        other => format!("{other:#x}"),
    }
}

/// One record as JSON: `id`, `kind`, then the kind's own fields.
pub fn object_json(id: u32, obj: &Object<'_>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(id));
    let kind = obj.kind().name();
    m.insert("kind".into(), json!(kind));
    match obj {
        Object::Nsproxy(r) => nsproxy::describe(r, &mut m),
        Object::Task(t) => task::describe(t, &mut m),
        Object::Extent(e) => {
            m.insert("owner".into(), namespace::ref_json(e.rec.owner));
            m.insert("data_offset".into(), json!(e.data_offset));
            m.insert("data_len".into(), json!(e.data.len()));
        }
        Object::TaskCore(c) => core::describe(c, &mut m),
        Object::Mm(v) => vma::describe_mm(v, &mut m),
        Object::Vma(v) => vma::describe_vma(v, &mut m),
        Object::Pipe(p) => files::describe_pipe(p, &mut m),
        Object::Fd(f) => files::describe_fd(f, &mut m),
        Object::Mount(v) => mnt_ns::describe_mount(v, &mut m),
        Object::MntFile(v) => mnt_ns::describe_file(v, &mut m),
        Object::Net(v) => crate::objects::net::describe(v, &mut m),
        ns => namespace::describe(ns, &mut m),
    }
    Value::Object(m)
}

/// The whole image as JSON.
pub fn to_json(img: &Image<'_>) -> Result<Value, FormatError> {
    let h = img.header();
    let objects = img
        .objects()
        .map(|(id, obj)| obj.map(|o| object_json(id, &o)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "format": {
            "major": h.major.get(),
            "minor": h.minor.get(),
            "arch": arch_name(h.arch.get()),
            "page_size": h.page_size.get(),
            "kernel_release": procfs::show(img.kernel_release()),
            "records": img.record_count(),
            "bytes": img.bytes().len(),
        },
        "objects": objects,
    }))
}

fn r(v: &Value) -> String {
    match v.as_u64() {
        Some(id) => format!("#{id}"),
        None => "-".into(),
    }
}

fn map_text(v: &Value) -> String {
    let lines: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let n: Vec<String> = e
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| x.to_string())
                .collect();
            n.join(":")
        })
        .collect();
    if lines.is_empty() {
        "none".into()
    } else {
        lines.join(",")
    }
}

fn ns_line(o: &Value) -> String {
    let mut s = format!("{} {}", r(&o["id"]), o["kind"].as_str().unwrap_or("?"));
    if let Some(level) = o.get("level") {
        let _ = write!(s, " level {level}");
    }
    if o["external"] == json!(true) {
        let _ = write!(s, " external ino {}", o["ino"]);
        return s;
    }
    if let Some(p) = o.get("parent") {
        let _ = write!(s, " parent {}", r(p));
    }
    let _ = write!(
        s,
        " owner {} users {} ino {}",
        r(&o["owner"]),
        o["users"],
        o["ino"]
    );
    match o["kind"].as_str() {
        Some("user_ns") => {
            let _ = write!(
                s,
                " uid_map {} gid_map {} setgroups {}",
                map_text(&o["uid_map"]),
                map_text(&o["gid_map"]),
                o["setgroups"].as_str().unwrap_or("?")
            );
        }
        Some("pid_ns") => {
            let _ = write!(s, " last_pid {}", o["last_pid"]);
        }
        Some("uts_ns") => {
            let _ = write!(
                s,
                " hostname {} domainname {}",
                o["hostname"], o["domainname"]
            );
        }
        Some("time_ns") => {
            let _ = write!(
                s,
                " monotonic {}s+{}ns boottime {}s+{}ns",
                o["monotonic"][0], o["monotonic"][1], o["boottime"][0], o["boottime"][1]
            );
        }
        _ => {}
    }
    s
}

/// The human listing.
pub fn to_text(img: &Image<'_>) -> Result<String, FormatError> {
    let j = to_json(img)?;
    let f = &j["format"];
    let mut out = format!(
        "kstate image {}.{}, {}, page size {}, kernel {}, {} records, {} bytes\n",
        f["major"],
        f["minor"],
        f["arch"].as_str().unwrap_or("?"),
        f["page_size"],
        f["kernel_release"].as_str().unwrap_or("?"),
        f["records"],
        f["bytes"]
    );
    let objects = j["objects"].as_array().cloned().unwrap_or_default();
    let of = |kind: &'static str| objects.iter().filter(move |o| o["kind"] == json!(kind));
    out.push_str("namespaces:\n");
    for o in objects
        .iter()
        .filter(|o| o["kind"].as_str().is_some_and(|k| k.ends_with("_ns")))
    {
        let _ = writeln!(out, "  {}", ns_line(o));
    }
    out.push_str("nsproxies:\n");
    for o in of("nsproxy") {
        let _ = writeln!(
            out,
            "  {} used by {} tasks: user {} uts {} ipc {} mnt {} pid {} pid_for_children {} net {} cgroup {} time {} time_for_children {}",
            r(&o["id"]),
            o["users"],
            r(&o["user"]),
            r(&o["uts"]),
            r(&o["ipc"]),
            r(&o["mnt"]),
            r(&o["pid"]),
            r(&o["pid_for_children"]),
            r(&o["net"]),
            r(&o["cgroup"]),
            r(&o["time"]),
            r(&o["time_for_children"])
        );
    }
    out.push_str("tasks:\n");
    let mut depth: std::collections::HashMap<u64, usize> = Default::default();
    for o in of("task") {
        let d = o["parent"]
            .as_u64()
            .and_then(|p| depth.get(&p))
            .map_or(0, |d| d + 1);
        if let Some(id) = o["id"].as_u64() {
            depth.insert(id, d);
        }
        let pids: Vec<String> = o["nspid"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p.to_string())
            .collect();
        let threads = o["threads"].as_array().map_or(0, |t| t.len());
        let _ = writeln!(
            out,
            "  {}{} pid {} comm {} nsproxy {} pgid {} sid {} threads {} exe {}",
            "  ".repeat(d),
            r(&o["id"]),
            pids.join("/"),
            o["comm"],
            r(&o["nsproxy"]),
            o["nspgid"]
                .as_array()
                .and_then(|a| a.last())
                .unwrap_or(&Value::Null),
            o["nssid"]
                .as_array()
                .and_then(|a| a.last())
                .unwrap_or(&Value::Null),
            threads,
            o["exe"]
        );
    }
    let mounts: Vec<&Value> = of("mount").collect();
    if !mounts.is_empty() {
        out.push_str("mounts:\n");
    }
    for o in mounts {
        let words = |v: &Value| -> String {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = writeln!(
            out,
            "  {} mnt_ns {} #{} {} {} {} source {} root {} {} [{}] {}",
            r(&o["id"]),
            r(&o["mnt_ns"]),
            o["index"],
            o["how"].as_str().unwrap_or("?"),
            o["mountpoint"].as_str().unwrap_or("?"),
            o["fstype"].as_str().unwrap_or("?"),
            o["source"].as_str().unwrap_or("?"),
            o["root"].as_str().unwrap_or("?"),
            words(&o["flags"]),
            o["options"].as_str().unwrap_or("?"),
            words(&o["propagation"]),
        );
    }
    let files = of("mnt_file").count();
    if files > 0 {
        let _ = writeln!(out, "tmpfs entries: {files}");
    }
    out.push_str(&crate::objects::net::topology(&objects));
    let extents = of("extent").count();
    if extents > 0 {
        let _ = writeln!(out, "extents: {extents}");
    }
    Ok(out)
}
