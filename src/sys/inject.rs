//! System-call injection into a ptrace-stopped thread: the only way to read
//! state that has no reader from outside (signal handlers, interval timers,
//! the alternate signal stack, the program break), and later to rebuild an
//! address space from inside.
//!
//! The thread must be in a ptrace stop of the calling thread, normally the
//! PTRACE_EVENT_STOP of a PTRACE_SEIZE + PTRACE_INTERRUPT, possibly inside a
//! blocking system call that the stop interrupted (its registers then show
//! the call and a restart code, see [`crate::sys::regs::SyscallState`]).
//!
//! How one call is made ([`Injector::syscall`]): the saved registers are
//! reloaded with `rip` on a `syscall` instruction found in the thread's
//! [vdso], `rax` = the call number, the arguments in rdi, rsi, rdx, r10, r8,
//! r9, and `orig_rax` = -1 so that the kernel's restart logic, which runs as
//! the thread leaves its stop, leaves these registers alone. PTRACE_SYSCALL
//! runs the thread to the syscall-entry stop and again to the syscall-exit
//! stop, where `rax` holds the result. Syscall stops are told from real
//! SIGTRAPs by their siginfo (`si_code` SIGTRAP, or SIGTRAP|0x80 with
//! PTRACE_O_TRACESYSGOOD) and entry from exit by PTRACE_GETEVENTMSG, so the
//! tracer's options are neither needed nor changed.
//!
//! Signals: a signal that reaches the thread while calls are injected stops
//! it in a signal-delivery stop before its handler could run on the injected
//! registers. The injector suppresses it, keeps its siginfo, and
//! [`Injector::finish`] queues it again on the thread (an injected
//! rt_tgsigqueueinfo(2) on itself, which may keep any `si_code`), so it is
//! delivered, with its original siginfo, once the thread is let go. The same
//! holds for the signal of a signal-delivery stop the thread was in when the
//! injector took it. A signal given to PTRACE_DETACH could not do this: the
//! kernel ignores it when the thread is in a PTRACE_EVENT_STOP.
//!
//! Leaving: [`Injector::finish`] unmaps the scratch memory, restores the
//! saved registers and puts the thread back into a PTRACE_EVENT_STOP (a
//! PTRACE_INTERRUPT, then PTRACE_CONT out of the last syscall-exit stop), the
//! same kind of stop it was taken in. From there the kernel applies its own
//! restart rule when the thread is detached, exactly as if nothing had been
//! injected: a read() continues, a nanosleep() continues through
//! restart_syscall(2) with the time it had left. (Left in a syscall-exit
//! stop with an -ERESTART… code in `rax`, a thread resumed by PTRACE_CONT
//! would see that code as its result.)
//!
//! Not readable this way: the clear_child_tid address (set_tid_address(2)
//! only sets it, and returns the caller's tid, not the old address).
//!
//! What an injection leaves behind: nothing in the registers, the mappings,
//! the signal state or the sigmask; the kernel's counters do move (context
//! switches, VmPeak / VmHWM after the scratch mmap, the mm's sequence count).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::procfs;
use crate::sys::ptrace::{self, Stop};
use crate::sys::regs::{self, RegsError, SyscallState};

/// How long the thread may take to reach each stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest [vdso] searched for a `syscall` instruction.
const VDSO_MAX: u64 = 1 << 20;
/// PTRACE_EVENTMSG_SYSCALL_ENTRY / _EXIT (`include/uapi/linux/ptrace.h`).
const EVENTMSG_SYSCALL_ENTRY: libc::c_ulong = 1;
const EVENTMSG_SYSCALL_EXIT: libc::c_ulong = 2;
/// The user code segment of a 64-bit task (`__USER_CS`).
const USER_CS_64: u64 = 0x33;
/// Size of the kernel's `struct sigaction` on x86_64 (handler, flags,
/// restorer, mask: 8 bytes each).
pub const KERNEL_SIGACTION_SIZE: usize = 32;

/// Injection failed: on which thread, at which step.
#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error(transparent)]
    Regs(#[from] RegsError),
    #[error("task {tid}: {step}: {source}")]
    Ptrace {
        tid: i32,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("task {tid}: {step}: {}: {source}", path.display())]
    Proc {
        tid: i32,
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("task {tid}: {step}: {len} bytes at {addr:#x}: {source}")]
    Mem {
        tid: i32,
        step: &'static str,
        addr: u64,
        len: usize,
        #[source]
        source: io::Error,
    },
    #[error("task {tid}: no `syscall` instruction found (no executable [vdso], not stopped in a system call)")]
    NoSyscallInsn { tid: i32 },
    #[error("task {tid}: not a 64-bit task (cs {cs:#x}); only x86_64 code can be injected")]
    NotX86_64 { tid: i32, cs: u64 },
    #[error("task {tid}: {step}: no stop within {secs} s")]
    Timeout {
        tid: i32,
        step: &'static str,
        secs: u64,
    },
    #[error("task {tid} exited during {step} ({how})")]
    Exited {
        tid: i32,
        step: &'static str,
        how: String,
    },
    #[error("task {tid}: {step}: unexpected stop {stop:?}")]
    UnexpectedStop {
        tid: i32,
        step: &'static str,
        stop: Stop,
    },
    #[error("task {tid}: injected {call} failed: {}", io::Error::from_raw_os_error(*errno))]
    Syscall {
        tid: i32,
        call: &'static str,
        errno: i32,
    },
    #[error("task {tid}: a batch of {calls} calls with {data} bytes of data does not fit its {room}-byte area")]
    BatchTooLarge {
        tid: i32,
        calls: usize,
        data: usize,
        room: usize,
    },
}

/// The raw `siginfo_t` of a signal the injector took over (128 bytes).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct RawSiginfo([u8; 128]);

impl RawSiginfo {
    fn int_at(&self, off: usize) -> i32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[off..off + 4]);
        i32::from_ne_bytes(b)
    }
    fn signo(&self) -> i32 {
        self.int_at(0)
    }
    fn code(&self) -> i32 {
        self.int_at(8)
    }
}

