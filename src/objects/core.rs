//! The core of a task: registers (general and extended), signal mask,
//! handlers and pending signals, sigaltstack, itimers, credentials,
//! capabilities, rlimits, personality, umask, cwd and root.

use serde_json::{json, Map, Value};

use super::namespace::ref_json;
use super::{files, proc_err, ObjectError};
use crate::image::reader::TaskCoreView;
use crate::procfs;

pub fn describe(c: &TaskCoreView<'_>, out: &mut Map<String, Value>) {
    let r = &c.rec;
    out.insert("task".into(), ref_json(r.task));
    let regs: Vec<String> = r.regs.iter().map(|w| format!("{:#x}", w.get())).collect();
    out.insert("regs".into(), json!(regs));
    out.insert("xstate_len".into(), json!(c.xstate.len()));
    out.insert("sigmask".into(), json!(format!("{:#x}", r.sigmask.get())));
    // Whether the task was stopped inside a system call follows from its
    // registers (where it happened to be), so it is shown on its own, out
    // of `flags`, which holds settings (no_new_privs).
    let flags = r.flags.get();
    out.insert(
        "in_syscall".into(),
        json!(flags & crate::image::format::task_core_flags::IN_SYSCALL != 0),
    );
    out.insert(
        "flags".into(),
        json!(flags & !crate::image::format::task_core_flags::IN_SYSCALL),
    );
    out.insert(
        "uids".into(),
        json!(r.uids.iter().map(|u| u.get()).collect::<Vec<_>>()),
    );
    out.insert(
        "gids".into(),
        json!(r.gids.iter().map(|u| u.get()).collect::<Vec<_>>()),
    );
    out.insert(
        "groups".into(),
        json!(c.groups.iter().map(|u| u.get()).collect::<Vec<_>>()),
    );
    out.insert(
        "caps".into(),
        json!(r
            .caps
            .iter()
            .map(|c| format!("{:#x}", c.get()))
            .collect::<Vec<_>>()),
    );
    out.insert(
        "securebits".into(),
        json!(format!("{:#x}", r.securebits.get())),
    );
    out.insert(
        "rlimits".into(),
        json!(r
            .rlimits
            .iter()
            .map(|l| [l[0].get(), l[1].get()])
            .collect::<Vec<_>>()),
    );
    out.insert(
        "itimers".into(),
        json!(r
            .itimers
            .iter()
            .map(|t| t.map(|v| v.get()))
            .collect::<Vec<_>>()),
    );
    out.insert(
        "altstack".into(),
        json!([
            format!("{:#x}", r.altstack_sp.get()),
            r.altstack_size.get(),
            r.altstack_flags.get()
        ]),
    );
    out.insert("personality".into(), json!(r.personality.get()));
    out.insert("umask".into(), json!(format!("{:o}", r.umask.get())));
    let handlers: Vec<Value> = c
        .sigactions
        .iter()
        .map(|s| {
            json!({
                "signo": s.signo.get(),
                "handler": format!("{:#x}", s.handler.get()),
                "flags": format!("{:#x}", s.flags.get()),
                "restorer": format!("{:#x}", s.restorer.get()),
                "mask": format!("{:#x}", s.mask.get()),
            })
        })
        .collect();
    out.insert("sigactions".into(), json!(handlers));
    let pending: Vec<Value> = c
        .pending
        .iter()
        .map(|p| {
            let signo =
                i32::from_le_bytes([p.siginfo[0], p.siginfo[1], p.siginfo[2], p.siginfo[3]]);
            json!({"signo": signo, "shared": p.shared.get() != 0})
        })
        .collect();
    out.insert("pending".into(), json!(pending));
    out.insert("cwd".into(), json!(procfs::show(c.cwd)));
    out.insert("root".into(), json!(procfs::show(c.root)));
}

/// What /proc tells of a task's identity and limits (the rest of the core
/// comes from ptrace and injected system calls).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcCore {
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    pub groups: Vec<u32>,
    /// Inheritable, permitted, effective, bounding, ambient.
    pub caps: [u64; 5],
    pub no_new_privs: bool,
    pub seccomp: u32,
    pub umask: u32,
    pub personality: u32,
    /// Soft and hard, u64::MAX for unlimited, in RLIMIT_* order.
    pub rlimits: [[u64; 2]; 16],
    pub cwd: Vec<u8>,
    pub root: Vec<u8>,
    /// SigCgt | SigIgn: the signals whose disposition is not the default.
    pub handled_signals: u64,
}

