//! Reading and writing another process's memory.

use std::io;

/// The most remote ranges one `process_vm_readv` call takes (UIO_MAXIOV).
pub const MAX_IOVECS: usize = libc::UIO_MAXIOV as usize;

/// process_vm_readv(2): copies the ranges `remote` (address, length) of
/// process `pid`, in order, into `local` from its start.
///
/// Returns how many bytes were copied. The copy stops early, without an
/// error, at the first remote page it cannot read (unmapped, PROT_NONE,
/// VM_IO) once something was copied; it fails with EFAULT when nothing
/// could be. At most [`MAX_IOVECS`] ranges (else EINVAL).
pub fn process_vm_readv(pid: i32, local: &mut [u8], remote: &[(u64, usize)]) -> io::Result<usize> {
    if remote.len() > MAX_IOVECS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let empty = libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    };
    let mut rvec = [empty; MAX_IOVECS];
    for (v, &(addr, len)) in rvec.iter_mut().zip(remote) {
        // An address in the other process: never dereferenced here.
        v.iov_base = addr as usize as *mut libc::c_void;
        v.iov_len = len;
    }
    let lvec = libc::iovec {
        iov_base: local.as_mut_ptr().cast(),
        iov_len: local.len(),
    };
    // SAFETY: `lvec` describes `local`, memory we borrow mutably for the
    // whole call, and the kernel writes at most `local.len()` bytes into it;
    // `rvec[..remote.len()]` is a valid array of iovecs whose addresses are
    // interpreted only in the address space of `pid`, never in ours; both
    // arrays outlive the call and the flags argument must be 0.
    let r = unsafe {
        libc::process_vm_readv(
            pid,
            &lvec,
            1,
            rvec.as_ptr(),
            remote.len() as libc::c_ulong,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// process_vm_writev(2): copies `local` to address `addr` of process
/// `pid`. Returns how many bytes were copied: the copy stops early, without
/// an error, at the first remote page it cannot write (read-only, unmapped)
/// once something was copied; it fails with EFAULT when nothing could be.
pub fn process_vm_writev(pid: i32, addr: u64, local: &[u8]) -> io::Result<usize> {
    let lvec = libc::iovec {
        iov_base: local.as_ptr() as *mut libc::c_void,
        iov_len: local.len(),
    };
    let rvec = libc::iovec {
        // An address in the other process: never dereferenced here.
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: local.len(),
    };
    // SAFETY: `lvec` describes `local`, which we borrow for the whole call
    // and the kernel only reads; `rvec`'s address is interpreted only in
    // the address space of `pid`, never in ours; both outlive the call and
    // the flags argument must be 0.
    let r = unsafe { libc::process_vm_writev(pid, &lvec, 1, &rvec, 1, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// Maps `len` bytes of anonymous private memory with `prot` at exactly
/// `addr`, failing (EEXIST) rather than replacing anything already there
/// (MAP_FIXED_NOREPLACE). The mapping is never accessed through Rust
/// references: it is for another program's code and data.
pub fn map_anon_at(addr: u64, len: usize, prot: i32) -> io::Result<()> {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping, so no
    // memory this process uses can change; the result is only compared.
    let got = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, -1, 0) };
    if got == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if got as u64 != addr {
        // An old kernel without MAP_FIXED_NOREPLACE takes it as a hint.
        // SAFETY: `got` is the mapping just made, used by nothing.
        unsafe { libc::munmap(got, len) };
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(())
}