/// The kernel's `struct sigaction` as rt_sigaction(2) returns it on x86_64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSigaction {
    /// SIG_DFL (0), SIG_IGN (1) or the handler's address.
    pub handler: u64,
    /// SA_* flags (SA_RESTORER included).
    pub flags: u64,
    pub restorer: u64,
    /// Bit `n - 1` blocks signal `n` while the handler runs.
    pub mask: u64,
}

impl KernelSigaction {
    /// Splits the raw bytes [`Injector::get_sigaction`] returns.
    pub fn from_raw(raw: &[u8; KERNEL_SIGACTION_SIZE]) -> KernelSigaction {
        let w = words::<4>(raw);
        KernelSigaction {
            handler: w[0],
            flags: w[1],
            restorer: w[2],
            mask: w[3],
        }
    }
}

/// The alternate signal stack (`stack_t`) as sigaltstack(2) reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    /// SS_DISABLE, SS_ONSTACK, SS_AUTODISARM.
    pub flags: i32,
    pub size: u64,
}

fn words<const N: usize>(b: &[u8]) -> [u64; N] {
    let mut out = [0u64; N];
    for (i, w) in out.iter_mut().enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i * 8..i * 8 + 8]);
        *w = u64::from_ne_bytes(x);
    }
    out
}

/// Protection of memory that holds a batch: its code runs there, its data
/// is read and written there.
pub const BATCH_PROT: u64 = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;

/// The batch runner, x86_64 machine code placed at the start of a batch's
/// area. With `rbx` = the call table and `r12` = the number of entries, each
/// entry 8 words (nr, six arguments, result):
///
/// ```text
///  0: test r12, r12          4d 85 e4
///  3: jz   done              74 32
///  5: mov  rax, [rbx]        48 8b 03
///  8: mov  rdi, [rbx+8]      48 8b 7b 08
/// 12: mov  rsi, [rbx+16]     48 8b 73 10
/// 16: mov  rdx, [rbx+24]     48 8b 53 18
/// 20: mov  r10, [rbx+32]     4c 8b 53 20
/// 24: mov  r8,  [rbx+40]     4c 8b 43 28
/// 28: mov  r9,  [rbx+48]     4c 8b 4b 30
/// 32: syscall                0f 05
/// 34: mov  [rbx+56], rax     48 89 43 38
/// 38: cmp  rax, -4095        48 3d 01 f0 ff ff
/// 44: jae  done              73 09        (an -errno result stops the run)
/// 46: add  rbx, 64           48 83 c3 40
/// 50: dec  r12               49 ff cc
/// 53: jmp  0                 eb c9
/// 55: done: int3             cc
/// ```
///
/// It needs no stack; `rbx` and `r12` survive `syscall` (which clobbers only
/// `rcx` and `r11`). At the trap, `rbx` points at the entry that failed (or
/// the end of the table) and `r12` counts the entries not run.
const BATCH_CODE: [u8; 56] = [
    0x4d, 0x85, 0xe4, 0x74, 0x32, 0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10,
    0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20, 0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30,
    0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, 0x73, 0x09, 0x48, 0x83,
    0xc3, 0x40, 0x49, 0xff, 0xcc, 0xeb, 0xc9, 0xcc,
];
/// Room for [`BATCH_CODE`] at the start of an area; data follows.
const BATCH_CODE_ROOM: usize = 64;
/// Bytes of one call-table entry.
const BATCH_ENTRY: usize = 64;