fn ids4(status: &[u8], key: &[u8]) -> Option<[u32; 4]> {
    let v = procfs::parse_u32_list(procfs::field(status, key)?)?;
    v.try_into().ok()
}

/// Parses /proc/PID/limits: fixed columns (name 26 bytes, soft and hard 21
/// bytes each), in RLIMIT_* order after a header line.
pub fn parse_limits(text: &[u8]) -> Option<[[u64; 2]; 16]> {
    let mut out = [[0u64; 2]; 16];
    let mut lines = text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty());
    for slot in out.iter_mut() {
        let line = lines.next()?;
        let col = |a: usize, b: usize| {
            procfs::trim(line.get(a..b.min(line.len()))?)
                .to_vec()
                .into()
        };
        let value = |v: Option<Vec<u8>>| -> Option<u64> {
            let v = v?;
            if v == b"unlimited" {
                Some(u64::MAX)
            } else {
                procfs::parse_u64(&v)
            }
        };
        *slot = [value(col(26, 47))?, value(col(47, 68))?];
    }
    Some(out)
}

/// Reads the /proc part of task `pid`'s core.
pub fn collect_proc(pid: i32) -> Result<ProcCore, ObjectError> {
    let path = procfs::pid_path(pid, "status");
    let status = procfs::read(&path).map_err(proc_err(pid, &path))?;
    // Unknown (unparsable) masks count as all handled: every signal is
    // then asked for, which is slower but never wrong.
    let mask_of = |key: &[u8]| {
        procfs::field(&status, key)
            .and_then(procfs::parse_hex_u64)
            .unwrap_or(u64::MAX)
    };
    let handled_signals = mask_of(b"SigCgt") | mask_of(b"SigIgn");
    let bad = |field| ObjectError::ProcParse {
        pid,
        path: path.clone(),
        field,
    };
    let uids = ids4(&status, b"Uid").ok_or_else(|| bad("Uid"))?;
    let gids = ids4(&status, b"Gid").ok_or_else(|| bad("Gid"))?;
    let groups = procfs::field(&status, b"Groups")
        .and_then(procfs::parse_u32_list)
        .ok_or_else(|| bad("Groups"))?;
    let mut caps = [0u64; 5];
    for (slot, key) in caps
        .iter_mut()
        .zip(["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"])
    {
        *slot = procfs::field(&status, key.as_bytes())
            .and_then(procfs::parse_hex_u64)
            .ok_or_else(|| bad("Cap*"))?;
    }
    let no_new_privs = procfs::field(&status, b"NoNewPrivs") == Some(b"1");
    let seccomp = procfs::field(&status, b"Seccomp")
        .and_then(procfs::parse_u32)
        .unwrap_or(0);
    let umask = procfs::field(&status, b"Umask")
        .and_then(|u| u32::from_str_radix(std::str::from_utf8(u).ok()?, 8).ok())
        .ok_or_else(|| bad("Umask"))?;
    let ppath = procfs::pid_path(pid, "personality");
    let personality = procfs::read(&ppath)
        .ok()
        .and_then(|p| u32::from_str_radix(std::str::from_utf8(procfs::trim(&p)).ok()?, 16).ok())
        .ok_or_else(|| ObjectError::ProcParse {
            pid,
            path: ppath.clone(),
            field: "personality",
        })?;
    let lpath = procfs::pid_path(pid, "limits");
    let limits = procfs::read(&lpath).map_err(proc_err(pid, &lpath))?;
    let rlimits = parse_limits(&limits).ok_or_else(|| ObjectError::ProcParse {
        pid,
        path: lpath.clone(),
        field: "limits",
    })?;
    Ok(ProcCore {
        uids,
        gids,
        groups,
        caps,
        no_new_privs,
        seccomp,
        umask,
        personality,
        rlimits,
        cwd: files::task_path(pid, "cwd")?,
        root: files::task_path(pid, "root")?,
        handled_signals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_table() {
        let text = std::fs::read("/proc/self/limits").unwrap();
        let l = parse_limits(&text).expect("parses");
        // RLIMIT_NOFILE is index 7 and never unlimited.
        assert!(l[7][0] > 0 && l[7][0] != u64::MAX);
        assert!(l[7][0] <= l[7][1]);
        assert_eq!(parse_limits(b"Limit\nMax cpu time"), None);
    }

    #[test]
    fn own_core() {
        let c = collect_proc(std::process::id() as i32).unwrap();
        assert_eq!(
            c.cwd,
            std::env::current_dir()
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        );
    }
}

// ---- collect (ptrace and injected calls), dump, restore ----

use std::io::Write;

use zerocopy::little_endian::{I64, U32, U64};
use zerocopy::IntoBytes;

use crate::image::format::{
    task_core_flags, PendingSignal, Sigaction, TaskCoreRecord, USER_REGS_WORDS,
};
use crate::image::{ImageWriter, Kind, Ref};
use crate::sys::inject::{Batch, BatchResult, Injector, KernelSigaction, KERNEL_SIGACTION_SIZE};

/// Room for the batch of calls that reads a task's core at checkpoint (64
/// signals' actions, timers, the alternate stack and their call table).
const COLLECT_AREA: usize = 16 * 1024;
use crate::sys::{ptrace, regs};

/// Everything of a task's core, as collected.
#[derive(Clone, Debug)]
pub struct CoreInfo {
    pub regs: [u64; USER_REGS_WORDS],
    pub in_syscall: bool,
    pub xstate: Vec<u8>,
    pub sigmask: u64,
    pub sigactions: Vec<(u32, KernelSigaction)>,
    /// (shared, siginfo)
    pub pending: Vec<(bool, [u8; 128])>,
    pub itimers: [[i64; 4]; 3],
    pub altstack: (u64, u64, i32),
    pub brk: u64,
    pub rseq: ptrace::RseqConfig,
    /// prctl(PR_GET_SECUREBITS), which /proc does not show.
    pub securebits: u32,
    pub proc: ProcCore,
}

/// `user_regs_struct` as words, in its field order.
pub fn regs_to_words(r: &libc::user_regs_struct) -> [u64; USER_REGS_WORDS] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds,
        r.es, r.fs, r.gs,
    ]
}

