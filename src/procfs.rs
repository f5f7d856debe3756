//! Byte-level readers for the /proc files kstate uses. Paths and names stay
//! bytes (`OsStr`) from the kernel to the image: nothing goes through `String`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `/proc/<pid>/<rest>`.
pub fn pid_path(pid: i32, rest: &str) -> PathBuf {
    let mut p = PathBuf::from("/proc");
    p.push(pid.to_string());
    p.push(rest);
    p
}

/// Reads a whole /proc file. /proc files have no size, so the buffer
/// starts at a page (most fit; mountinfo, maps and status take one read(2)
/// and the read that sees the end) rather than std's 32-byte probe and
/// doubling, a read(2) per step.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(PAGE);
    std::fs::File::open(path)?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// The first read's size in [`read`].
const PAGE: usize = 4096;

/// The value of `Key:` in a status-like file, trimmed.
pub fn field<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(b":")?;
        Some(trim(rest))
    })
}

pub fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Splits on ASCII white space, dropping empty words.
pub fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
}

pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add((b - b'0') as u64)
        } else {
            None
        }
    })
}

pub fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

pub fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.strip_prefix(b"-") {
        Some(rest) => parse_u64(rest).and_then(|v| 0i64.checked_sub_unsigned(v)),
        None => parse_u64(s).and_then(|v| i64::try_from(v).ok()),
    }
}

/// A hexadecimal number (as in CapEff, SigCgt, personality).
pub fn parse_hex_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        Some((acc << 4) | (b as char).to_digit(16)? as u64)
    })
}

/// This process's effective capabilities (CapEff), 0 when unreadable.
pub fn own_cap_eff() -> u64 {
    read(Path::new("/proc/self/status"))
        .ok()
        .and_then(|s| parse_hex_u64(field(&s, b"CapEff")?))
        .unwrap_or(0)
}

/// A list of unsigned numbers separated by white space (NSpid, children).
pub fn parse_u32_list(s: &[u8]) -> Option<Vec<u32>> {
    words(s).map(parse_u32).collect()
}

/// uid_map / gid_map: lines of `first lower_first count`.
pub fn parse_id_map(s: &[u8]) -> Option<Vec<[u32; 3]>> {
    s.split(|&b| b == b'\n')
        .filter(|l| !trim(l).is_empty())
        .map(|line| {
            let mut w = words(line).map(parse_u32);
            let e = [w.next()??, w.next()??, w.next()??];
            w.next().is_none().then_some(e)
        })
        .collect()
}

/// timens_offsets: `monotonic SECS NSECS` and `boottime SECS NSECS`.
/// Returns ((monotonic secs, nsecs), (boottime secs, nsecs)).
pub fn parse_timens_offsets(s: &[u8]) -> Option<((i64, i64), (i64, i64))> {
    let mut mono = None;
    let mut boot = None;
    for line in s.split(|&b| b == b'\n') {
        let mut w = words(line);
        let Some(name) = w.next() else { continue };
        let v = (parse_i64(w.next()?)?, parse_i64(w.next()?)?);
        match name {
            b"monotonic" => mono = Some(v),
            b"boottime" => boot = Some(v),
            _ => return None,
        }
    }
    Some((mono?, boot?))
}

/// The inode in a namespace link's text, `type:[inode]`.
pub fn ns_link_inode(link: &[u8]) -> Option<(&[u8], u64)> {
    let colon = link.iter().position(|&b| b == b':')?;
    let (ty, rest) = link.split_at(colon);
    let ino = rest.strip_prefix(b":[")?.strip_suffix(b"]")?;
    Some((ty, parse_u64(ino)?))
}

/// The numeric entries of a /proc directory (pids or tids), sorted.
pub fn numeric_entries(dir: &Path) -> io::Result<Vec<i32>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = parse_u32(entry.file_name().as_bytes()).and_then(|n| i32::try_from(n).ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Reads a symlink's target as bytes.
pub fn readlink(path: &Path) -> io::Result<Vec<u8>> {
    Ok(std::fs::read_link(path)?
        .into_os_string()
        .into_encoded_bytes())
}

/// Shows bytes for people: UTF-8 where it is, escapes elsewhere.
pub fn show(bytes: &[u8]) -> String {
    OsStr::from_bytes(bytes).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let s = b"Name:\tsleep\nNSpid:\t120\t5\t1\nPPid:\t7\n";
        assert_eq!(field(s, b"NSpid"), Some(&b"120\t5\t1"[..]));
        assert_eq!(
            parse_u32_list(field(s, b"NSpid").unwrap()),
            Some(vec![120, 5, 1])
        );
        assert_eq!(field(s, b"NS"), None);
        assert_eq!(parse_u32(field(s, b"PPid").unwrap()), Some(7));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_u32(b"4294967296"), None);
    }

    #[test]
    fn id_maps() {
        assert_eq!(
            parse_id_map(b"         0     100000      65536\n"),
            Some(vec![[0, 100000, 65536]])
        );
        assert_eq!(parse_id_map(b""), Some(vec![]));
        assert_eq!(parse_id_map(b"0 1\n"), None);
    }

    #[test]
    fn timens() {
        let s = b"monotonic       86400         0\nboottime         -3600       500\n";
        assert_eq!(parse_timens_offsets(s), Some(((86400, 0), (-3600, 500))));
        assert_eq!(parse_timens_offsets(b"monotonic 1 0\n"), None);
    }

    #[test]
    fn ns_links() {
        assert_eq!(
            ns_link_inode(b"pid:[4026531836]"),
            Some((&b"pid"[..], 4026531836))
        );
        assert_eq!(ns_link_inode(b"pid:4026531836"), None);
    }
}