/// System calls to run in a thread in one go ([`Injector::run`]): one
/// resume and one stop for the whole list instead of two stops per call.
/// The calls run in order and the first that returns -errno ends the run.
/// Their in-memory arguments are placed with [`Batch::data`] and
/// [`Batch::buffer`], which give the address the thread sees.
#[derive(Debug)]
pub struct Batch {
    area: u64,
    room: usize,
    data: Vec<u8>,
    calls: Vec<(&'static str, i64, [u64; 6])>,
}

impl Batch {
    /// An empty batch for the executable, writable area of `room` bytes at
    /// `area` in the thread ([`BATCH_PROT`]; the [`Injector::scratch`], or one
    /// of the caller's).
    pub fn new(area: u64, room: usize) -> Batch {
        Batch {
            area,
            room,
            data: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// Places `bytes` (8-aligned) in the area; returns their address there.
    pub fn data(&mut self, bytes: &[u8]) -> u64 {
        let at = self.data.len().next_multiple_of(8);
        self.data.resize(at, 0);
        self.data.extend_from_slice(bytes);
        self.area + (BATCH_CODE_ROOM + at) as u64
    }

    /// Reserves `len` zeroed bytes (8-aligned) for a call to write into;
    /// read them from the [`BatchResult`].
    pub fn buffer(&mut self, len: usize) -> u64 {
        self.data(&vec![0u8; len])
    }

    /// Adds a call; returns its index in the results.
    pub fn push(&mut self, name: &'static str, nr: i64, args: [u64; 6]) -> usize {
        self.calls.push((name, nr, args));
        self.calls.len() - 1
    }

    /// Number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// No call yet.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// A [`Batch`] whose last piece the thread is running
/// ([`Injector::start`]); [`Injector::complete`] takes it.
#[derive(Debug)]
#[must_use = "a started batch must be completed"]
pub struct Started {
    batch: Batch,
    table_off: usize,
    /// Entries of the piece being run.
    last: usize,
    /// Results of the pieces already run.
    rets: Vec<u64>,
}

fn batch_failure(tid: i32, batch: &Batch, i: usize, ret: u64) -> InjectError {
    InjectError::Syscall {
        tid,
        call: batch.calls.get(i).map_or("a batched call", |c| c.0),
        errno: (ret as i64).unsigned_abs() as i32,
    }
}

/// What a [`Batch`] left: each call's result and the data area as the
/// calls left it.
#[derive(Debug)]
pub struct BatchResult {
    base: u64,
    data: Vec<u8>,
    rets: Vec<u64>,
}

impl BatchResult {
    /// The result of call `i` (never an -errno: a failure ends the run with
    /// an error).
    pub fn ret(&self, i: usize) -> u64 {
        self.rets.get(i).copied().unwrap_or(0)
    }

    /// `len` bytes at `addr` of the data area (as given by [`Batch::data`]
    /// or [`Batch::buffer`]); empty when outside it.
    pub fn bytes(&self, addr: u64, len: usize) -> &[u8] {
        let off = addr.wrapping_sub(self.base) as usize;
        self.data.get(off..off.saturating_add(len)).unwrap_or(&[])
    }
}

/// An injection session on one ptrace-stopped thread. See the module
/// documentation for the protocol. Use it from the thread that attached.
pub struct Injector {
    tid: i32,
    saved: libc::user_regs_struct,
    syscall_ip: u64,
    scratch: Option<(u64, usize)>,
    /// /proc/TID/mem, opened the first time a read or write needs it
    /// (`process_vm_readv`/`writev` do the rest).
    mem: std::cell::OnceCell<File>,
    /// Signals taken over, in arrival order, with their siginfo.
    pending: Vec<RawSiginfo>,
    /// The thread has been resumed (a call was injected).
    resumed: bool,
    done: bool,
}

impl std::fmt::Debug for Injector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("tid", &self.tid)
            .field("syscall_ip", &format_args!("{:#x}", self.syscall_ip))
            .field("scratch", &self.scratch)
            .field("pending", &self.pending_signals())
            .finish()
    }
}

fn ptrace_err(tid: i32, step: &'static str) -> impl FnOnce(io::Error) -> InjectError {
    move |source| InjectError::Ptrace { tid, step, source }
}

fn check(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// PTRACE_SYSCALL (ptrace(2)): resume until the next syscall entry or exit,
/// delivering `sig` (0 for none).
fn ptrace_syscall(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SYSCALL takes the signal in data; no memory is passed.
    check(unsafe { libc::ptrace(libc::PTRACE_SYSCALL, tid, 0usize, sig as usize) })
}

/// Waits (bounded by [`STOP_TIMEOUT`], [`ptrace::wait_until`]) for the next
/// stop of `tid`; its end is an error naming `step`.
fn wait_stop_of(tid: i32, step: &'static str) -> Result<Stop, InjectError> {
    match ptrace::wait_until(tid, Instant::now() + STOP_TIMEOUT) {
        Ok(Some(Stop::Exited(code))) => Err(InjectError::Exited {
            tid,
            step,
            how: format!("exit status {code}"),
        }),
        Ok(Some(Stop::Killed(sig))) => Err(InjectError::Exited {
            tid,
            step,
            how: format!("killed by signal {sig}"),
        }),
        Ok(Some(stop)) => Ok(stop),
        Ok(None) => Err(InjectError::Timeout {
            tid,
            step,
            secs: STOP_TIMEOUT.as_secs(),
        }),
        Err(source) => Err(InjectError::Ptrace { tid, step, source }),
    }
}

/// PTRACE_SINGLESTEP (ptrace(2)): resume for one instruction (over a
/// `syscall` instruction: the whole call, then a SIGTRAP stop).
fn ptrace_singlestep(tid: i32) -> io::Result<()> {
    // SAFETY: PTRACE_SINGLESTEP takes the signal in data (0); no memory is
    // passed.
    check(unsafe { libc::ptrace(libc::PTRACE_SINGLESTEP, tid, 0usize, 0usize) })
}

/// PTRACE_CONT (ptrace(2)), delivering `sig` (0 for none).
fn ptrace_cont(tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: PTRACE_CONT takes the signal in data; no memory is passed.
    check(unsafe { libc::ptrace(libc::PTRACE_CONT, tid, 0usize, sig as usize) })
}

/// PTRACE_GETSIGINFO (ptrace(2)): the siginfo of the current stop.
fn ptrace_getsiginfo(tid: i32) -> io::Result<RawSiginfo> {
    let mut info = RawSiginfo([0; 128]);
    // SAFETY: PTRACE_GETSIGINFO writes one siginfo_t (128 bytes) to data,
    // which points to our 128-byte, 8-aligned buffer.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETSIGINFO,
            tid,
            0usize,
            &mut info as *mut RawSiginfo,
        )
    })?;
    Ok(info)
}

/// PTRACE_GETEVENTMSG (ptrace(2)): for a syscall stop, 1 at entry, 2 at
/// exit (since Linux 5.3).
fn ptrace_geteventmsg(tid: i32) -> io::Result<libc::c_ulong> {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one unsigned long to data, which
    // points to ours.
    check(unsafe {
        libc::ptrace(
            libc::PTRACE_GETEVENTMSG,
            tid,
            0usize,
            &mut msg as *mut libc::c_ulong,
        )
    })?;
    Ok(msg)
}

/// Parses a lower-case hexadecimal number of /proc/PID/maps.
fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some((acc << 4) | d as u64)
    })
}

/// The range of the executable `[vdso]` mapping in a /proc/PID/maps text.
fn vdso_range(maps: &[u8]) -> Option<(u64, u64)> {
    maps.split(|&b| b == b'\n').find_map(|line| {
        if !procfs::trim(line).ends_with(b"[vdso]") {
            return None;
        }
        let mut w = procfs::words(line);
        let range = w.next()?;
        let perms = w.next()?;
        if perms.get(2) != Some(&b'x') {
            return None;
        }
        let dash = range.iter().position(|&b| b == b'-')?;
        let start = parse_hex(&range[..dash])?;
        let end = parse_hex(&range[dash + 1..])?;
        (end > start).then_some((start, end))
    })
}

/// The address of a `syscall` instruction in thread `tid`'s executable
/// [vdso], read through `mem` (its /proc/TID/mem); `None` without a vdso or
/// without such an instruction in it.
fn vdso_syscall(tid: i32, mem: &File) -> Result<Option<u64>, InjectError> {
    let path = procfs::pid_path(tid, "maps");
    let maps = procfs::read(&path).map_err(|source| InjectError::Proc {
        tid,
        step: "find [vdso]",
        path,
        source,
    })?;
    let Some((start, end)) = vdso_range(&maps) else {
        return Ok(None);
    };
    let len = (end - start).min(VDSO_MAX) as usize;
    let mut code = vec![0u8; len];
    mem.read_exact_at(&mut code, start)
        .map_err(|source| InjectError::Mem {
            tid,
            step: "read [vdso]",
            addr: start,
            len,
            source,
        })?;
    Ok(syscall_insn(&code, start))
}

/// The address of the first `syscall` instruction (0f 05) in `code`, which
/// starts at address `start`.
fn syscall_insn(code: &[u8], start: u64) -> Option<u64> {
    code.windows(2)
        .position(|w| w == [0x0f, 0x05])
        .map(|off| start + off as u64)
}

