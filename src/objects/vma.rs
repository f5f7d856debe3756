//! The image side of a task's memory: the mm and vma records (dump,
//! describe, restore). Collection from the live task is in `mm.rs`.

use serde_json::{json, Map, Value};

use super::namespace::ref_json;
use crate::image::reader::{MmView, VmaView};

pub fn describe_mm(m: &MmView<'_>, out: &mut Map<String, Value>) {
    let r = &m.rec;
    out.insert("task".into(), ref_json(r.task));
    for (k, v) in [
        ("start_code", r.start_code),
        ("end_code", r.end_code),
        ("start_data", r.start_data),
        ("end_data", r.end_data),
        ("start_brk", r.start_brk),
        ("brk", r.brk),
        ("start_stack", r.start_stack),
        ("arg_start", r.arg_start),
        ("arg_end", r.arg_end),
        ("env_start", r.env_start),
        ("env_end", r.env_end),
    ] {
        out.insert(k.into(), json!(format!("{:#x}", v.get())));
    }
    out.insert("auxv_words".into(), json!(m.auxv.len()));
    out.insert("exe".into(), json!(crate::procfs::show(m.exe)));
}

pub fn describe_vma(v: &VmaView<'_>, out: &mut Map<String, Value>) {
    let r = &v.rec;
    out.insert("task".into(), ref_json(r.task));
    out.insert("start".into(), json!(format!("{:#x}", r.start.get())));
    out.insert("end".into(), json!(format!("{:#x}", r.end.get())));
    out.insert("prot".into(), json!(r.prot.get()));
    out.insert("shared".into(), json!(v.shared()));
    out.insert("vma_kind".into(), json!(v.kind()));
    out.insert("pgoff".into(), json!(r.pgoff.get()));
    out.insert("path".into(), json!(crate::procfs::show(v.path)));
    out.insert(
        "pages".into(),
        json!(v.runs.iter().map(|r| r.pages.get()).sum::<u64>()),
    );
    out.insert("extent".into(), ref_json(r.pages));
}

// ---- dump ----

use std::io::Write;

use zerocopy::little_endian::{U32, U64};
use zerocopy::IntoBytes;

use super::mm::{MmInfo, VmaKind};
use super::ObjectError;
use crate::image::format::{vma_flags, vma_kind, MmRecord, PageRunRecord, VmaRecord};
use crate::image::{ImageWriter, Kind, Ref};

fn kind_code(k: VmaKind) -> u32 {
    match k {
        VmaKind::Anon => vma_kind::ANON,
        VmaKind::File => vma_kind::FILE,
        VmaKind::Heap => vma_kind::HEAP,
        VmaKind::Stack => vma_kind::STACK,
        VmaKind::Vdso => vma_kind::VDSO,
        VmaKind::Vvar => vma_kind::VVAR,
        VmaKind::VvarVclock => vma_kind::VVAR_VCLOCK,
        VmaKind::Vsyscall => vma_kind::VSYSCALL,
        // Refused at collection; never dumped.
        VmaKind::SharedAnon | VmaKind::Other => vma_kind::ANON,
    }
}

/// Refuses memory kstate cannot restore yet, naming the task and mapping.
pub fn check_supported(pid: i32, mm: &MmInfo) -> Result<(), ObjectError> {
    for v in &mm.vmas {
        let what = match v.kind {
            VmaKind::SharedAnon => "shared anonymous memory",
            VmaKind::Other => "a special mapping kstate does not know",
            VmaKind::File if v.path.ends_with(b" (deleted)") => "a mapping of a deleted file",
            VmaKind::File if v.shared && v.prot & libc::PROT_WRITE as u32 != 0 => {
                "a shared writable file mapping"
            }
            _ => continue,
        };
        return Err(ObjectError::Unsupported {
            pid,
            object: format!(
                "memory {:#x}-{:#x} ({}): {what}",
                v.start,
                v.end,
                crate::procfs::show(&v.path)
            ),
        });
    }
    Ok(())
}