/// The inverse of [`regs_to_words`].
pub fn regs_from_words(w: &[u64; USER_REGS_WORDS]) -> libc::user_regs_struct {
    libc::user_regs_struct {
        r15: w[0],
        r14: w[1],
        r13: w[2],
        r12: w[3],
        rbp: w[4],
        rbx: w[5],
        r11: w[6],
        r10: w[7],
        r9: w[8],
        r8: w[9],
        rax: w[10],
        rcx: w[11],
        rdx: w[12],
        rsi: w[13],
        rdi: w[14],
        orig_rax: w[15],
        rip: w[16],
        cs: w[17],
        eflags: w[18],
        rsp: w[19],
        ss: w[20],
        fs_base: w[21],
        gs_base: w[22],
        ds: w[23],
        es: w[24],
        fs: w[25],
        gs: w[26],
    }
}

fn inj_err(pid: i32) -> impl FnOnce(crate::sys::inject::InjectError) -> ObjectError {
    move |e| ObjectError::Task {
        pid,
        what: e.to_string(),
    }
}

fn regs_err(pid: i32) -> impl FnOnce(regs::RegsError) -> ObjectError {
    move |e| ObjectError::Task {
        pid,
        what: e.to_string(),
    }
}

/// Collects the core of frozen task `pid` through `inj` (an injection
/// session on it) and /proc.
pub fn collect(pid: i32, inj: &mut Injector) -> Result<CoreInfo, ObjectError> {
    let saved = *inj.saved_regs();
    let in_syscall = regs::SyscallState::of(&saved).in_syscall();
    let xstate = regs::get_xstate(pid).map_err(regs_err(pid))?;
    let sigmask = regs::get_sigmask(pid).map_err(regs_err(pid))?;
    // Only the signals /proc says are caught or ignored have a disposition
    // worth a system call; the others are SIG_DFL.
    let proc = collect_proc(pid)?;
    let handled = proc.handled_signals;
    // Everything read by injected calls, in one batch (one resume of the
    // task instead of two stops per call).
    let area = inj.scratch(COLLECT_AREA).map_err(inj_err(pid))?;
    let mut b = Batch::new(area, COLLECT_AREA);
    let mut asked = Vec::new();
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || handled & (1u64 << (sig - 1)) == 0 {
            continue;
        }
        let buf = b.buffer(KERNEL_SIGACTION_SIZE);
        b.push(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [sig as u64, 0, buf, 8, 0, 0],
        );
        asked.push((sig as u32, buf));
    }
    let timer_bufs: Vec<u64> = (0..3)
        .map(|which| {
            let buf = b.buffer(32);
            b.push("getitimer", libc::SYS_getitimer, [which, buf, 0, 0, 0, 0]);
            buf
        })
        .collect();
    let alt_buf = b.buffer(24);
    b.push(
        "sigaltstack",
        libc::SYS_sigaltstack,
        [0, alt_buf, 0, 0, 0, 0],
    );
    let brk_call = b.push("brk", libc::SYS_brk, [0; 6]);
    let secbits_call = b.push(
        "prctl(PR_GET_SECUREBITS)",
        libc::SYS_prctl,
        [libc::PR_GET_SECUREBITS as u64, 0, 0, 0, 0, 0],
    );
    let res = inj.run(b).map_err(inj_err(pid))?;
    let word = |at: u64, i: u64| -> u64 {
        res.bytes(at + i * 8, 8)
            .try_into()
            .map(u64::from_ne_bytes)
            .unwrap_or(0)
    };
    let mut sigactions = Vec::new();
    let mut trap = None;
    for (sig, buf) in asked {
        let mut raw = [0u8; KERNEL_SIGACTION_SIZE];
        raw.copy_from_slice(res.bytes(buf, KERNEL_SIGACTION_SIZE));
        let sa = KernelSigaction::from_raw(&raw);
        if sig == libc::SIGTRAP as u32 {
            trap = Some(raw);
        }
        if sa.handler != 0 || sa.flags != 0 || sa.mask != 0 {
            sigactions.push((sig, sa));
        }
    }
    put_back_sigtrap(pid, inj, area, trap.as_ref(), sigmask)?;
    let mut itimers = [[0i64; 4]; 3];
    for (slot, buf) in itimers.iter_mut().zip(timer_bufs) {
        *slot = [0, 1, 2, 3].map(|i| word(buf, i) as i64);
    }
    let alt = (
        word(alt_buf, 0),
        word(alt_buf, 1) as u32 as i32,
        word(alt_buf, 2),
    );
    let brk = res.ret(brk_call);
    let securebits = res.ret(secbits_call) as u32;
    let mut pending = Vec::new();
    for shared in [false, true] {
        let infos = ptrace::peek_siginfo(pid, shared).map_err(|e| ObjectError::Task {
            pid,
            what: format!("PTRACE_PEEKSIGINFO: {e}"),
        })?;
        pending.extend(infos.into_iter().map(|i| (shared, i)));
    }
    let rseq = ptrace::rseq_config(pid).map_err(|e| ObjectError::Task {
        pid,
        what: format!("PTRACE_GET_RSEQ_CONFIGURATION: {e}"),
    })?;
    if proc.seccomp != 0 {
        return Err(ObjectError::Unsupported {
            pid,
            object: "a seccomp filter".into(),
        });
    }
    log::debug!(
        "collect: task {pid} core: in_syscall {in_syscall}, {} handlers, {} pending, xstate {} bytes",
        sigactions.len(),
        pending.len(),
        xstate.len()
    );
    Ok(CoreInfo {
        regs: regs_to_words(&saved),
        in_syscall,
        xstate,
        sigmask,
        sigactions,
        pending,
        itimers,
        altstack: (alt.0, alt.2, alt.1),
        brk,
        rseq,
        securebits,
        proc,
    })
}