/// The outcome of waiting for the thread to run one injected call.
enum Phase {
    Entry,
    Exit,
}

impl Injector {
    /// Starts a session on `tid`, which must be in a ptrace stop of the
    /// calling thread: saves its registers, opens its memory and finds a
    /// `syscall` instruction (in its [vdso], or the one it is stopped in).
    pub fn new(tid: i32) -> Result<Injector, InjectError> {
        Injector::open(tid, None)
    }

    /// Like [`Injector::new`], with the `syscall` instruction at `ip`
    /// already known (a thread forked from the caller has the caller's
    /// [vdso] at the same place): the thread's maps are not read.
    pub fn with_syscall_ip(tid: i32, ip: u64) -> Result<Injector, InjectError> {
        Injector::open(tid, Some(ip))
    }

    /// [`Injector::with_syscall_ip`] on a thread stopped by a trap of the
    /// caller's own making (a batch's int3, a last call's single step): the
    /// SIGTRAP it is stopped with is dropped, not taken over and queued
    /// again at the end of the session.
    pub fn after_trap(tid: i32, ip: u64) -> Result<Injector, InjectError> {
        let mut inj = Injector::open(tid, Some(ip))?;
        inj.pending.retain(|i| i.signo() != libc::SIGTRAP);
        Ok(inj)
    }

    fn open(tid: i32, ip: Option<u64>) -> Result<Injector, InjectError> {
        let saved = regs::get_regs(tid)?;
        if saved.cs != USER_CS_64 {
            return Err(InjectError::NotX86_64 { tid, cs: saved.cs });
        }
        let mut inj = Injector {
            tid,
            saved,
            syscall_ip: 0,
            scratch: None,
            mem: std::cell::OnceCell::new(),
            pending: Vec::new(),
            resumed: false,
            done: false,
        };
        inj.syscall_ip = match ip {
            Some(ip) => ip,
            None => inj.find_syscall_insn()?,
        };
        // A thread taken in a signal-delivery stop would lose its signal
        // when it is resumed for the first call: take it over.
        let info = ptrace_getsiginfo(tid).map_err(ptrace_err(tid, "PTRACE_GETSIGINFO"))?;
        let code = info.code();
        let is_event = code >> 8 != 0;
        let is_syscall = code == libc::SIGTRAP || code == (libc::SIGTRAP | 0x80);
        if !is_event && !is_syscall && info.signo() > 0 {
            log::debug!(
                "task {tid}: taken in a signal-delivery stop of signal {}",
                info.signo()
            );
            inj.pending.push(info);
        }
        log::debug!(
            "task {tid}: injecting through syscall at {:#x}, stopped {:?}",
            inj.syscall_ip,
            SyscallState::of(&saved)
        );
        Ok(inj)
    }

    /// The thread this session works on.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// The registers saved when the session started (restored by `finish`).
    pub fn saved_regs(&self) -> &libc::user_regs_struct {
        &self.saved
    }

    /// Uses the `syscall` instruction at `ip` from now on (after the
    /// mapping that held the old one moved, e.g. by mremap of [vdso]).
    pub fn set_syscall_ip(&mut self, ip: u64) {
        self.syscall_ip = ip;
    }

    /// The address of the `syscall` instruction the calls go through.
    pub fn syscall_ip(&self) -> u64 {
        self.syscall_ip
    }

    /// Signals the injector took over (arrived while calls were injected,
    /// or the one of the signal-delivery stop the thread was in): `finish`
    /// queues them on the thread again, so the caller must NOT also deliver
    /// them at PTRACE_DETACH.
    pub fn pending_signals(&self) -> Vec<i32> {
        self.pending.iter().map(RawSiginfo::signo).collect()
    }

    /// The address of a `syscall` instruction in the calling process's own
    /// [vdso] (its forks have it at the same place), whose range (`start`,
    /// `end`) the caller took from kstate's maps: its code is read with
    /// process_vm_readv. No vdso (`None`), or none of those instructions in
    /// it: [`InjectError::NoSyscallInsn`].
    pub fn own_syscall_ip(vdso: Option<(u64, u64)>) -> Result<u64, InjectError> {
        let tid = std::process::id() as i32;
        let found = vdso.and_then(|(start, end)| {
            let len = end.saturating_sub(start).min(VDSO_MAX) as usize;
            let mut code = vec![0u8; len];
            let n = super::vm::process_vm_readv(tid, &mut code, &[(start, len)]).ok()?;
            syscall_insn(&code[..n.min(len)], start)
        });
        found.ok_or(InjectError::NoSyscallInsn { tid })
    }