/// Dumps task `task`'s mm record, then each mapping (its pages first, as an
/// extent, so the mapping's record can refer back to them).
pub fn dump<W: Write>(
    w: &mut ImageWriter<W>,
    task: Ref,
    pid: i32,
    mm: &MmInfo,
    brk: u64,
    progress: &mut crate::kstate::progress::Progress,
) -> Result<u64, ObjectError> {
    let rec = MmRecord {
        task,
        start_code: U64::new(mm.start_code),
        end_code: U64::new(mm.end_code),
        start_data: U64::new(mm.start_data),
        end_data: U64::new(mm.end_data),
        start_brk: U64::new(mm.start_brk),
        brk: U64::new(brk),
        start_stack: U64::new(mm.start_stack),
        arg_start: U64::new(mm.arg_start),
        arg_end: U64::new(mm.arg_end),
        env_start: U64::new(mm.env_start),
        env_end: U64::new(mm.env_end),
        auxv_words: U32::new(mm.auxv.len() as u32),
        exe_len: U32::new(mm.exe.len() as u32),
    };
    let auxv: Vec<U64> = mm.auxv.iter().map(|&x| U64::new(x)).collect();
    w.push(Kind::Mm, &rec, &[auxv.as_bytes(), &mm.exe])
        .map_err(ObjectError::Write)?;
    let page = crate::sys::page_size() as u64;
    let mut total = 0;
    for (i, v) in mm.vmas.iter().enumerate() {
        let runs: Vec<_> = mm
            .runs
            .iter()
            .filter(|(vi, _)| *vi == i)
            .map(|(_, r)| *r)
            .collect();
        let bytes: u64 = runs.iter().map(|r| r.pages * page).sum();
        let pages = if runs.is_empty() {
            Ref::UNDEF
        } else {
            let tagged: Vec<_> = runs.iter().map(|r| (i, *r)).collect();
            let mem_err = |e: super::mm::MmError| ObjectError::Unsupported {
                pid,
                object: format!("memory {:#x}-{:#x}: {e}", v.start, v.end),
            };
            let stream =
                |sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
                 progress: &mut crate::kstate::progress::Progress| {
                    super::mm::read_pages(pid, &tagged, &mut |addr, chunk| {
                        progress.add(chunk.len() as u64);
                        sink(chunk).map_err(|source| super::mm::MmError::Write {
                            pid,
                            start: addr,
                            end: addr + chunk.len() as u64,
                            source,
                        })
                    })
                    .map(|_| ())
                    .map_err(|e| match e {
                        super::mm::MmError::Write { source, .. } => source,
                        other => std::io::Error::other(other.to_string()),
                    })
                };
            let r = if w.can_patch() {
                // One pass: the CRC is computed as the pages stream, and
                // written into the record's header afterwards.
                w.push_extent_deferred(task, bytes, |sink| stream(sink, progress))
                    .map_err(ObjectError::Write)?
            } else {
                // Two passes over the frozen task's memory, through one
                // small buffer: the first for the CRC (which the record's
                // header carries, ahead of the data, so that the image
                // streams), the second to write. The second pass checks the
                // memory did not change in between.
                let mut first = crc32fast::Hasher::new();
                super::mm::read_pages(pid, &tagged, &mut |_, chunk| {
                    first.update(chunk);
                    Ok(())
                })
                .map_err(mem_err)?;
                let mut second = crc32fast::Hasher::new();
                let r = w
                    .push_extent_streamed(task, bytes, &first, |sink| {
                        stream(
                            &mut |chunk| {
                                second.update(chunk);
                                sink(chunk)
                            },
                            progress,
                        )
                    })
                    .map_err(ObjectError::Write)?;
                if second.finalize() != first.clone().finalize() {
                    return Err(ObjectError::Task {
                        pid,
                        what: format!(
                            "memory {:#x}-{:#x} changed while it was being dumped",
                            v.start, v.end
                        ),
                    });
                }
                r
            };
            total += bytes;
            r
        };
        let rec = VmaRecord {
            task,
            pages,
            start: U64::new(v.start),
            end: U64::new(v.end),
            pgoff: U64::new(v.pgoff),
            dev: U64::new(v.dev),
            ino: U64::new(v.ino),
            prot: U32::new(v.prot),
            flags: U32::new(
                (kind_code(v.kind) << vma_flags::KIND_SHIFT)
                    | if v.shared { vma_flags::SHARED } else { 0 },
            ),
            path_len: U32::new(v.path.len() as u32),
            runs: U32::new(runs.len() as u32),
        };
        let rr: Vec<PageRunRecord> = runs
            .iter()
            .map(|r| PageRunRecord {
                start: U64::new(r.start),
                pages: U64::new(r.pages),
            })
            .collect();
        w.push(Kind::Vma, &rec, &[&v.path, rr.as_bytes()])
            .map_err(ObjectError::Write)?;
    }
    log::debug!(
        "dump: task {pid}: {} mappings, {total} bytes of pages",
        mm.vmas.len()
    );
    Ok(total)
}