/// The batch's final int3 makes the kernel force a SIGTRAP on the task,
/// which resets an ignored or blocked SIGTRAP to the default action and
/// unblocks it: a task left running after its checkpoint gets its action
/// back here, by a traced call (whose stops raise no signal), and its mask.
fn put_back_sigtrap(
    pid: i32,
    inj: &mut Injector,
    area: u64,
    raw: Option<&[u8; KERNEL_SIGACTION_SIZE]>,
    sigmask: u64,
) -> Result<(), ObjectError> {
    let blocked = sigmask & (1u64 << (libc::SIGTRAP - 1)) != 0;
    // Its action, when it is not the default (then it is in `raw`, which
    // /proc listed as caught or ignored) and the trap reset it.
    if let Some(raw) = raw {
        let handler = KernelSigaction::from_raw(raw).handler;
        if handler == 1 || blocked && handler != 0 {
            inj.write_mem(area, raw).map_err(inj_err(pid))?;
            inj.call(
                "rt_sigaction (SIGTRAP, after the batch's trap)",
                libc::SYS_rt_sigaction,
                [libc::SIGTRAP as u64, area, 0, 8, 0, 0],
            )
            .map_err(inj_err(pid))?;
        }
    }
    if blocked {
        regs::set_sigmask(pid, sigmask).map_err(regs_err(pid))?;
    }
    Ok(())
}

