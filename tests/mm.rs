//! The memory collector (`objects::mm`) on a live, stopped `memhog`
//! (fixtures/memhog.c), and its maps line parser on tricky lines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kstate::objects::mm::{self, MmInfo, PageRun, Vma, VmaKind};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const PROT_RW: u32 = (libc::PROT_READ | libc::PROT_WRITE) as u32;

/// A running memhog and what it printed; killed (and reaped) on drop.
struct Memhog {
    child: Child,
    pid: i32,
    anon: (u64, u64),
    checksum: u64,
    filemap: (u64, u64),
    noaccess: (u64, u64),
    /// Four pages, the second a guard region; (0, 0) if unsupported.
    guard: (u64, u64),
}

/// Kills the child on drop, whatever happened before.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            reap(child);
        }
    }
}

impl Drop for Memhog {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let deadline = Instant::now() + common::KILL_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => thread::sleep(Duration::from_millis(5)),
        }
    }
    eprintln!("warning: memhog {} not gone after SIGKILL", child.id());
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn dec(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|e| panic!("bad number {s:?}: {e}"))
}

/// Starts memhog with `mib` MiB and waits (bounded) for its three lines.
fn start_memhog(mib: u32) -> Memhog {
    let bin = common::build_fixture("memhog");
    let child = Command::new(&bin)
        .arg(mib.to_string())
        .env("MEMHOG_TEST", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut guard = Guard(Some(child));
    let stdout = guard
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + common::READY_TIMEOUT;
    let (mut filemap, mut noaccess, mut guard_pages) = (None, None, None);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("memhog: no READY line within the deadline ({e})"));
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["FILEMAP", a, l] => filemap = Some((hex(a), dec(l))),
            ["NOACCESS", a, l] => noaccess = Some((hex(a), dec(l))),
            ["GUARD", a, l] => guard_pages = Some((hex(a), dec(l))),
            ["READY", pid, a, l, sum] => {
                let child = guard.0.take().expect("child");
                let pid: i32 = pid.parse().expect("pid");
                assert_eq!(pid as u32, child.id(), "READY names another pid");
                return Memhog {
                    child,
                    pid,
                    anon: (hex(a), dec(l)),
                    checksum: hex(sum),
                    filemap: filemap.expect("FILEMAP before READY"),
                    noaccess: noaccess.expect("NOACCESS before READY"),
                    guard: guard_pages.expect("GUARD before READY"),
                };
            }
            _ => panic!("memhog: unexpected line {line:?}"),
        }
    }
}

/// SIGSTOPs `pid` and waits (bounded) until it shows State T.
fn stop(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
    common::wait_for(Duration::from_secs(5), "memhog to stop", || {
        common::proc_status_field(pid, "State").is_some_and(|s| s.starts_with('T'))
    });
}