// ---- restore ----

use crate::image::reader::Image;
use crate::kstate::restart::{Plan, TaskPlan};
use crate::sys::inject::{Batch, BatchResult, Injector};

/// Bytes of scratch memory a restore uses in each task: the batches' code,
/// data (a task's pending signals take 128 bytes each) and call tables.
/// Pages never touched cost nothing.
pub const SCRATCH_LEN: u64 = 1 << 20;
const SPECIALS: [u32; 3] = [vma_kind::VDSO, vma_kind::VVAR, vma_kind::VVAR_VCLOCK];

fn special_kind(k: VmaKind) -> Option<u32> {
    match k {
        VmaKind::Vdso => Some(vma_kind::VDSO),
        VmaKind::Vvar => Some(vma_kind::VVAR),
        VmaKind::VvarVclock => Some(vma_kind::VVAR_VCLOCK),
        _ => None,
    }
}

fn own_specials(pid: i32) -> Result<Vec<(u32, u64, u64)>, ObjectError> {
    let path = crate::procfs::pid_path(pid, "maps");
    let maps = crate::procfs::read(&path).map_err(super::proc_err(pid, &path))?;
    Ok(maps
        .split(|&b| b == b'\n')
        .filter_map(super::mm::parse_maps_line)
        .filter_map(|v| special_kind(v.kind).map(|k| (k, v.start, v.end)))
        .collect())
}