pub fn dump<W: Write>(w: &mut ImageWriter<W>, task: Ref, c: &CoreInfo) -> Result<Ref, ObjectError> {
    let p = &c.proc;
    let mut flags = 0;
    if c.in_syscall {
        flags |= task_core_flags::IN_SYSCALL;
    }
    if p.no_new_privs {
        flags |= task_core_flags::NO_NEW_PRIVS;
    }
    let rec = TaskCoreRecord {
        task,
        regs: c.regs.map(U64::new),
        sigmask: U64::new(c.sigmask),
        flags: U32::new(flags),
        personality: U32::new(p.personality),
        umask: U32::new(p.umask),
        securebits: U32::new(c.securebits),
        uids: p.uids.map(U32::new),
        gids: p.gids.map(U32::new),
        caps: p.caps.map(U64::new),
        rlimits: p.rlimits.map(|l| l.map(U64::new)),
        itimers: c.itimers.map(|t| t.map(I64::new)),
        altstack_sp: U64::new(c.altstack.0),
        altstack_size: U64::new(c.altstack.1),
        altstack_flags: U32::new(c.altstack.2 as u32),
        xstate_len: U32::new(c.xstate.len() as u32),
        groups: U32::new(p.groups.len() as u32),
        sigactions: U32::new(c.sigactions.len() as u32),
        pending: U32::new(c.pending.len() as u32),
        cwd_len: U32::new(p.cwd.len() as u32),
        root_len: U32::new(p.root.len() as u32),
        reserved: U32::ZERO,
        rseq_abi: U64::new(c.rseq.abi_pointer),
        rseq_len: U32::new(c.rseq.abi_size),
        rseq_sig: U32::new(c.rseq.signature),
    };
    let groups: Vec<U32> = p.groups.iter().map(|&g| U32::new(g)).collect();
    let sas: Vec<Sigaction> = c
        .sigactions
        .iter()
        .map(|(signo, sa)| Sigaction {
            signo: U32::new(*signo),
            reserved: U32::ZERO,
            handler: U64::new(sa.handler),
            flags: U64::new(sa.flags),
            restorer: U64::new(sa.restorer),
            mask: U64::new(sa.mask),
        })
        .collect();
    let pending: Vec<PendingSignal> = c
        .pending
        .iter()
        .map(|(shared, info)| PendingSignal {
            shared: U32::new(*shared as u32),
            reserved: U32::ZERO,
            siginfo: *info,
        })
        .collect();
    w.push(
        Kind::TaskCore,
        &rec,
        &[
            &c.xstate,
            groups.as_bytes(),
            sas.as_bytes(),
            pending.as_bytes(),
            &p.cwd,
            &p.root,
        ],
    )
    .map_err(ObjectError::Write)
}