    /// /proc/TID/mem, opened on first use.
    fn mem(&self) -> Result<&File, InjectError> {
        if let Some(f) = self.mem.get() {
            return Ok(f);
        }
        let tid = self.tid;
        let path = procfs::pid_path(tid, "mem");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|source| InjectError::Proc {
                tid,
                step: "open memory",
                path,
                source,
            })?;
        Ok(self.mem.get_or_init(|| f))
    }

    fn find_syscall_insn(&self) -> Result<u64, InjectError> {
        let tid = self.tid;
        if let Some(ip) = vdso_syscall(tid, self.mem()?)? {
            return Ok(ip);
        }
        // No vdso (vdso=0): the instruction the thread is stopped after.
        if SyscallState::of(&self.saved).in_syscall() {
            let ip = self.saved.rip.wrapping_sub(2);
            let mut insn = [0u8; 2];
            if self.read_mem(ip, &mut insn).is_ok() && insn == [0x0f, 0x05] {
                return Ok(ip);
            }
        }
        Err(InjectError::NoSyscallInsn { tid })
    }

    /// Reads the thread's memory at `addr`: process_vm_readv(2), then
    /// /proc/TID/mem for what that could not read (pages the thread cannot
    /// read either).
    pub fn read_mem(&self, addr: u64, buf: &mut [u8]) -> Result<(), InjectError> {
        let len = buf.len();
        let done = super::vm::process_vm_readv(self.tid, buf, &[(addr, len)])
            .unwrap_or(0)
            .min(len);
        if done == len {
            return Ok(());
        }
        self.mem()?
            .read_exact_at(&mut buf[done..], addr + done as u64)
            .map_err(|source| InjectError::Mem {
                tid: self.tid,
                step: "read memory",
                addr,
                len: buf.len(),
                source,
            })
    }

    /// Writes the thread's memory at `addr`: process_vm_writev(2), then
    /// /proc/TID/mem for what that could not write (read-only pages, which
    /// only that writes).
    pub fn write_mem(&self, addr: u64, buf: &[u8]) -> Result<(), InjectError> {
        let done = super::vm::process_vm_writev(self.tid, addr, buf)
            .unwrap_or(0)
            .min(buf.len());
        if done == buf.len() {
            return Ok(());
        }
        self.mem()?
            .write_all_at(&buf[done..], addr + done as u64)
            .map_err(|source| InjectError::Mem {
                tid: self.tid,
                step: "write memory",
                addr,
                len: buf.len(),
                source,
            })
    }

    /// Waits (bounded by [`STOP_TIMEOUT`], [`ptrace::wait_until`]) for the
    /// next stop.
    fn wait_stop(&self, step: &'static str) -> Result<Stop, InjectError> {
        wait_stop_of(self.tid, step)
    }

    /// Waits for the next syscall stop of a thread resumed by
    /// PTRACE_SYSCALL, taking over any signal that stops it on the way.
    fn wait_syscall_stop(&mut self, step: &'static str) -> Result<Phase, InjectError> {
        let tid = self.tid;
        loop {
            match self.wait_stop(step)? {
                Stop::Signal(sig) if sig & 0x7f == libc::SIGTRAP => {
                    let info =
                        ptrace_getsiginfo(tid).map_err(ptrace_err(tid, "PTRACE_GETSIGINFO"))?;
                    let code = info.code();
                    if code == libc::SIGTRAP || code == (libc::SIGTRAP | 0x80) {
                        let msg = ptrace_geteventmsg(tid)
                            .map_err(ptrace_err(tid, "PTRACE_GETEVENTMSG"))?;
                        return match msg {
                            EVENTMSG_SYSCALL_ENTRY => Ok(Phase::Entry),
                            EVENTMSG_SYSCALL_EXIT => Ok(Phase::Exit),
                            _ => Err(InjectError::UnexpectedStop {
                                tid,
                                step,
                                stop: Stop::Signal(sig),
                            }),
                        };
                    }
                    self.take_signal(info);
                }
                Stop::Signal(_) => {
                    let info =
                        ptrace_getsiginfo(tid).map_err(ptrace_err(tid, "PTRACE_GETSIGINFO"))?;
                    self.take_signal(info);
                }
                // A group stop or another trap: let it go on.
                Stop::Event { sig, event } => {
                    log::debug!("task {tid}: {step}: event stop {event} (signal {sig}), resuming");
                }
                stop @ (Stop::Exited(_) | Stop::Killed(_)) => {
                    return Err(InjectError::UnexpectedStop { tid, step, stop })
                }
            }
            ptrace_syscall(tid, 0).map_err(ptrace_err(tid, step))?;
        }
    }

    fn take_signal(&mut self, info: RawSiginfo) {
        log::debug!(
            "task {}: signal {} arrived during injection, held back",
            self.tid,
            info.signo()
        );
        self.pending.push(info);
    }

    /// Runs system call `nr` with `args` in the thread and returns its raw
    /// result (-errno on failure). The thread ends in the call's
    /// syscall-exit stop.
    pub fn syscall(&mut self, nr: i64, args: [u64; 6]) -> Result<i64, InjectError> {
        self.start_call(nr, args)?;
        let ret = self.finish_call()?;
        log::debug!("task {}: injected syscall {nr} returned {ret}", self.tid);
        Ok(ret)
    }

    /// The saved registers, set for system call `nr` with `args` at the
    /// `syscall` instruction injections go through.
    fn call_regs(&self, nr: i64, args: [u64; 6]) -> libc::user_regs_struct {
        let mut r = self.saved;
        r.rip = self.syscall_ip;
        r.rax = nr as u64;
        r.orig_rax = u64::MAX;
        r.rdi = args[0];
        r.rsi = args[1];
        r.rdx = args[2];
        r.r10 = args[3];
        r.r8 = args[4];
        r.r9 = args[5];
        r
    }

    /// The first half of [`Injector::call`]: the thread is resumed towards
    /// the call, and left running, so that the caller can start calls in
    /// other threads meanwhile. Finish with [`Injector::complete_call`].
    pub fn start_call(&mut self, nr: i64, args: [u64; 6]) -> Result<(), InjectError> {
        let tid = self.tid;
        let r = self.call_regs(nr, args);
        self.resumed = true;
        regs::set_regs(tid, &r)?;
        ptrace_syscall(tid, 0).map_err(ptrace_err(tid, "run to injected syscall entry"))
    }

    /// Waits for a started call's entry stop, resumes it to its exit stop
    /// and returns its raw result (-errno on failure).
    fn finish_call(&mut self) -> Result<i64, InjectError> {
        let tid = self.tid;
        for (step, want_exit) in [
            ("run to injected syscall entry", false),
            ("run to injected syscall exit", true),
        ] {
            if want_exit {
                ptrace_syscall(tid, 0).map_err(ptrace_err(tid, step))?;
            }
            match (self.wait_syscall_stop(step)?, want_exit) {
                (Phase::Entry, false) | (Phase::Exit, true) => {}
                _ => {
                    return Err(InjectError::UnexpectedStop {
                        tid,
                        step,
                        stop: Stop::Signal(libc::SIGTRAP),
                    })
                }
            }
        }
        Ok(regs::get_regs(tid)?.rax as i64)
    }

    /// The second half of [`Injector::call`] for a call started with
    /// [`Injector::start_call`]; `call` names it in errors.
    pub fn complete_call(&mut self, call: &'static str) -> Result<u64, InjectError> {
        let ret = self.finish_call()?;
        if (-4095..0).contains(&ret) {
            return Err(InjectError::Syscall {
                tid: self.tid,
                call,
                errno: (-ret) as i32,
            });
        }
        Ok(ret as u64)
    }

    /// Like [`Injector::syscall`], with a result in -4095..-1 (-errno)
    /// turned into [`InjectError::Syscall`] naming `call`.
    pub fn call(
        &mut self,
        call: &'static str,
        nr: i64,
        args: [u64; 6],
    ) -> Result<u64, InjectError> {
        let r = self.syscall(nr, args)?;
        if (-4095..0).contains(&r) {
            return Err(InjectError::Syscall {
                tid: self.tid,
                call,
                errno: (-r) as i32,
            });
        }
        Ok(r as u64)
    }

    /// Runs `batch` in the thread: writes the runner, data and call table
    /// into the batch's area in one write, resumes the thread there with
    /// PTRACE_CONT and waits for the runner's final trap (signals arriving
    /// meanwhile are taken over, as for single calls). A table too long for
    /// the room left after the data runs in pieces, one resume each. Fails
    /// with [`InjectError::Syscall`] naming the first call that failed; the
    /// calls before it took effect.
    pub fn run(&mut self, batch: Batch) -> Result<BatchResult, InjectError> {
        let started = self.start(batch)?;
        self.complete(started)
    }

    /// The first half of [`Injector::run`]: every piece but the last is
    /// run, the last is started, and the thread is left running it, so that
    /// the caller can start batches in other threads meanwhile. Finish with
    /// [`Injector::complete`] before anything else is done with this thread.
    pub fn start(&mut self, batch: Batch) -> Result<Started, InjectError> {
        let tid = self.tid;
        let n = batch.calls.len();
        let table_off = BATCH_CODE_ROOM + batch.data.len().next_multiple_of(8);
        let per_run = batch.room.saturating_sub(table_off) / BATCH_ENTRY;
        if per_run == 0 && n > 0 {
            return Err(InjectError::BatchTooLarge {
                tid,
                calls: n,
                data: batch.data.len(),
                room: batch.room,
            });
        }
        let mut image = vec![0u8; table_off];
        image[..BATCH_CODE.len()].copy_from_slice(&BATCH_CODE);
        image[BATCH_CODE_ROOM..BATCH_CODE_ROOM + batch.data.len()].copy_from_slice(&batch.data);
        let mut rets = Vec::with_capacity(n);
        let chunks: Vec<&[(&'static str, i64, [u64; 6])]> =
            batch.calls.chunks(per_run.max(1)).collect();
        let mut last = 0;
        for (k, chunk) in chunks.iter().enumerate() {
            image.truncate(table_off);
            for (_, nr, args) in chunk.iter() {
                image.extend_from_slice(&nr.to_ne_bytes());
                for a in args {
                    image.extend_from_slice(&a.to_ne_bytes());
                }
                image.extend_from_slice(&[0u8; 8]);
            }
            // The runner and data go once; later pieces write their table.
            let from = if k == 0 { 0 } else { table_off };
            self.write_mem(batch.area + from as u64, &image[from..])?;
            self.resume_table(batch.area, table_off, chunk.len())?;
            last = chunk.len();
            if k + 1 == chunks.len() {
                break;
            }
            let (piece, failed) = self.finish_table(batch.area, table_off, last)?;
            if let Some(i) = failed {
                return Err(batch_failure(tid, &batch, k * per_run + i, piece[i]));
            }
            rets.extend(piece);
        }
        Ok(Started {
            batch,
            table_off,
            last,
            rets,
        })
    }

    /// The second half of [`Injector::run`]: waits for the last piece of a
    /// started batch and returns the results.
    pub fn complete(&mut self, started: Started) -> Result<BatchResult, InjectError> {
        let tid = self.tid;
        let Started {
            batch,
            table_off,
            last,
            mut rets,
        } = started;
        let base = batch.area + BATCH_CODE_ROOM as u64;
        let n = batch.calls.len();
        if n == 0 {
            return Ok(BatchResult {
                base,
                data: batch.data,
                rets,
            });
        }
        let (piece, failed) = self.finish_table(batch.area, table_off, last)?;
        if let Some(i) = failed {
            return Err(batch_failure(tid, &batch, rets.len() + i, piece[i]));
        }
        rets.extend(piece);
        let mut data = vec![0u8; batch.data.len()];
        self.read_mem(base, &mut data)?;
        log::debug!("task {tid}: injected batch of {n} calls");
        Ok(BatchResult { base, data, rets })
    }

    /// Resumes the thread in the runner on the `n`-entry table at
    /// `table_off` of `area`.
    fn resume_table(&mut self, area: u64, table_off: usize, n: usize) -> Result<(), InjectError> {
        let tid = self.tid;
        let mut r = self.saved;
        r.rip = area;
        r.rbx = area + table_off as u64;
        r.r12 = n as u64;
        r.orig_rax = u64::MAX;
        self.resumed = true;
        regs::set_regs(tid, &r)?;
        ptrace_cont(tid, 0).map_err(ptrace_err(tid, "run an injected batch"))
    }

    /// Waits for the runner's trap; returns the entries' results and the
    /// index of the one that failed, if any.
    fn finish_table(
        &mut self,
        area: u64,
        table_off: usize,
        n: usize,
    ) -> Result<(Vec<u64>, Option<usize>), InjectError> {
        let tid = self.tid;
        let table = area + table_off as u64;
        let trap_ip = area + BATCH_CODE.len() as u64;
        let step = "run an injected batch";
        let after = loop {
            match self.wait_stop(step)? {
                Stop::Signal(sig) => {
                    if sig & 0x7f == libc::SIGTRAP {
                        let now = regs::get_regs(tid)?;
                        if now.rip == trap_ip {
                            break now;
                        }
                    }
                    let info =
                        ptrace_getsiginfo(tid).map_err(ptrace_err(tid, "PTRACE_GETSIGINFO"))?;
                    self.take_signal(info);
                }
                Stop::Event { sig, event } => {
                    log::debug!("task {tid}: {step}: event stop {event} (signal {sig}), resuming");
                }
                stop @ (Stop::Exited(_) | Stop::Killed(_)) => {
                    return Err(InjectError::UnexpectedStop { tid, step, stop })
                }
            }
            ptrace_cont(tid, 0).map_err(ptrace_err(tid, step))?;
        };
        let mut tbl = vec![0u8; n * BATCH_ENTRY];
        self.read_mem(table, &mut tbl)?;
        let rets: Vec<u64> = tbl
            .chunks_exact(BATCH_ENTRY)
            .map(|e| words::<8>(e)[7])
            .collect();
        let failed = (after.r12 != 0)
            .then(|| (after.rbx.wrapping_sub(table) / BATCH_ENTRY as u64) as usize)
            .map(|i| i.min(n.saturating_sub(1)));
        Ok((rets, failed))
    }

    /// An anonymous mapping of at least `len` bytes in the thread, made by
    /// an injected mmap(2) the first time and reused (made again, larger, if
    /// `len` grows); readable, writable and executable, so that it can hold
    /// a [`Batch`] as well as arguments. `finish` unmaps it.
    pub fn scratch(&mut self, len: usize) -> Result<u64, InjectError> {
        let page = crate::sys::page_size();
        let len = len.max(1).div_ceil(page) * page;
        if let Some((addr, have)) = self.scratch {
            if have >= len {
                return Ok(addr);
            }
            self.unmap_scratch()?;
        }
        let addr = self.call(
            "mmap",
            libc::SYS_mmap,
            [
                0,
                len as u64,
                BATCH_PROT,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64,
                u64::MAX,
                0,
            ],
        )?;
        self.scratch = Some((addr, len));
        Ok(addr)
    }

    fn unmap_scratch(&mut self) -> Result<(), InjectError> {
        if let Some((addr, len)) = self.scratch {
            self.call("munmap", libc::SYS_munmap, [addr, len as u64, 0, 0, 0, 0])?;
            self.scratch = None;
        }
        Ok(())
    }

    /// The disposition of `sig` in the kernel's layout (see
    /// [`KernelSigaction`]): rt_sigaction(sig, NULL, scratch, 8).
    pub fn get_sigaction(&mut self, sig: i32) -> Result<[u8; KERNEL_SIGACTION_SIZE], InjectError> {
        let buf = self.scratch(KERNEL_SIGACTION_SIZE)?;
        self.call(
            "rt_sigaction",
            libc::SYS_rt_sigaction,
            [sig as u64, 0, buf, 8, 0, 0],
        )?;
        let mut raw = [0u8; KERNEL_SIGACTION_SIZE];
        self.read_mem(buf, &mut raw)?;
        Ok(raw)
    }

    /// Interval timer `which` (ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF):
    /// getitimer(which, scratch).
    pub fn get_itimer(&mut self, which: i32) -> Result<libc::itimerval, InjectError> {
        let buf = self.scratch(32)?;
        self.call(
            "getitimer",
            libc::SYS_getitimer,
            [which as u64, buf, 0, 0, 0, 0],
        )?;
        let mut raw = [0u8; 32];
        self.read_mem(buf, &mut raw)?;
        let w = words::<4>(&raw);
        Ok(libc::itimerval {
            it_interval: libc::timeval {
                tv_sec: w[0] as libc::time_t,
                tv_usec: w[1] as libc::suseconds_t,
            },
            it_value: libc::timeval {
                tv_sec: w[2] as libc::time_t,
                tv_usec: w[3] as libc::suseconds_t,
            },
        })
    }

    /// The program break: brk(0), which changes nothing and returns it.
    pub fn get_brk(&mut self) -> Result<u64, InjectError> {
        self.call("brk", libc::SYS_brk, [0; 6])
    }

    /// The alternate signal stack: sigaltstack(NULL, scratch).
    pub fn get_sigaltstack(&mut self) -> Result<AltStack, InjectError> {
        let buf = self.scratch(24)?;
        self.call("sigaltstack", libc::SYS_sigaltstack, [0, buf, 0, 0, 0, 0])?;
        let mut raw = [0u8; 24];
        self.read_mem(buf, &mut raw)?;
        let w = words::<3>(&raw);
        Ok(AltStack {
            sp: w[0],
            flags: w[1] as u32 as i32,
            size: w[2],
        })
    }

    /// Queues the signals taken over on the thread again, with their
    /// siginfo, all signals blocked meanwhile so that none is delivered (to a
    /// stop of ours) before the thread is let go. SIGSTOP (which cannot be
    /// blocked) is sent last, by `requeue_stop`, after the scratch is gone.
    fn requeue(&mut self) -> Result<Option<u64>, InjectError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let tid = self.tid;
        // The thread's own ids, in its own pid namespace. These calls also
        // take the thread through the kernel's signal code once, which puts
        // back a mask saved by ppoll/sigsuspend, so that what is read next
        // is the thread's own mask (PTRACE_SETSIGMASK would drop the saved
        // one).
        let tgid = self.call("getpid", libc::SYS_getpid, [0; 6])?;
        let self_tid = self.call("gettid", libc::SYS_gettid, [0; 6])?;
        let buf = self.scratch(128)?;
        let mask = regs::get_sigmask(tid)?;
        regs::set_sigmask(tid, !0)?;
        let pending = std::mem::take(&mut self.pending);
        for info in pending.iter().filter(|i| i.signo() != libc::SIGSTOP) {
            self.write_mem(buf, &info.0)?;
            self.call(
                "rt_tgsigqueueinfo",
                libc::SYS_rt_tgsigqueueinfo,
                [tgid, self_tid, info.signo() as u64, buf, 0, 0],
            )?;
        }
        // Kept for pending_signals() and requeue_stop, with any SIGSTOP
        // (the only signal not blocked now) that arrived meanwhile.
        let newer = std::mem::replace(&mut self.pending, pending);
        self.pending.extend(newer);
        Ok(Some(mask))
    }

    fn requeue_stop(&mut self) -> Result<(), InjectError> {
        if self.pending.iter().any(|i| i.signo() == libc::SIGSTOP) {
            let tgid = self.call("getpid", libc::SYS_getpid, [0; 6])?;
            let self_tid = self.call("gettid", libc::SYS_gettid, [0; 6])?;
            self.call(
                "tgkill",
                libc::SYS_tgkill,
                [tgid, self_tid, libc::SIGSTOP as u64, 0, 0, 0],
            )?;
        }
        Ok(())
    }

    fn restore(&mut self) -> Result<(), InjectError> {
        self.restore_start()?;
        self.restore_complete()
    }

    /// The first half of [`Injector::restore`]: up to the thread running
    /// towards its event stop.
    fn restore_start(&mut self) -> Result<(), InjectError> {
        let tid = self.tid;
        self.done = true;
        let mask = self.requeue()?;
        self.unmap_scratch()?;
        self.requeue_stop()?;
        if let Some(mask) = mask {
            regs::set_sigmask(tid, mask)?;
        }
        regs::set_regs(tid, &self.saved)?;
        // Back into a PTRACE_EVENT_STOP: the thread leaves the syscall-exit
        // stop, enters the signal code for the pending trap and stops there,
        // before the kernel's restart logic looks at the restored registers.
        // The trap comes before any signal is dequeued.
        let step = "return to an event stop";
        ptrace::interrupt(tid).map_err(ptrace_err(tid, step))?;
        ptrace_cont(tid, 0).map_err(ptrace_err(tid, step))
    }

    /// The second half of [`Injector::restore`]: the event stop.
    fn restore_complete(&mut self) -> Result<(), InjectError> {
        let tid = self.tid;
        let step = "return to an event stop";
        match self.wait_stop(step)? {
            Stop::Event { event, .. } if event == libc::PTRACE_EVENT_STOP => Ok(()),
            stop => Err(InjectError::UnexpectedStop { tid, step, stop }),
        }
    }

    /// Ends the session: queues taken-over signals again, unmaps the
    /// scratch memory, restores the saved registers exactly and leaves the
    /// thread in a PTRACE_EVENT_STOP, for the caller to detach (with signal
    /// 0). If nothing was injected, nothing is done.
    pub fn finish(mut self) -> Result<(), InjectError> {
        if !self.touched() {
            self.done = true;
            return Ok(());
        }
        self.restore()
    }

    /// The first half of [`Injector::finish`]: the thread is left running
    /// towards its event stop, so that the caller can finish other threads
    /// meanwhile. Complete with [`Finishing::complete`].
    pub fn finish_start(mut self) -> Result<Finishing, InjectError> {
        if !self.touched() {
            self.done = true;
            return Ok(Finishing(None));
        }
        self.restore_start()?;
        Ok(Finishing(Some(self)))
    }

    /// Ends the session with one last call that leaves the thread for the
    /// caller to give it registers of its own (a restored task's, whose
    /// scratch area the call unmaps): the call runs by a single step over
    /// the `syscall` instruction, one stop instead of the two of a traced
    /// call and the third of [`Injector::finish`]; the saved registers are
    /// not put back. Refused (`Ok(Err(self))`, to finish the usual way)
    /// when signals were taken over, which only `finish` queues again.
    pub fn last_call_start(
        mut self,
        call: &'static str,
        nr: i64,
        args: [u64; 6],
    ) -> Result<Result<LastCall, Injector>, InjectError> {
        if !self.pending.is_empty() {
            return Ok(Err(self));
        }
        let tid = self.tid;
        let r = self.call_regs(nr, args);
        // From here on the thread is the caller's: nothing to undo on drop.
        self.done = true;
        regs::set_regs(tid, &r)?;
        ptrace_singlestep(tid).map_err(ptrace_err(tid, "single step over the last call"))?;
        Ok(Ok(LastCall {
            tid,
            call,
            after: self.syscall_ip + 2,
        }))
    }

    /// True when there is something to undo.
    fn touched(&self) -> bool {
        self.resumed || !self.pending.is_empty()
    }
}