/// The special mappings (vdso, vvar, vvar_vclock) of the image must be the
/// same sizes, in the same relative places, as this kernel's.
pub fn check_special_sizes(plan: &Plan<'_>) -> Result<(), crate::kstate::restart::RestartError> {
    let mine = own_specials(std::process::id() as i32)
        .map_err(|e| crate::kstate::restart::RestartError::Unsupported(e.to_string()))?;
    for t in &plan.tasks {
        let saved: Vec<(u32, u64, u64)> = t
            .vmas
            .iter()
            .filter(|v| SPECIALS.contains(&v.kind()))
            .map(|v| (v.kind(), v.rec.start.get(), v.rec.end.get()))
            .collect();
        if saved.is_empty() {
            continue;
        }
        let same = saved.len() == mine.len()
            && saved.iter().all(|(k, s, e)| {
                mine.iter().any(|(mk, ms, me)| {
                    mk == k
                        && me - ms == e - s
                        && ms.wrapping_sub(mine[0].1) == s.wrapping_sub(saved[0].1)
                })
            });
        if !same {
            return Err(crate::kstate::restart::RestartError::Unsupported(format!(
                "task {}: its vdso/vvar mappings {saved:x?} do not match this kernel's {mine:x?}",
                t.pid
            )));
        }
    }
    Ok(())
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// A page-aligned range of `len` bytes clear of every range in `avoid`.
fn free_range(len: u64, avoid: &[(u64, u64)]) -> Option<u64> {
    let step = 1u64 << 30;
    (1..0x7f00u64)
        .map(|k| k * step)
        .find(|&c| avoid.iter().all(|&r| !overlaps((c, c + len), r)))
}

/// The address of task `t`'s scratch area: clear of every saved mapping
/// and of kstate's own (`own`, as /proc/self/maps lists them), whose copy the
/// restorer task starts with. The restorer maps it itself before it stops
/// (see `restorer_setup`), so that the first batch can run from it.
pub fn scratch_for(t: &TaskPlan<'_>, own: &[(u64, u64)]) -> Result<u64, ObjectError> {
    let mut avoid: Vec<(u64, u64)> = t
        .vmas
        .iter()
        .map(|v| (v.rec.start.get(), v.rec.end.get()))
        .collect();
    avoid.extend_from_slice(own);
    free_range(SCRATCH_LEN, &avoid).ok_or_else(|| ObjectError::Task {
        pid: t.pid,
        what: "no free room for a scratch area".into(),
    })
}

/// kstate's own mappings.
pub fn own_maps() -> Result<Vec<super::mm::Vma>, ObjectError> {
    let pid = std::process::id() as i32;
    let path = crate::procfs::pid_path(pid, "maps");
    let maps = crate::procfs::read(&path).map_err(super::proc_err(pid, &path))?;
    Ok(maps
        .split(|&b| b == b'\n')
        .filter_map(super::mm::parse_maps_line)
        .collect())
}

/// Where a task's address space is being rebuilt: the scratch area (the
/// batches' code and data), and what the first batch opened.
pub struct Layout {
    /// Address of [`SCRATCH_LEN`] bytes of [`BATCH_PROT`] memory, clear of
    /// every saved mapping; the caller unmaps it at the end.
    pub scratch: u64,
    /// The descriptors the first batch opened for the caller's `extra`
    /// paths, in order.
    pub extra_fds: Vec<u64>,
    /// (open-file index, descriptor slot) of each file mapping, in the
    /// order of the saved mappings.
    slots: Vec<(usize, usize)>,
    /// Descriptors of each file (two when touching mappings of it
    /// alternate), and of the exe.
    fds: Vec<[Option<u64>; 2]>,
    exe_fd: u64,
}

/// The saved mappings a restore makes (not the specials, which move).
fn ordinary<'v, 'a>(t: &'v TaskPlan<'a>) -> impl Iterator<Item = &'v VmaView<'a>> {
    t.vmas
        .iter()
        .filter(|v| !SPECIALS.contains(&v.kind()) && v.kind() != vma_kind::VSYSCALL)
}

/// What the first batch of a restore ([`prepare`]) will open, to make a
/// [`Layout`] of once it has run.
pub struct Prepared {
    scratch: u64,
    slots: Vec<(usize, usize)>,
    file_calls: Vec<[Option<FdFrom>; 2]>,
    exe_call: FdFrom,
    extra_calls: Vec<FdFrom>,
    vdso_at: Option<u64>,
}

/// Where a descriptor the mappings need comes from: an open call of the
/// first batch (its index), or the restorer, which opened it already
/// ([`to_open`]).
#[derive(Clone, Copy)]
enum FdFrom {
    Call(usize),
    Open(u64),
}

impl Prepared {
    /// The [`Layout`] once the batch [`prepare`] made ran (`res`: needed
    /// only when it opened the files); points `inj` at the `syscall`
    /// instruction of the moved [vdso].
    pub fn layout(self, res: Option<&BatchResult>, inj: &mut Injector) -> Layout {
        if let Some(ip) = self.vdso_at {
            inj.set_syscall_ip(ip);
        }
        let fd = |f: FdFrom| match f {
            FdFrom::Call(i) => res.map_or(u64::MAX, |r| r.ret(i)),
            FdFrom::Open(fd) => fd,
        };
        Layout {
            scratch: self.scratch,
            extra_fds: self.extra_calls.iter().map(|&f| fd(f)).collect(),
            slots: self.slots,
            fds: self
                .file_calls
                .iter()
                .map(|c| c.map(|f| f.map(fd)))
                .collect(),
            exe_fd: fd(self.exe_call),
        }
    }
}

/// Which files task `t`'s mappings need open, and how mapping number k of
/// [`ordinary`] file mappings uses them: (paths, which of two descriptors
/// of each path are needed, (path index, descriptor) per mapping). A file
/// is opened at most twice: two mappings of one open file that touch would
/// be merged by the kernel into one, where the checkpointed task had two,
/// so touching mappings alternate between two descriptors.
type FileSlots<'a> = (Vec<&'a [u8]>, Vec<[bool; 2]>, Vec<(usize, usize)>);

fn file_slots<'a>(t: &TaskPlan<'a>) -> FileSlots<'a> {
    let mut paths: Vec<&[u8]> = Vec::new();
    let mut need: Vec<[bool; 2]> = Vec::new();
    let mut last: Vec<(usize, u64)> = Vec::new();
    let mut slots = Vec::new();
    for v in ordinary(t).filter(|v| v.kind() == vma_kind::FILE) {
        let start = v.rec.start.get();
        let i = match paths.iter().position(|p| *p == v.path) {
            Some(i) => i,
            None => {
                paths.push(v.path);
                need.push([false; 2]);
                last.push((0, 0));
                paths.len() - 1
            }
        };
        let slot = if last[i].1 == start {
            1 - last[i].0
        } else {
            last[i].0
        };
        need[i][slot] = true;
        last[i] = (slot, v.rec.end.get());
        slots.push((i, slot));
    }
    (paths, need, slots)
}

