//! `kstate check`: the kernel features kstate relies on, and whether each is
//! there. Each probe asks the kernel directly rather than trusting a version.

use std::os::fd::AsFd;
use std::path::Path;

use serde::Serialize;

use crate::procfs;

#[derive(Clone, Debug, Serialize)]
pub struct Feature {
    pub name: &'static str,
    /// Needed by what kstate does today (otherwise: by later work).
    pub required: bool,
    pub present: bool,
    pub detail: String,
}

fn exists(p: &str) -> (bool, String) {
    let ok = Path::new(p).exists();
    (
        ok,
        if ok {
            p.to_string()
        } else {
            format!("{p} is missing")
        },
    )
}

fn cap(bit: u32, name: &'static str, required: bool) -> Feature {
    let present = procfs::own_cap_eff() & (1u64 << bit) != 0;
    Feature {
        name,
        required,
        present,
        detail: format!(
            "bit {bit} of CapEff {}",
            if present { "set" } else { "clear" }
        ),
    }
}

/// Probes every feature.
pub fn probe() -> Vec<Feature> {
    let mut out = Vec::new();
    let mut add = |name, required, (present, detail): (bool, String)| {
        out.push(Feature {
            name,
            required,
            present,
            detail,
        })
    };
    let me = std::process::id();
    add(
        "proc children files (CONFIG_PROC_CHILDREN)",
        true,
        exists(&format!("/proc/{me}/task/{me}/children")),
    );
    let status = procfs::read(Path::new("/proc/self/status")).unwrap_or_default();
    add(
        "NSpid in /proc/PID/status",
        true,
        match procfs::field(&status, b"NSpid") {
            Some(_) => (true, "present".into()),
            None => (false, "no NSpid line (kernel older than 4.1)".into()),
        },
    );
    for ns in [
        "user",
        "pid",
        "pid_for_children",
        "uts",
        "ipc",
        "mnt",
        "net",
        "cgroup",
        "time",
        "time_for_children",
    ] {
        let name: &'static str = match ns {
            "user" => "user namespaces",
            "pid" => "pid namespaces",
            "pid_for_children" => "pid_for_children link",
            "uts" => "uts namespaces",
            "ipc" => "ipc namespaces",
            "mnt" => "mount namespaces",
            "net" => "network namespaces",
            "cgroup" => "cgroup namespaces",
            "time" => "time namespaces",
            _ => "time_for_children link",
        };
        add(name, true, exists(&format!("/proc/self/ns/{ns}")));
    }
    let parent = std::fs::File::open("/proc/self/ns/pid")
        .map_err(|e| e.to_string())
        .and_then(|f| crate::sys::ns_get_parent(f.as_fd()).map_err(|e| e.to_string()));
    add(
        "ioctl NS_GET_PARENT",
        true,
        match parent {
            Ok(_) => (true, "answers".into()),
            Err(e) => (false, e),
        },
    );
    let owner = std::fs::File::open("/proc/self/ns/uts")
        .map_err(|e| e.to_string())
        .and_then(|f| crate::sys::ns_get_userns(f.as_fd()).map_err(|e| e.to_string()));
    add(
        "ioctl NS_GET_USERNS",
        true,
        match owner {
            Ok(_) => (true, "answers".into()),
            Err(e) => (false, e),
        },
    );
    add(
        "ns_last_pid (CONFIG_CHECKPOINT_RESTORE)",
        true,
        exists("/proc/sys/kernel/ns_last_pid"),
    );
    add("timens_offsets", true, exists("/proc/self/timens_offsets"));
    let scope = procfs::read(Path::new("/proc/sys/kernel/yama/ptrace_scope")).ok();
    add(
        "ptrace allowed (Yama)",
        true,
        match scope.as_deref().map(procfs::trim) {
            Some(b"3") => (
                false,
                "kernel.yama.ptrace_scope is 3: ptrace is disabled".into(),
            ),
            Some(v) => (true, format!("ptrace_scope {}", procfs::show(v))),
            None => (true, "no Yama".into()),
        },
    );
    add(
        "pidfd_open",
        false,
        match crate::sys::pidfd_open(me as i32) {
            Ok(_) => (true, "answers".into()),
            Err(e) => (false, e.to_string()),
        },
    );
    add("pagemap", false, exists("/proc/self/pagemap"));
    out.push(cap(21, "CAP_SYS_ADMIN", true));
    out.push(cap(19, "CAP_SYS_PTRACE", true));
    out.push(cap(40, "CAP_CHECKPOINT_RESTORE", false));
    out.push(cap(24, "CAP_SYS_RESOURCE", false));
    out
}

/// The report for people.
pub fn to_text(features: &[Feature]) -> String {
    let mut s = String::new();
    for f in features {
        let state = match (f.present, f.required) {
            (true, _) => "ok",
            (false, true) => "MISSING",
            (false, false) => "missing (optional)",
        };
        s.push_str(&format!("{state:<20} {:<45} {}\n", f.name, f.detail));
    }
    s
}
