//! `kstate diff A B`: compare two images object by object, field by field.
//!
//! Two checkpoints of the same workload, one before and one after a restart,
//! must describe the same objects. Some fields legitimately change because
//! the workload ran in between or because the kernel hands out new
//! identities; [`LEGIT`] lists them, and ARCHITECTURE.md explains each.
//! `--strict` compares those too.

use serde_json::Value;

use super::show::to_json;
use crate::image::{FormatError, Image};

/// Fields that may differ between two checkpoints of one workload, by kind
/// (`*` for every kind).
pub const LEGIT: &[(&str, &str, &str)] = &[
    (
        "*_ns",
        "dev",
        "a namespace made anew at restart has a new nsfs identity",
    ),
    ("*_ns", "ino", "likewise"),
    (
        "task",
        "ppid",
        "the root's parent is outside the tree (now the restarting kstate); inside it, `parent` is compared",
    ),
    (
        "task_core",
        "regs",
        "the workload ran: its registers moved on",
    ),
    ("task_core", "itimers", "a running timer counts down"),
    (
        "task_core",
        "in_syscall",
        "where the running workload was stopped (in a system call or in its own code), like regs",
    ),
    (
        "vma",
        "extent",
        "record ids of page extents shift when page counts do",
    ),
    ("vma", "pages", "a running task touches new pages"),
    ("extent", "data_offset", "layout of the file"),
    ("extent", "data_len", "a running task touches new pages"),
    ("fd", "pos", "the workload read or wrote"),
    ("fd", "size", "the workload wrote to its files"),
    ("pipe", "in_flight", "the workload read or wrote"),
    ("pipe", "ino", "a pipe made anew at restart has a new inode"),
    (
        "mnt_file",
        "extent",
        "record ids of extents shift when page counts of mappings before them do",
    ),
    (
        "net_addr",
        "valid",
        "an address's remaining lifetime counts down",
    ),
    ("net_addr", "preferred", "likewise"),
];

fn legit(kind: &str, field: &str) -> bool {
    LEGIT.iter().any(|(k, f, _)| {
        *f == field && (*k == kind || (k.starts_with('*') && kind.ends_with(&k[1..])))
    })
}

/// A task in a pid namespace of the tree's own has, at the outermost level
/// (the restarting process's namespace), whatever pid that namespace gave
/// it: that one entry of its pid lists is left out of the comparison.
fn outer_pid_free(o: &serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    let mut o = o.clone();
    let nested = o
        .get("nspid")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1);
    if o.get("kind").and_then(Value::as_str) == Some("task") && nested {
        o.insert("pid".into(), Value::Null);
        for k in ["nspid", "nstgid", "nspgid", "nssid"] {
            if let Some(Value::Array(a)) = o.get_mut(k) {
                a[0] = Value::Null;
            }
        }
        if let Some(Value::Array(threads)) = o.get_mut("threads") {
            for t in threads.iter_mut() {
                if let Value::Array(a) = t {
                    if let Some(first) = a.first_mut() {
                        *first = Value::Null;
                    }
                }
            }
        }
    }
    o
}

/// One difference, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub id: u64,
    pub kind: String,
    pub field: String,
    pub a: String,
    pub b: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record {} ({}): {}: {} -> {}",
            self.id, self.kind, self.field, self.a, self.b
        )
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s
                .char_indices()
                .take_while(|(i, _)| *i < 117)
                .last()
                .map_or(0, |(i, c)| i + c.len_utf8())]
        )
    } else {
        s
    }
}

/// Compares two validated images.
pub fn diff(a: &Image<'_>, b: &Image<'_>, strict: bool) -> Result<Vec<Difference>, FormatError> {
    let (ja, jb) = (to_json(a)?, to_json(b)?);
    let empty = Vec::new();
    let oa = ja["objects"].as_array().unwrap_or(&empty);
    let ob = jb["objects"].as_array().unwrap_or(&empty);
    let mut out = Vec::new();
    let n = oa.len().max(ob.len());
    for i in 0..n {
        let (x, y) = (oa.get(i), ob.get(i));
        let id = (i + 1) as u64;
        let kind_of = |o: Option<&Value>| {
            o.and_then(|o| o["kind"].as_str())
                .unwrap_or("none")
                .to_string()
        };
        let (ka, kb) = (kind_of(x), kind_of(y));
        if ka != kb {
            out.push(Difference {
                id,
                kind: ka.clone(),
                field: "kind".into(),
                a: ka,
                b: kb,
            });
            continue;
        }
        let (Some(Value::Object(x)), Some(Value::Object(y))) = (x, y) else {
            continue;
        };
        let (x, y) = if strict {
            (x.clone(), y.clone())
        } else {
            (outer_pid_free(x), outer_pid_free(y))
        };
        let (x, y) = (&x, &y);
        let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if k == "id" || (!strict && legit(&ka, k)) {
                continue;
            }
            let (va, vb) = (
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            );
            if va != vb {
                out.push(Difference {
                    id,
                    kind: ka.clone(),
                    field: k.clone(),
                    a: short(va),
                    b: short(vb),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::legit;

    #[test]
    fn legit_fields() {
        assert!(legit("pid_ns", "ino"));
        assert!(legit("task_core", "regs"));
        assert!(!legit("task", "nspid"));
        assert!(!legit("task_core", "sigactions"));
    }
}