/// The files the restorer of task `t` opens itself, in order, with their
/// open flags: each descriptor [`file_slots`] needs, the exe, then the
/// caller's `extra` paths. The restorer puts file k at descriptor
/// `first + k`, and [`prepare`] given `Some(first)` uses them there.
pub fn to_open<'a>(
    t: &TaskPlan<'a>,
    extra: &[(&'a [u8], i32)],
) -> Result<Vec<(&'a [u8], i32)>, ObjectError> {
    let (paths, need, _) = file_slots(t);
    let mut out = Vec::new();
    for (i, n) in need.iter().enumerate() {
        for used in n {
            if *used {
                out.push((paths[i], libc::O_RDONLY));
            }
        }
    }
    let mm = t.mm.as_ref().ok_or_else(|| ObjectError::Task {
        pid: t.pid,
        what: "no mm record".into(),
    })?;
    out.push((mm.exe, libc::O_RDONLY));
    out.extend_from_slice(extra);
    Ok(out)
}

/// First half of rebuilding task `t`'s address space, as one batch to run
/// from the scratch area the restorer mapped ([`scratch_for`]): its rseq
/// registration dropped, every restorer mapping but the specials and the
/// scratch unmapped, the specials moved to their saved place, and every file
/// the saved mappings need opened (with the caller's `extra` paths) — or,
/// with `opened`, taken as open already from that descriptor on, in the
/// order of [`to_open`]. Make the [`Layout`] for [`map`] and [`fill`] with
/// [`Prepared::layout`] (after the batch ran, when it opens the files; at
/// once otherwise, and the rest of the restore goes in the same batch).
pub fn prepare(
    t: &TaskPlan<'_>,
    inj: &Injector,
    own: &[super::mm::Vma],
    extra: &[(&[u8], i32)],
    opened: Option<u64>,
) -> Result<(Prepared, Batch), ObjectError> {
    let pid = t.pid;
    let err = |what: String| ObjectError::Task { pid, what };
    // The restorer is a fork of kstate (of a fork of kstate…): its special
    // mappings are where kstate's are (`own`, kstate's maps), and whatever
    // else it has is unmapped below, so its own maps need not be read.
    let current = own;
    let saved: Vec<(u64, u64)> = t
        .vmas
        .iter()
        .map(|v| (v.rec.start.get(), v.rec.end.get()))
        .collect();
    let cur_sp: Vec<(u32, u64, u64)> = current
        .iter()
        .filter_map(|v| special_kind(v.kind).map(|k| (k, v.start, v.end)))
        .collect();
    let saved_sp: Vec<(u32, u64, u64)> = t
        .vmas
        .iter()
        .filter(|v| SPECIALS.contains(&v.kind()))
        .map(|v| (v.kind(), v.rec.start.get(), v.rec.end.get()))
        .collect();
    // The scratch area, mapped by the restorer (it said so before it
    // stopped): the batches run from it while everything else changes.
    let scratch = t.scratch;
    let mut b = Batch::new(scratch, SCRATCH_LEN as usize);
    // 0. The restorer's rseq area (glibc's, in its TLS) is about to go: the
    // kernel would fault writing to it on the next return to user space.
    let rseq = crate::sys::ptrace::rseq_config(pid)
        .map_err(|e| err(format!("PTRACE_GET_RSEQ_CONFIGURATION: {e}")))?;
    if rseq.abi_pointer != 0 {
        const RSEQ_FLAG_UNREGISTER: u64 = 1;
        b.push(
            "rseq (unregister)",
            libc::SYS_rseq,
            [
                rseq.abi_pointer,
                rseq.abi_size as u64,
                RSEQ_FLAG_UNREGISTER,
                rseq.signature as u64,
                0,
                0,
            ],
        );
    }
    // 1. Everything of the restorer's but the special mappings and the
    // scratch goes: one munmap per hole between them (unmapped holes cost
    // nothing).
    let user_top = current
        .iter()
        .filter(|v| v.kind != VmaKind::Vsyscall)
        .map(|v| v.end)
        .max()
        .unwrap_or(0)
        .max(0x7fff_ffff_f000);
    let mut keep: Vec<(u64, u64)> = cur_sp.iter().map(|s| (s.1, s.2)).collect();
    keep.push((scratch, scratch + SCRATCH_LEN));
    keep.sort_unstable();
    let mut from = 0u64;
    for (s, e) in keep {
        if s > from {
            log::debug!("restore: task {pid}: unmap {from:#x}-{s:#x}");
            b.push("munmap", libc::SYS_munmap, [from, s - from, 0, 0, 0, 0]);
        }
        from = from.max(e);
    }
    if user_top > from {
        log::debug!("restore: task {pid}: unmap {from:#x}-{user_top:#x}");
        b.push(
            "munmap",
            libc::SYS_munmap,
            [from, user_top - from, 0, 0, 0, 0],
        );
    }
    // 2. The special mappings move, as one block (vdso code finds vvar at a
    // fixed distance), to their saved addresses (through a free area when
    // the two places overlap).
    let mut vdso_at = None;
    if !saved_sp.is_empty() && !cur_sp.is_empty() {
        let lo = cur_sp.iter().map(|s| s.1).min().unwrap_or(0);
        let hi = cur_sp.iter().map(|s| s.2).max().unwrap_or(0);
        let slo = saved_sp.iter().map(|s| s.1).min().unwrap_or(0);
        let vdso_off = cur_sp
            .iter()
            .find(|s| s.0 == vma_kind::VDSO)
            .map(|s| inj.syscall_ip().wrapping_sub(s.1));
        // Straight there when the block's old and new places do not
        // overlap (one mremap per mapping); through a free area otherwise.
        let stages = if slo + (hi - lo) <= lo || slo >= hi {
            vec![(lo, slo)]
        } else {
            let mut avoid = saved.clone();
            avoid.push((lo, hi));
            avoid.push((scratch, scratch + SCRATCH_LEN));
            let tmp = free_range(hi - lo, &avoid)
                .ok_or_else(|| err("no free room to move the vdso through".into()))?;
            vec![(lo, tmp), (tmp, slo)]
        };
        for stage in stages {
            for &(k, s, e) in &cur_sp {
                let from = s - lo + stage.0;
                let to = s - lo + stage.1;
                if from == to {
                    continue;
                }
                let flags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
                b.push(
                    "mremap of a special mapping",
                    libc::SYS_mremap,
                    [from, e - s, e - s, flags, to, 0],
                );
                if k == vma_kind::VDSO {
                    vdso_at = vdso_off.map(|off| to + off);
                }
            }
        }
    }
    // 3. Every file the mappings need ([`file_slots`]): opened by the
    // batch, or already open in the restorer (`opened`: from that number
    // on, in the order of [`to_open`]).
    let (paths, need, slots) = file_slots(t);
    let mm = t.mm.as_ref().ok_or_else(|| err("no mm record".into()))?;
    let mut next = opened;
    let mut open = |b: &mut Batch, path: &[u8], flags: i32| match next.as_mut() {
        Some(fd) => {
            *fd += 1;
            FdFrom::Open(*fd - 1)
        }
        None => {
            let mut p = path.to_vec();
            p.push(0);
            let at = b.data(&p);
            FdFrom::Call(b.push(
                "open",
                libc::SYS_open,
                [at, (flags | libc::O_CLOEXEC) as u64, 0, 0, 0, 0],
            ))
        }
    };
    let mut file_calls = Vec::new();
    for (i, n) in need.iter().enumerate() {
        let calls = n.map(|used| used.then(|| open(&mut b, paths[i], libc::O_RDONLY)));
        file_calls.push(calls);
    }
    let exe_call = open(&mut b, mm.exe, libc::O_RDONLY);
    let extra_calls: Vec<FdFrom> = extra
        .iter()
        .map(|(p, flags)| open(&mut b, p, *flags))
        .collect();
    Ok((
        Prepared {
            scratch,
            slots,
            file_calls,
            exe_call,
            extra_calls,
            vdso_at,
        },
        b,
    ))
}

/// Second half, as calls added to `b`: each saved mapping made at its
/// place, the files closed again, and the mm layout, auxv and exe link set
/// in one PR_SET_MM_MAP. The pages come after the batch ran, by [`fill`].
pub fn map(
    t: &TaskPlan<'_>,
    l: &Layout,
    b: &mut Batch,
    task_read: bool,
) -> Result<(), ObjectError> {
    let pid = t.pid;
    let err = |what: String| ObjectError::Task { pid, what };
    let mut slots = l.slots.iter();
    for v in ordinary(t) {
        let (start, len) = (v.rec.start.get(), v.rec.end.get() - v.rec.start.get());
        let mut prot = v.rec.prot.get() as u64;
        if task_read && opened_for_reads(v) {
            prot |= (libc::PROT_READ | libc::PROT_WRITE) as u64;
        }
        if v.kind() == vma_kind::FILE {
            let flags = if v.shared() {
                libc::MAP_SHARED
            } else {
                libc::MAP_PRIVATE
            } | libc::MAP_FIXED;
            let fd = slots
                .next()
                .and_then(|&(i, slot)| l.fds.get(i).and_then(|f| f[slot]))
                .ok_or_else(|| err(format!("mapping {start:#x}: no descriptor opened")))?;
            b.push(
                "mmap of a file",
                libc::SYS_mmap,
                [start, len, prot, flags as u64, fd, v.rec.pgoff.get()],
            );
        } else {
            let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED) as u64;
            b.push(
                "mmap",
                libc::SYS_mmap,
                [start, len, prot, flags, u64::MAX, 0],
            );
        }
        log::debug!(
            "restore: task {pid} mapping {start:#x}-{:#x} {}",
            start + len,
            crate::procfs::show(v.path)
        );
    }
    for fd in l.fds.iter().flatten().flatten() {
        b.push("close", libc::SYS_close, [*fd, 0, 0, 0, 0, 0]);
    }
    let mm = t.mm.as_ref().ok_or_else(|| err("no mm record".into()))?;
    let m = &mm.rec;
    let auxv: Vec<u64> = mm.auxv.iter().map(|w| w.get()).collect();
    let auxv_at = b.data(auxv.as_bytes());
    let mut map: Vec<u64> = [
        m.start_code,
        m.end_code,
        m.start_data,
        m.end_data,
        m.start_brk,
        m.brk,
        m.start_stack,
        m.arg_start,
        m.arg_end,
        m.env_start,
        m.env_end,
    ]
    .iter()
    .map(|w| w.get())
    .collect();
    map.push(auxv_at);
    map.push((l.exe_fd << 32) | (auxv.len() as u64 * 8));
    let map_at = b.data(map.as_bytes());
    b.push(
        "prctl(PR_SET_MM_MAP)",
        libc::SYS_prctl,
        [
            libc::PR_SET_MM as u64,
            libc::PR_SET_MM_MAP as u64,
            map_at,
            (map.len() * 8) as u64,
            0,
            0,
        ],
    );
    b.push("close", libc::SYS_close, [l.exe_fd, 0, 0, 0, 0, 0]);
    Ok(())
}

