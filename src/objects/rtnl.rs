//! A blocking rtnetlink socket inside a given network namespace.
//!
//! A netlink socket belongs to the network namespace it was created in, for
//! its whole life. So the socket is made by a short-lived thread that has
//! setns()'d into the target namespace (network namespaces, unlike mount or
//! user ones, may be entered by one thread of a threaded process) and handed
//! back; kstate's own thread never changes namespace.
//! Messages are built and parsed by netlink-packet-route, sent and received
//! through netlink-sys's plain socket (no async runtime).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// One rtnetlink socket, bound to the namespace it was made in.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

/// A new network namespace, made by a thread of its own (unshare), so
/// that the caller stays in its own: a descriptor of it (the namespace
/// goes when the last descriptor does).
pub fn new_netns() -> io::Result<OwnedFd> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace helper thread panicked")))
    })
}

/// Runs `f` in a thread that has entered the network namespace `ns` (or
/// stays in kstate's own with `None`), and returns its result.
pub fn in_netns<T: Send>(
    ns: Option<BorrowedFd<'_>>,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let Some(ns) = ns else { return f() };
    let dup: OwnedFd = ns.try_clone_to_owned()?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(dup.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace helper thread panicked")))
    })
}

impl Rtnl {
    /// A socket in the namespace `ns`, or in kstate's own with `None`.
    pub fn open(ns: Option<BorrowedFd<'_>>) -> io::Result<Rtnl> {
        let sock = in_netns(ns, || {
            let mut s = Socket::new(NETLINK_ROUTE)?;
            s.bind_auto()?;
            s.connect(&SocketAddr::new(0, 0))?;
            Ok(s)
        })?;
        // Replies to dumps of many routes or links come in large datagrams.
        let _ = sock.set_rx_buf_sz(1 << 20);
        let _ = sock.set_ext_ack(true);
        Ok(Rtnl { sock, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Receives until the answer to `seq` is complete: every message of a
    /// dump (until NLMSG_DONE) or of a reply, and the ACK or error.
    fn receive(&mut self, seq: u32, dump: bool) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut out = Vec::new();
        // The kernel marks the messages of a dump that a change cut through.
        let mut interrupted = false;
        let done = |out: Vec<RouteNetlinkMessage>, interrupted: bool| {
            if interrupted {
                Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the kernel's listing was interrupted by a change (NLM_F_DUMP_INTR)",
                ))
            } else {
                Ok(out)
            }
        };
        loop {
            let (buf, _) = self.sock.recv_from_full()?;
            let mut off = 0usize;
            while off < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message of length 0",
                    ));
                }
                off += len.div_ceil(4) * 4;
                if msg.header.sequence_number != seq {
                    continue;
                }
                if msg.header.flags & netlink_packet_core::NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return done(out, interrupted),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => done(out, interrupted),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        out.push(m);
                        if !dump && msg.header.flags & NLM_F_ACK == 0 {
                            // A reply without an ACK request ends here
                            // unless it is multipart.
                            if msg.header.flags & netlink_packet_core::NLM_F_MULTIPART == 0 {
                                return Ok(out);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A dump request (NLM_F_DUMP): every object the kernel lists. A dump
    /// that a change cut through is taken again (three times at most).
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut tries = 0;
        loop {
            let seq = self.send(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            match self.receive(seq, true) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted && tries < 2 => tries += 1,
                other => return other,
            }
        }
    }

    /// A request answered by one message (RTM_GETNSID).
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_REQUEST)?;
        self.receive(seq, false)
    }

    /// A change, acknowledged: `extra` adds NLM_F_CREATE, NLM_F_EXCL, ….
    pub fn change(&mut self, msg: RouteNetlinkMessage, extra: u16) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | extra)?;
        self.receive(seq, true).map(|_| ())
    }
}

/// Reads and writes the files of /proc/sys/net (of the calling thread's
/// network namespace) through the descriptor of their directory, kept from
/// one call to the next: opening `ipv4/conf/eth0/rp_filter` relative to
/// `ipv4/conf/eth0` spares the kernel's sysctl lookup of every component,
/// which is most of the cost of reading the ~470 files of a namespace.
#[derive(Default)]
pub struct SysctlFiles {
    dir_name: Vec<u8>,
    dir: Option<OwnedFd>,
}

impl SysctlFiles {
    /// Opens `name` (a path below /proc/sys/net, checked by the caller).
    fn open(&mut self, name: &[u8], flags: nix::fcntl::OFlag) -> io::Result<std::fs::File> {
        use std::os::unix::ffi::OsStrExt;
        let (dir, file) = match name.iter().rposition(|b| *b == b'/') {
            Some(i) => (&name[..i], &name[i + 1..]),
            None => (&b""[..], name),
        };
        if self.dir.is_none() || self.dir_name != dir {
            let mut path = b"/proc/sys/net/".to_vec();
            path.extend_from_slice(dir);
            let d = nix::fcntl::open(
                std::ffi::OsStr::from_bytes(&path),
                nix::fcntl::OFlag::O_DIRECTORY
                    | nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )?;
            self.dir = Some(d);
            self.dir_name = dir.to_vec();
        }
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| io::Error::other("no directory"))?;
        let fd = nix::fcntl::openat(
            dir,
            std::ffi::OsStr::from_bytes(file),
            flags | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        Ok(std::fs::File::from(fd))
    }

    /// The value of `name` without its trailing newlines: one open, one
    /// read (a sysctl hands its whole value to the first), one close.
    pub fn read(&mut self, name: &[u8]) -> io::Result<Vec<u8>> {
        let f = self.open(name, nix::fcntl::OFlag::O_RDONLY)?;
        read_value(f)
    }

    /// The value of `name` if it may be written back (the owner's write
    /// bit, from the open file: read-only ones like mc_forwarding are not
    /// kept), `None` otherwise.
    pub fn read_writable(&mut self, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
        use std::os::unix::fs::PermissionsExt;
        let f = self.open(name, nix::fcntl::OFlag::O_RDONLY)?;
        let m = f.metadata()?;
        if !m.is_file() || m.permissions().mode() & 0o200 == 0 {
            return Ok(None);
        }
        read_value(f).map(Some)
    }

    /// Writes `value` to `name`.
    pub fn write(&mut self, name: &[u8], value: &[u8]) -> io::Result<()> {
        use std::io::Write;
        self.open(name, nix::fcntl::OFlag::O_WRONLY)?
            .write_all(value)
    }
}

fn read_value(mut f: std::fs::File) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
        if n < buf.len() {
            break;
        }
    }
    buf.truncate(n);
    while buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(buf)
}