/// What must be checked once the batch of a core restore has run: the fs
/// ids (setfsuid/setfsgid return the previous id, never an error, so each
/// is read back with an invalid id, -1, which changes nothing).
#[derive(Debug, Default)]
pub struct CoreChecks {
    fs_ids: Vec<(&'static str, usize, u32)>,
}

impl CoreChecks {
    /// Fails naming the call whose id did not take.
    pub fn verify(&self, pid: i32, res: &BatchResult) -> Result<(), ObjectError> {
        for &(name, i, want) in &self.fs_ids {
            let got = res.ret(i) as u32;
            if got != want {
                return Err(ObjectError::Task {
                    pid,
                    what: format!("{name}({want}) left it at {got}"),
                });
            }
        }
        Ok(())
    }
}

fn prctl(b: &mut Batch, name: &'static str, args: [u64; 5]) {
    let [a1, a2, a3, a4, a5] = args;
    b.push(name, libc::SYS_prctl, [a1, a2, a3, a4, a5, 0]);
}

/// Adds the calls that put back the core of a restored task to `b`:
/// handlers, timers, alternate stack, personality, pending signals, and
/// credentials last. Registers, mask and extended state are set by
/// [`restore_registers`] once the injection session is over.
pub fn restore(
    pid: i32,
    c: &TaskCoreView<'_>,
    b: &mut Batch,
    known: Option<(&Restorer, u64)>,
) -> Result<CoreChecks, ObjectError> {
    let r = &c.rec;
    // Read once, for the task's own pid and the restorer's capabilities
    // (unless the caller knows them: `known`, with the task's own pid).
    let read;
    let (path, status, denied) = match known {
        Some((k, _)) => (&k.path, k.status.as_slice(), Some(k.setgroups_denied)),
        None => {
            let path = procfs::pid_path(pid, "status");
            let status = procfs::read(&path).map_err(proc_err(pid, &path))?;
            read = (path, status);
            (&read.0, read.1.as_slice(), None)
        }
    };
    for sa in c.sigactions {
        let raw = [
            sa.handler.get(),
            sa.flags.get(),
            sa.restorer.get(),
            sa.mask.get(),
        ];
        let at = b.data(raw.as_bytes());
        b.push(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [sa.signo.get() as u64, at, 0, 8, 0, 0],
        );
    }
    for (which, t) in r.itimers.iter().enumerate() {
        let v = t.map(|x| x.get());
        if v != [0; 4] {
            let at = b.data(v.as_bytes());
            b.push(
                "setitimer",
                libc::SYS_setitimer,
                [which as u64, at, 0, 0, 0, 0],
            );
        }
    }
    // The alternate stack as it was, or none (the restorer may have one).
    let alt_flags = r.altstack_flags.get() as i32;
    let alt = if alt_flags & libc::SS_DISABLE == 0 && r.altstack_size.get() != 0 {
        // SS_ONSTACK is a state, not a setting.
        [
            r.altstack_sp.get(),
            (alt_flags & !libc::SS_ONSTACK) as u32 as u64,
            r.altstack_size.get(),
        ]
    } else {
        [0, libc::SS_DISABLE as u64, 0]
    };
    let at = b.data(alt.as_bytes());
    b.push("sigaltstack", libc::SYS_sigaltstack, [at, 0, 0, 0, 0, 0]);
    b.push(
        "personality",
        libc::SYS_personality,
        [r.personality.get() as u64, 0, 0, 0, 0, 0],
    );
    // The task's own mask before its pending signals are queued: with the
    // restorer's (empty) mask a blocked signal would be delivered at once (to
    // the injector, which queues it again as thread-directed), or dropped by
    // the kernel if its default action is to ignore it.
    if !c.pending.is_empty() {
        let at = b.data(r.sigmask.get().as_bytes());
        b.push(
            "rt_sigprocmask",
            libc::SYS_rt_sigprocmask,
            [libc::SIG_SETMASK as u64, at, 0, 8, 0, 0],
        );
    }
    // The task queues them to itself, by its pid in its own pid namespace
    // (kstate's view differs when that is the tree's own): the last NSpid.
    let own = if c.pending.is_empty() {
        0
    } else if let Some((_, own_pid)) = known {
        own_pid
    } else {
        procfs::field(status, b"NSpid")
            .and_then(|v| procfs::words(v).last())
            .and_then(|w| std::str::from_utf8(w).ok()?.parse::<u64>().ok())
            .ok_or_else(|| ObjectError::ProcParse {
                pid,
                path: path.clone(),
                field: "NSpid",
            })?
    };
    for p in c.pending {
        let at = b.data(&p.siginfo);
        let signo =
            i32::from_le_bytes([p.siginfo[0], p.siginfo[1], p.siginfo[2], p.siginfo[3]]) as u64;
        if p.shared.get() != 0 {
            b.push(
                "rt_sigqueueinfo",
                libc::SYS_rt_sigqueueinfo,
                [own, signo, at, 0, 0, 0],
            );
        } else {
            b.push(
                "rt_tgsigqueueinfo",
                libc::SYS_rt_tgsigqueueinfo,
                [own, own, signo, at, 0, 0],
            );
        }
    }
    // Credentials last: after them the task may lack the right to the rest.
    restore_creds(pid, c, b, path, status, denied)
}

/// What a restorer is as far as its core restore goes, when the caller
/// knows it without reading the task's /proc (a restorer in kstate's own
/// user namespace has kstate's capabilities and setgroups state):
/// `status` is the /proc status to take the capabilities from (read from
/// `path`). [`restore`] takes it with the task's own pid (in its own pid
/// namespace), which the status would otherwise give.
#[derive(Clone, Debug)]
pub struct Restorer {
    pub path: std::path::PathBuf,
    pub status: Vec<u8>,
    pub setgroups_denied: bool,
}

/// The kernel's highest capability number (/proc/sys/kernel/cap_last_cap,
/// read once), at most 63.
fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        procfs::read(std::path::Path::new("/proc/sys/kernel/cap_last_cap"))
            .ok()
            .and_then(|t| {
                std::str::from_utf8(procfs::trim(&t))
                    .ok()?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or(63)
            .min(63)
    })
}