/// The extent holding the pages of mapping `v` (of task `pid`).
fn pages_of<'a>(
    img: &Image<'a>,
    pid: i32,
    v: &VmaView<'_>,
) -> Result<Option<crate::image::reader::ExtentView<'a>>, ObjectError> {
    let Some(id) = v.rec.pages.id() else {
        return Ok(None);
    };
    match img.object(id) {
        Ok(crate::image::reader::Object::Extent(e)) => Ok(Some(e)),
        _ => Err(ObjectError::Task {
            pid,
            what: format!(
                "mapping {:#x}: its pages (record {id}) are not an extent",
                v.rec.start.get()
            ),
        }),
    }
}

/// The pages of a writable mapping, and of a private one that is not
/// executable, are read by the task itself (see [`read_pages`]); the
/// others are written by kstate ([`fill`]).
fn task_reads(v: &VmaView<'_>) -> bool {
    let prot = v.rec.prot.get();
    prot & libc::PROT_WRITE as u32 != 0 || !v.shared() && prot & libc::PROT_EXEC as u32 == 0
}

/// A private mapping that is neither writable nor executable but has
/// saved pages (a relro section, data made read-only): mapped writable for
/// the task's reads, then given its own protection back ([`map`],
/// [`read_pages`]). Such a mapping was writable once (how else would it
/// have pages of its own), so it was accounted as writable already; an
/// executable one with pages of its own (code patched through ptrace) may
/// never have been, and is left to kstate, which writes without making it
/// writable.
fn opened_for_reads(v: &VmaView<'_>) -> bool {
    let prot = v.rec.prot.get();
    prot & (libc::PROT_WRITE | libc::PROT_EXEC) as u32 == 0
        && !v.shared()
        && v.rec.pages.id().is_some()
}