/// A session ended by a last call ([`Injector::last_call_start`]).
#[must_use = "a last call must be completed"]
pub struct LastCall {
    tid: i32,
    call: &'static str,
    after: u64,
}

impl LastCall {
    /// Waits for the SIGTRAP that follows the call and returns its result.
    /// The thread is left in that signal-delivery stop with the call's
    /// registers: the caller sets the registers it is to resume with and
    /// detaches with signal 0 (which drops the trap).
    pub fn complete(self) -> Result<u64, InjectError> {
        let tid = self.tid;
        let step = "single step over the last injected call";
        match wait_stop_of(tid, step)? {
            Stop::Signal(sig) if sig & 0x7f == libc::SIGTRAP => {}
            stop => return Err(InjectError::UnexpectedStop { tid, step, stop }),
        }
        let r = regs::get_regs(tid)?;
        if r.rip != self.after {
            return Err(InjectError::UnexpectedStop {
                tid,
                step,
                stop: Stop::Signal(libc::SIGTRAP),
            });
        }
        let ret = r.rax as i64;
        if (-4095..0).contains(&ret) {
            return Err(InjectError::Syscall {
                tid,
                call: self.call,
                errno: (-ret) as i32,
            });
        }
        Ok(ret as u64)
    }
}

/// An injection session being finished ([`Injector::finish_start`]).
#[must_use = "a finishing session must be completed"]
pub struct Finishing(Option<Injector>);

