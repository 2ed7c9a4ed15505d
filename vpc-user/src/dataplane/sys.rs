//! The few bpf(2) commands aya 0.14 does not expose.

use std::os::fd::{AsRawFd, BorrowedFd};

const BPF_MAP_DELETE_ELEM: libc::c_long = 3;

#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Delete `key` from the map behind `fd` (aya has no delete for DEVMAP slots).
pub fn map_delete<K>(fd: BorrowedFd<'_>, key: &K) -> std::io::Result<()> {
    let attr = MapElemAttr { map_fd: fd.as_raw_fd() as u32, key: key as *const K as u64, ..Default::default() };
    // SAFETY: attr is a valid bpf_attr prefix for BPF_MAP_DELETE_ELEM and outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_DELETE_ELEM, &attr as *const MapElemAttr, std::mem::size_of::<MapElemAttr>()) };
    if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}