/// FNV-1a 64 over native 64-bit words, as memhog computes it.
fn fnv1a_words(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for w in bytes.chunks_exact(8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h ^= u64::from_ne_bytes(a);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn vma_at(info: &MmInfo, addr: u64) -> (usize, &Vma) {
    info.vmas
        .iter()
        .enumerate()
        .find(|(_, v)| v.contains(addr))
        .unwrap_or_else(|| panic!("no mapping contains {addr:#x}"))
}

fn runs_of(info: &MmInfo, vma: usize) -> Vec<PageRun> {
    info.runs
        .iter()
        .filter(|(i, _)| *i == vma)
        .map(|&(_, r)| r)
        .collect()
}

#[test]
fn collect_and_read_memhog() {
    common::require_root();
    let page = 4096u64;
    assert_eq!(page, sysconf_page_size(), "this test assumes 4 KiB pages");
    let hog = start_memhog(64);
    stop(hog.pid);

    let t0 = Instant::now();
    let info = mm::collect(hog.pid).unwrap_or_else(|e| panic!("collect: {e}"));
    let t_collect = t0.elapsed();

    // The anonymous mapping: exactly itself (guard pages around it), RW,
    // private, every page to dump.
    let (addr, len) = hog.anon;
    let (ai, anon) = vma_at(&info, addr);
    assert_eq!((anon.start, anon.end), (addr, addr + len), "{anon:?}");
    assert_eq!(anon.prot, PROT_RW);
    assert!(!anon.shared);
    assert_eq!(anon.kind, VmaKind::Anon);
    assert!(anon.path.is_empty());
    assert_eq!(
        runs_of(&info, ai),
        vec![PageRun {
            start: addr,
            pages: len / page
        }]
    );

    // Runs: in address order, whole pages, inside their mapping, only in
    // mappings that are private and not kernel-provided.
    let mut prev_end = 0;
    for &(i, r) in &info.runs {
        let v = &info.vmas[i];
        assert!(r.pages > 0 && r.start >= prev_end, "{r:?}");
        prev_end = r.start + r.pages * page;
        assert!(
            v.start <= r.start && prev_end <= v.end,
            "{r:?} outside {v:?}"
        );
        assert!(!v.shared, "run in shared {v:?}");
        assert!(
            matches!(
                v.kind,
                VmaKind::Anon | VmaKind::File | VmaKind::Heap | VmaKind::Stack
            ),
            "run in {v:?}"
        );
    }

    // The private file mapping: one page written, the others only read.
    let (faddr, flen) = hog.filemap;
    let (fi, fvma) = vma_at(&info, faddr);
    assert_eq!((fvma.start, fvma.end), (faddr, faddr + flen));
    assert_eq!(fvma.kind, VmaKind::File);
    assert!(!fvma.shared);
    assert_eq!(fvma.prot, PROT_RW);
    assert_eq!(fvma.pgoff, 0);
    assert!(fvma.ino != 0);
    assert!(
        fvma.path.starts_with(b"/tmp/memhog.") && fvma.path.ends_with(b" (deleted)"),
        "{:?}",
        String::from_utf8_lossy(&fvma.path)
    );
    assert_eq!(
        runs_of(&info, fi),
        vec![PageRun {
            start: faddr + 2 * page,
            pages: 1
        }]
    );

    // The PROT_NONE page holds data: dumped, read through /proc/PID/mem.
    let (naddr, nlen) = hog.noaccess;
    let (ni, nvma) = vma_at(&info, naddr);
    assert_eq!(nvma.prot, 0);
    assert!(runs_of(&info, ni)
        .iter()
        .any(|r| r.start <= naddr && naddr + nlen <= r.start + r.pages * page));

    // A guard region (its pagemap entry says swapped + guard) is skipped.
    match hog.guard {
        (0, 0) => eprintln!("mm: no guard regions on this kernel: that check skipped"),
        (g, glen) => {
            assert_eq!(glen, 4 * page);
            let (gi, _) = vma_at(&info, g);
            let covered = |a: u64| {
                runs_of(&info, gi)
                    .iter()
                    .any(|r| r.start <= a && a < r.start + r.pages * page)
            };
            let seen: Vec<bool> = (0..4).map(|k| covered(g + k * page)).collect();
            assert_eq!(seen, [true, false, true, true], "pages of the guard test");
        }
    }

    // Kernel-provided mappings: present as their kinds, never dumped.
    let kinds: Vec<VmaKind> = info.vmas.iter().map(|v| v.kind).collect();
    for k in [VmaKind::Vdso, VmaKind::Vvar] {
        assert!(kinds.contains(&k), "no {k:?} in {kinds:?}");
    }
    for (i, v) in info.vmas.iter().enumerate() {
        let special = matches!(
            v.kind,
            VmaKind::Vdso
                | VmaKind::Vvar
                | VmaKind::VvarVclock
                | VmaKind::Vsyscall
                | VmaKind::Other
        );
        if special {
            assert!(runs_of(&info, i).is_empty(), "runs in {v:?}");
            assert!(v.path.starts_with(b"[") && v.path.ends_with(b"]"));
        }
        if v.path == b"[vvar_vclock]" {
            assert_eq!(v.kind, VmaKind::VvarVclock);
        }
    }

    // Heap and stack.
    let heaps: Vec<&Vma> = info
        .vmas
        .iter()
        .filter(|v| v.kind == VmaKind::Heap)
        .collect();
    assert_eq!(heaps.len(), 1, "{heaps:?}");
    assert_eq!(heaps[0].start, info.start_brk, "[heap] starts at start_brk");
    let stacks: Vec<(usize, &Vma)> = info
        .vmas
        .iter()
        .enumerate()
        .filter(|(_, v)| v.kind == VmaKind::Stack)
        .collect();
    assert_eq!(stacks.len(), 1, "{stacks:?}");
    let (si, stack) = stacks[0];
    assert!(
        stack.contains(info.start_stack),
        "start_stack {:#x} not in {stack:?}",
        info.start_stack
    );
    assert!(!runs_of(&info, si).is_empty(), "no stack pages");

    // mm fields.
    assert!(info.start_code < info.end_code, "{info:#x?}");
    assert!(info.start_data <= info.end_data, "{info:#x?}");
    assert!(info.arg_start < info.arg_end, "{info:#x?}");
    assert!(info.arg_end <= info.env_start, "{info:#x?}");
    assert!(info.env_start < info.env_end, "{info:#x?}");
    for a in [info.arg_start, info.env_end - 1] {
        assert!(stack.contains(a), "{a:#x} not in the stack");
    }

    // auxv: pairs ending with AT_NULL; page size and entry point as known.
    let auxv = &info.auxv;
    assert!(auxv.len() >= 4 && auxv.len() % 2 == 0, "{auxv:?}");
    assert_eq!(auxv[auxv.len() - 2], libc::AT_NULL);
    let aux = |t: u64| auxv.chunks_exact(2).find(|p| p[0] == t).map(|p| p[1]);
    assert_eq!(aux(libc::AT_PAGESZ), Some(page));
    let entry = aux(libc::AT_ENTRY).expect("AT_ENTRY");
    assert!(
        info.start_code <= entry && entry < info.end_code,
        "entry {entry:#x}"
    );

    let bin = std::fs::canonicalize(common::build_fixture("memhog")).expect("canonicalize");
    assert_eq!(info.exe, bin.as_os_str().as_encoded_bytes());

    // The pages.
    // Fault the destination in before timing (the pages are ours to pay).
    let mut region = vec![0xffu8; len as usize];
    let mut region_bytes = 0u64;
    let mut file_page = Vec::new();
    let mut noaccess_page = Vec::new();
    let mut pieces = 0usize;
    let t1 = Instant::now();
    let total = mm::read_pages(hog.pid, &info.runs, &mut |a: u64, data: &[u8]| {
        pieces += 1;
        let end = a + data.len() as u64;
        if a >= addr && end <= addr + len {
            let off = (a - addr) as usize;
            region[off..off + data.len()].copy_from_slice(data);
            region_bytes += data.len() as u64;
        }
        for (want, out) in [
            (faddr + 2 * page, &mut file_page),
            (naddr, &mut noaccess_page),
        ] {
            if a <= want && want + page <= end {
                let off = (want - a) as usize;
                out.extend_from_slice(&data[off..off + page as usize]);
            }
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("read_pages: {e}"));
    let t_read = t1.elapsed();

    assert_eq!(total, info.dump_pages() * page);
    assert_eq!(region_bytes, len, "the anonymous region came whole");
    assert_eq!(fnv1a_words(&region), hog.checksum, "checksum of the region");
    assert_eq!(file_page.len(), page as usize);
    assert_eq!(file_page[0], 0x5a);
    assert!(file_page[1..].iter().all(|&b| b == b'f'));
    assert_eq!(noaccess_page.len(), page as usize);
    assert!(noaccess_page.iter().all(|&b| b == 0xa5));

    // Once more into a sink that drops the bytes: the reading alone.
    let t2 = Instant::now();
    let again = mm::read_pages(hog.pid, &info.runs, &mut |_, _| Ok(()))
        .unwrap_or_else(|e| panic!("read_pages again: {e}"));
    let t_bare = t2.elapsed();
    assert_eq!(again, total);

    let mb = total as f64 / 1e6;
    let both = t_collect + t_read;
    eprintln!(
        "mm: {} mappings, {} runs, {:.1} MB in {} pieces; collect {:?} + read_pages {:?} = {:?}: \
         {:.0} MB/s (read_pages alone {:.0} MB/s; into a discarding sink {:?}, {:.0} MB/s)",
        info.vmas.len(),
        info.runs.len(),
        mb,
        pieces,
        t_collect,
        t_read,
        both,
        mb / both.as_secs_f64(),
        mb / t_read.as_secs_f64(),
        t_bare,
        mb / t_bare.as_secs_f64()
    );
    drop(hog);
}

/// The page size (sysconf).
fn sysconf_page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}

/// A maps line laid out as the kernel does it (show_map_vma): the header,
/// spaces up to column 72, one space, the name.
fn kernel_line(header: &str, name: &[u8]) -> Vec<u8> {
    let mut line = format!("{header} ").into_bytes();
    if !name.is_empty() {
        while line.len() < 72 {
            line.push(b' ');
        }
        line.push(b' ');
        line.extend_from_slice(name);
    }
    line
}

#[test]
fn maps_line_parser() {
    let parse = |line: &[u8]| {
        mm::parse_maps_line(line)
            .unwrap_or_else(|| panic!("cannot parse {:?}", String::from_utf8_lossy(line)))
    };
    let h = "7f9f3848a000-7f9f384e1000 r--p 00000000 fe:00 316534";

    // A real line, copied from this kernel.
    let v = parse(
        b"7f9f3848a000-7f9f384e1000 r--p 00001000 fe:00 316534                     \
          /usr/lib/locale/C.utf8/LC_CTYPE",
    );
    assert_eq!((v.start, v.end), (0x7f9f3848a000, 0x7f9f384e1000));
    assert_eq!(v.prot, libc::PROT_READ as u32);
    assert!(!v.shared);
    assert_eq!(v.pgoff, 0x1000);
    assert_eq!(v.dev, libc::makedev(0xfe, 0));
    assert_eq!(v.ino, 316534);
    assert_eq!(v.path, b"/usr/lib/locale/C.utf8/LC_CTYPE");
    assert_eq!(v.kind, VmaKind::File);

    // Spaces inside, at the start and at the end of a name; " (deleted)".
    for name in [
        &b"/tmp/my file (1).bin"[..],
        b" leading space",
        b"  two leading",
        b"/trailing space ",
        b"/tmp/x (deleted)",
        b"/a\\012b",
    ] {
        assert_eq!(parse(&kernel_line(h, name)).path, name);
    }
    // A header longer than the padding column: one extra space, then name.
    let long = "7f9f3848a000-7f9f384e1000 rw-s 123456789abcdef 103:fffff 18446744073709551615";
    let v = parse(&kernel_line(long, b" /x"));
    assert_eq!(v.path, b" /x");
    assert!(v.shared);
    assert_eq!(v.pgoff, 0x123456789abcdef);
    assert_eq!(v.dev, libc::makedev(0x103, 0xfffff));
    assert_eq!(v.ino, u64::MAX);
    assert_eq!(v.kind, VmaKind::File);

    // No name: with the kernel's trailing space, and without.
    for line in [
        &b"7f9f38468000-7f9f3848a000 rw-p 00000000 00:00 0 "[..],
        b"7f9f38468000-7f9f3848a000 rw-p 00000000 00:00 0",
    ] {
        let v = parse(line);
        assert!(v.path.is_empty());
        assert_eq!(v.kind, VmaKind::Anon);
        assert_eq!(v.prot, PROT_RW);
    }
    let anon = "7f9f38468000-7f9f3848a000 rw-p 00000000 00:00 0";
    let shm = "7f9f38468000-7f9f3848a000 rw-s 00000000 00:01 2051";
    let vsys = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0";
    for (header, name, kind) in [
        (anon, &b"[heap]"[..], VmaKind::Heap),
        (anon, b"[stack]", VmaKind::Stack),
        (anon, b"[vdso]", VmaKind::Vdso),
        (anon, b"[vvar]", VmaKind::Vvar),
        (anon, b"[vvar_vclock]", VmaKind::VvarVclock),
        (vsys, b"[vsyscall]", VmaKind::Vsyscall),
        (anon, b"[uprobes]", VmaKind::Other),
        (anon, b"[anon:my arena]", VmaKind::Anon),
        (anon, b"[anon:]]", VmaKind::Anon),
        (shm, b"[anon_shmem:ring]", VmaKind::SharedAnon),
        (shm, b"/dev/zero (deleted)", VmaKind::SharedAnon),
        (shm, b"/SYSV0000162e (deleted)", VmaKind::SharedAnon),
        (shm, b"/memfd:buf (deleted)", VmaKind::File),
        (shm, b"", VmaKind::SharedAnon),
        (anon, b"/dev/zero", VmaKind::File),
    ] {
        let v = parse(&kernel_line(header, name));
        assert_eq!(v.path, name);
        assert_eq!(v.kind, kind, "{:?}", String::from_utf8_lossy(name));
    }
    let v = parse(&kernel_line(vsys, b"[vsyscall]"));
    assert_eq!(
        (v.start, v.prot),
        (0xffffffffff600000, libc::PROT_EXEC as u32)
    );

    // Malformed lines.
    for bad in [
        &b""[..],
        b"7f9f38468000-7f9f3848a000",
        b"7f9f38468000 rw-p 00000000 00:00 0",
        b"7f9f3848a000-7f9f38468000 rw-p 00000000 00:00 0",
        b"7f9f38468000-7f9f3848a000 rw-q 00000000 00:00 0",
        b"7f9f38468000-7f9f3848a000 rwxpp 00000000 00:00 0",
        b"7f9f38468000-7f9f3848a000 wr-p 00000000 00:00 0",
        b"7f9f38468000-7f9f3848a000 rw-p 0000g000 00:00 0",
        b"7f9f38468000-7f9f3848a000 rw-p 00000000 0000 0",
        b"7f9f38468000-7f9f3848a000 rw-p 00000000 00:00 x",
        b"17f9f38468000000-7f9f3848a000 rw-p 00000000 00:00 0",
    ] {
        assert!(
            mm::parse_maps_line(bad).is_none(),
            "parsed {:?}",
            String::from_utf8_lossy(bad)
        );
    }

    // Every line of our own maps: names start where the kernel puts them.
    let own = std::fs::read("/proc/self/maps").expect("/proc/self/maps");
    for line in own.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v = parse(line);
        assert!(
            v.path.is_empty() || v.path.starts_with(b"/") || v.path.starts_with(b"["),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(line.ends_with(&v.path));
    }
}