/// capget/capset's header (version 3, this thread) and data (low then high
/// words of effective, permitted, inheritable), as the kernel lays them out.
fn cap_struct(inh: u64, prm: u64, eff: u64) -> [u32; 8] {
    const VERSION_3: u32 = 0x2008_0522;
    let (lo, hi) = (|v: u64| v as u32, |v: u64| (v >> 32) as u32);
    [
        VERSION_3,
        0,
        lo(eff),
        lo(prm),
        lo(inh),
        hi(eff),
        hi(prm),
        hi(inh),
    ]
}

/// Puts back the credentials of the task: it runs kstate's (root, with
/// kstate's capabilities) until then. The order matters, since most steps
/// need a capability the saved task may not have:
///
/// 1. inheritable set, with the restorer's permitted and effective kept
///    (the new inheritable set must come from the old one or the bounding
///    set, so before the bounding set shrinks);
/// 2. bounding set drops (CAP_SETPCAP);
/// 3. no_new_privs;
/// 4. SECBIT_NO_SETUID_FIXUP for now (CAP_SETPCAP): the uid change then
///    leaves every capability as it is;
/// 5. groups, gids, uids (CAP_SETGID, CAP_SETUID), fs ids when they differ;
/// 6. ambient set (each bit must be permitted and inheritable, and
///    SECBIT_NO_CAP_AMBIENT_RAISE not set yet);
/// 7. the saved securebits, locks included (CAP_SETPCAP);
/// 8. permitted and effective sets, as saved: the last privilege dropped.
///
/// The restorer's own sets (kstate's, inherited) are read from
/// /proc/PID/status, since the calls run later, in one batch.
/// `status` is the text of the task's /proc/PID/status (at `path`).
fn restore_creds(
    pid: i32,
    c: &TaskCoreView<'_>,
    b: &mut Batch,
    path: &std::path::Path,
    status: &[u8],
    setgroups_denied: Option<bool>,
) -> Result<CoreChecks, ObjectError> {
    let r = &c.rec;
    let [inh, prm, eff, bnd, amb] = r.caps.map(|v| v.get());
    let (uids, gids) = (r.uids.map(|u| u.get()), r.gids.map(|g| g.get()));
    let securebits = r.securebits.get() as u64;
    let cap = |field: &'static str| {
        procfs::field(status, field.as_bytes())
            .and_then(procfs::parse_hex_u64)
            .ok_or_else(|| ObjectError::ProcParse {
                pid,
                path: path.to_path_buf(),
                field,
            })
    };
    let (my_prm, my_eff) = (cap("CapPrm")?, cap("CapEff")?);
    // 1.
    let at = b.data(cap_struct(inh, my_prm, my_eff).as_bytes());
    b.push(
        "capset (inheritable)",
        libc::SYS_capset,
        [at, at + 8, 0, 0, 0, 0],
    );
    // 2. The bounding set: only drops are possible. Every capability the
    // kernel knows and the saved set lacks is dropped, not only those kstate
    // has: entering a user namespace (`--join-ns user`, earlier in the same
    // batch) fills the bounding set again.
    for cap in 0..=last_cap() {
        if !bnd & (1u64 << cap) != 0 {
            prctl(
                b,
                "prctl(PR_CAPBSET_DROP)",
                [libc::PR_CAPBSET_DROP as u64, cap as u64, 0, 0, 0],
            );
        }
    }
    // 3.
    if r.flags.get() & task_core_flags::NO_NEW_PRIVS != 0 {
        prctl(
            b,
            "prctl(PR_SET_NO_NEW_PRIVS)",
            [libc::PR_SET_NO_NEW_PRIVS as u64, 1, 0, 0, 0],
        );
    }
    // 4.
    prctl(
        b,
        "prctl(PR_SET_SECUREBITS)",
        [
            libc::PR_SET_SECUREBITS as u64,
            libc::SECBIT_NO_SETUID_FIXUP as u64,
            0,
            0,
            0,
        ],
    );
    // 5. kstate's groups are not the task's, even when it had none. In a
    // user namespace that denies setgroups, nobody can set them: the task
    // was born with them (see kstate::userns).
    let denied = setgroups_denied.unwrap_or_else(|| {
        procfs::read(&procfs::pid_path(pid, "setgroups")).is_ok_and(|s| procfs::trim(&s) == b"deny")
    });
    if !denied {
        let groups: Vec<u32> = c.groups.iter().map(|g| g.get()).collect();
        let at = b.data(groups.as_bytes());
        b.push(
            "setgroups",
            libc::SYS_setgroups,
            [groups.len() as u64, at, 0, 0, 0, 0],
        );
    }
    b.push(
        "setresgid",
        libc::SYS_setresgid,
        [gids[0] as u64, gids[1] as u64, gids[2] as u64, 0, 0, 0],
    );
    let mut checks = CoreChecks::default();
    let mut fs_id = |b: &mut Batch, name: &'static str, nr: i64, ids: [u32; 4]| {
        if ids[3] != ids[1] {
            b.push(name, nr, [ids[3] as u64, 0, 0, 0, 0, 0]);
            let i = b.push(name, nr, [u32::MAX as u64, 0, 0, 0, 0, 0]);
            checks.fs_ids.push((name, i, ids[3]));
        }
    };
    fs_id(b, "setfsgid", libc::SYS_setfsgid, gids);
    b.push(
        "setresuid",
        libc::SYS_setresuid,
        [uids[0] as u64, uids[1] as u64, uids[2] as u64, 0, 0, 0],
    );
    fs_id(b, "setfsuid", libc::SYS_setfsuid, uids);
    // 6.
    prctl(
        b,
        "prctl(PR_CAP_AMBIENT_CLEAR_ALL)",
        [
            libc::PR_CAP_AMBIENT as u64,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as u64,
            0,
            0,
            0,
        ],
    );
    for cap in (0..64).filter(|bit| amb & (1u64 << bit) != 0) {
        prctl(
            b,
            "prctl(PR_CAP_AMBIENT_RAISE)",
            [
                libc::PR_CAP_AMBIENT as u64,
                libc::PR_CAP_AMBIENT_RAISE as u64,
                cap,
                0,
                0,
            ],
        );
    }
    // 7.
    prctl(
        b,
        "prctl(PR_SET_SECUREBITS)",
        [libc::PR_SET_SECUREBITS as u64, securebits, 0, 0, 0],
    );
    // 8. Permitted and effective as saved (the ambient set, a subset of
    // both permitted and inheritable, stays).
    let at = b.data(cap_struct(inh, prm, eff).as_bytes());
    b.push("capset", libc::SYS_capset, [at, at + 8, 0, 0, 0, 0]);
    Ok(checks)
}

/// The last step of a task's restore, after the injection session: the
/// signal mask, the registers (adjusted to resume or restart an interrupted
/// system call) and the extended state.
pub fn restore_registers(pid: i32, c: &TaskCoreView<'_>) -> Result<(), ObjectError> {
    let words = c.rec.regs.map(|w| w.get());
    let saved = regs_from_words(&words);
    let resume = regs::regs_for_resume(&saved);
    regs::set_sigmask(pid, c.rec.sigmask.get()).map_err(regs_err(pid))?;
    regs::set_regs(pid, &resume).map_err(regs_err(pid))?;
    if !c.xstate.is_empty() {
        regs::set_xstate(pid, c.xstate).map_err(regs_err(pid))?;
    }
    Ok(())
}
