//! Persistent tun/tap devices (linux/if_tun.h): rtnetlink cannot create
//! them, the ioctls of /dev/net/tun can. The device is made in the network
//! namespace of the thread that opens /dev/net/tun.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsRawFd;

const TUNSETIFF: libc::Ioctl = 0x4004_54ca;
const TUNSETPERSIST: libc::Ioctl = 0x4004_54cb;
const TUNSETOWNER: libc::Ioctl = 0x4004_54cc;
const TUNSETGROUP: libc::Ioctl = 0x4004_54ce;
const TUNSETIFINDEX: libc::Ioctl = 0x4004_54da;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    pad: [u8; 22],
}

/// Makes the persistent device `name` with index `ifindex`, `flags`
/// (IFF_TUN or IFF_TAP with IFF_NO_PI, IFF_VNET_HDR, IFF_MULTI_QUEUE),
/// owner and group (`None`: any), in the caller's network namespace.
pub fn create_persistent(
    name: &[u8],
    ifindex: u32,
    flags: u16,
    owner: Option<u32>,
    group: Option<u32>,
) -> io::Result<()> {
    if name.len() > 15 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let fd = f.as_raw_fd();
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    let index: libc::c_uint = ifindex;
    // SAFETY: TUNSETIFINDEX reads one unsigned int through the pointer,
    // which points to a live local.
    check(unsafe { libc::ioctl(fd, TUNSETIFINDEX, &index as *const libc::c_uint) })?;
    let mut req = IfReq {
        name: [0; 16],
        flags: flags as libc::c_short,
        pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name);
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq` (40 bytes on
    // x86_64, the size of IfReq) through the pointer, a live local.
    check(unsafe { libc::ioctl(fd, TUNSETIFF, &mut req as *mut IfReq) })?;
    if let Some(uid) = owner {
        // SAFETY: TUNSETOWNER takes the uid as the argument value itself.
        check(unsafe { libc::ioctl(fd, TUNSETOWNER, uid as libc::c_ulong) })?;
    }
    if let Some(gid) = group {
        // SAFETY: TUNSETGROUP takes the gid as the argument value itself.
        check(unsafe { libc::ioctl(fd, TUNSETGROUP, gid as libc::c_ulong) })?;
    }
    // SAFETY: TUNSETPERSIST takes 0 or 1 as the argument value itself.
    check(unsafe { libc::ioctl(fd, TUNSETPERSIST, 1 as libc::c_ulong) })?;
    Ok(())
}