impl Finishing {
    /// Waits for the thread's event stop: the session is over.
    pub fn complete(mut self) -> Result<(), InjectError> {
        match self.0.as_mut() {
            Some(inj) => inj.restore_complete(),
            None => Ok(()),
        }
    }
}

impl Drop for Injector {
    /// Best effort when `finish` was not called (an error path): the same
    /// restoration, errors logged.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.touched() {
            if let Err(e) = self.restore() {
                log::warn!("task {}: restoring after injection: {e}", self.tid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vdso_in_maps() {
        let maps = b"55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 123 /usr/bin/x [vdso]\n\
7ffd1e7f0000-7ffd1e7f4000 r--p 00000000 00:00 0                          [vvar]\n\
7ffd1e7f4000-7ffd1e7f6000 r-xp 00000000 00:00 0                          [vdso]\n";
        // The first line only ends in "[vdso]" as a file name would, but is
        // not executable.
        assert_eq!(vdso_range(maps), Some((0x7ffd1e7f4000, 0x7ffd1e7f6000)));
        assert_eq!(vdso_range(b"garbage [vdso]\n"), None);
    }

    #[test]
    fn sigaction_layout() {
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&0x401000u64.to_ne_bytes());
        raw[8..16].copy_from_slice(&0x1400_0000u64.to_ne_bytes());
        raw[24..].copy_from_slice(&1u64.to_ne_bytes());
        let s = KernelSigaction::from_raw(&raw);
        assert_eq!(
            (s.handler, s.flags, s.restorer, s.mask),
            (0x401000, 0x1400_0000, 0, 1)
        );
    }
}