/// The pread64 calls [`read_pages`] added, to check once the batch ran: a
/// short read (the image file changed under kstate) fails the restore.
#[derive(Debug, Default)]
pub struct PageReads(Vec<(usize, u64, u64)>);

impl PageReads {
    /// Fails naming the first run of pages not read whole.
    pub fn verify(&self, pid: i32, res: &BatchResult) -> Result<(), ObjectError> {
        for &(i, at, want) in &self.0 {
            let got = res.ret(i);
            if got != want {
                return Err(ObjectError::Task {
                    pid,
                    what: format!(
                        "reading its pages at {at:#x} from the image: {got} bytes of {want}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The saved pages of the task's writable and private mappings, as calls
/// added to `b` after [`map`]: the task reads them itself from the image
/// file (`image`, its descriptor there), one pread64 per run of pages, so
/// that the tasks fill their memory side by side and kstate copies
/// nothing. A private mapping that is not writable was mapped writable for
/// this (`map`) and gets its protection back (mprotect) after its reads. A
/// shared mapping that is not writable is left to [`fill`], which writes
/// through /proc/PID/mem without making it writable.
pub fn read_pages(
    img: &Image<'_>,
    t: &TaskPlan<'_>,
    image: u64,
    b: &mut Batch,
) -> Result<PageReads, ObjectError> {
    let pid = t.pid;
    let page = img.header().page_size.get() as u64;
    let mut reads = PageReads::default();
    for v in ordinary(t).filter(|v| task_reads(v)) {
        let Some(e) = pages_of(img, pid, v)? else {
            continue;
        };
        let mut off = 0u64;
        for run in v.runs {
            let n = run.pages.get() * page;
            if off + n > e.data.len() as u64 {
                return Err(ObjectError::Task {
                    pid,
                    what: format!(
                        "mapping {:#x}: extent {} too short",
                        v.rec.start.get(),
                        v.rec.pages.id.get()
                    ),
                });
            }
            let at = run.start.get();
            let i = b.push(
                "pread64 (its pages, from the image)",
                libc::SYS_pread64,
                [image, at, n, e.data_offset + off, 0, 0],
            );
            reads.0.push((i, at, n));
            off += n;
        }
        if opened_for_reads(v) {
            let (start, end) = (v.rec.start.get(), v.rec.end.get());
            b.push(
                "mprotect (back to its protection once read)",
                libc::SYS_mprotect,
                [start, end - start, v.rec.prot.get() as u64, 0, 0, 0],
            );
        }
    }
    Ok(reads)
}

/// The saved pages, written into the mappings [`map`] made, straight from
/// the mapped image through /proc/PID/mem (which writes read-only pages
/// too; a PROT_NONE mapping is opened for the write and closed again).
/// With `task_read` the writable mappings are skipped: the task read
/// those itself ([`read_pages`]).
pub fn fill(
    img: &Image<'_>,
    t: &TaskPlan<'_>,
    inj: &mut Injector,
    task_read: bool,
) -> Result<(), ObjectError> {
    let pid = t.pid;
    let err = |what: String| ObjectError::Task { pid, what };
    let ierr = |e: crate::sys::inject::InjectError| ObjectError::Task {
        pid,
        what: e.to_string(),
    };
    let page = img.header().page_size.get() as u64;
    for v in ordinary(t).filter(|v| !(task_read && task_reads(v))) {
        let Some(e) = pages_of(img, pid, v)? else {
            continue;
        };
        let (start, len) = (v.rec.start.get(), v.rec.end.get() - v.rec.start.get());
        let prot = v.rec.prot.get() as u64;
        let mut off = 0usize;
        for run in v.runs {
            let n = (run.pages.get() * page) as usize;
            let data = e.data.get(off..off + n).ok_or_else(|| {
                err(format!(
                    "mapping {start:#x}: extent {} too short",
                    v.rec.pages.id.get()
                ))
            })?;
            if inj.write_mem(run.start.get(), data).is_err() {
                // PROT_NONE pages cannot be written even by force.
                let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
                inj.call("mprotect", libc::SYS_mprotect, [start, len, rw, 0, 0, 0])
                    .map_err(ierr)?;
                inj.write_mem(run.start.get(), data).map_err(ierr)?;
                inj.call("mprotect", libc::SYS_mprotect, [start, len, prot, 0, 0, 0])
                    .map_err(ierr)?;
            }
            off += n;
        }
    }
    Ok(())
}
