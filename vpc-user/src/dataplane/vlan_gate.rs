//! The VLAN gate of a veth ENI: a tiny XDP program in front of the data path, one per host-side
//! veth, that drops (and counts as `vlan_tagged`) a frame whose 802.1Q tag travels in the skb's
//! metadata rather than in the frame -- what a guest's tx-vlan offload, a bridge or a tc action
//! produces. The data path itself cannot see such a tag (an XDP program sees the untagged bytes
//! and a redirect strips the tag silently); only the `bpf_xdp_metadata_rx_vlan_tag` kfunc can,
//! and only from a program bound to the device. So the gate is loaded per device and hands
//! every untagged frame to the shared data path with a tail call through `PROGS` (a bound
//! program may tail-call an unbound one). Tags in the frame are the data path's to drop.
//!
//! aya 0.14 cannot load bound programs or call kfuncs, so the gate is assembled here.

use std::{
    ffi::CString,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    path::Path,
};

use anyhow::{Context as _, bail};
use vpc_common::DropReason;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_PIN: libc::c_long = 6;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_F_XDP_DEV_BOUND_ONLY: u32 = 1 << 6;
const BPF_PSEUDO_MAP_FD: u8 = 1;
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
const FN_MAP_LOOKUP_ELEM: i32 = 1;
const FN_TAIL_CALL: i32 = 12;
const XDP_DROP: i32 = 1;

/// The kfunc that reads a frame's metadata VLAN tag.
const KFUNC: &str = "bpf_xdp_metadata_rx_vlan_tag";

/// One BPF instruction.
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

/// `dst = map fd`: the two-instruction 64-bit load the kernel rewrites into the map's address.
fn ld_map(dst: u8, fd: BorrowedFd<'_>) -> [Insn; 2] {
    [insn(0x18, dst, BPF_PSEUDO_MAP_FD, 0, fd.as_raw_fd()), insn(0, 0, 0, 0, 0)]
}

/// The gate's instructions. `progs` holds the data path at index 0; `drops` is `DROP_STATS`.
fn program(kfunc: u32, progs: BorrowedFd<'_>, drops: BorrowedFd<'_>) -> Vec<Insn> {
    let (mov_reg, mov_imm, add_imm, st_dw, stx_w, ldx_dw, stx_dw, call, exit) = (0xbf, 0xb7, 0x07, 0x7a, 0x63, 0x79, 0x7b, 0x85, 0x95);
    let (jeq_imm, ja) = (0x15, 0x05);
    let mut p = vec![
        insn(mov_reg, 6, 1, 0, 0),                             // 0: r6 = ctx
        insn(st_dw, 10, 0, -8, 0),                             // 1: proto and tci scratch, zeroed
        insn(mov_reg, 2, 10, 0, 0),                            // 2: r2 = &proto
        insn(add_imm, 2, 0, 0, -8),                            // 3
        insn(mov_reg, 3, 10, 0, 0),                            // 4: r3 = &tci
        insn(add_imm, 3, 0, 0, -6),                            // 5
        insn(call, 0, BPF_PSEUDO_KFUNC_CALL, 0, kfunc as i32), // 6: 0 when a tag is in the metadata
        insn(jeq_imm, 0, 0, 7, 0),                             // 7: tagged -> 15
        insn(mov_reg, 1, 6, 0, 0),                             // 8: r1 = ctx
    ];
    p.extend(ld_map(2, progs)); // 9-10: r2 = PROGS
    p.extend([
        insn(mov_imm, 3, 0, 0, 0),                             // 11: r3 = 0
        insn(call, 0, 0, 0, FN_TAIL_CALL),                     // 12: into the data path; returns only if it is missing
        insn(mov_imm, 7, 0, 0, DropReason::UnknownEni as i32), // 13
        insn(ja, 0, 0, 1, 0),                                  // 14: -> 16
        insn(mov_imm, 7, 0, 0, DropReason::VlanTagged as i32), // 15
        insn(stx_w, 10, 7, -12, 0),                            // 16: key = reason
        insn(mov_reg, 2, 10, 0, 0),                            // 17
        insn(add_imm, 2, 0, 0, -12),                           // 18
    ]);
    p.extend(ld_map(1, drops)); // 19-20: r1 = DROP_STATS
    p.extend([
        insn(call, 0, 0, 0, FN_MAP_LOOKUP_ELEM), // 21
        insn(jeq_imm, 0, 0, 3, 0),               // 22: -> 26
        insn(ldx_dw, 1, 0, 0, 0),                // 23: per-CPU slot += 1
        insn(add_imm, 1, 0, 0, 1),               // 24
        insn(stx_dw, 0, 1, 0, 0),                // 25
        insn(mov_imm, 0, 0, 0, XDP_DROP),        // 26
        insn(exit, 0, 0, 0, 0),                  // 27
    ]);
    p
}

/// The BTF id of the kfunc in this kernel, or why there is none. Read once per process: the
/// kernel's BTF (megabytes) does not change under it, and every sync asks.
pub fn kfunc_id() -> anyhow::Result<u32> {
    static ID: std::sync::OnceLock<Result<u32, String>> = std::sync::OnceLock::new();
    let id = ID.get_or_init(|| {
        let btf =
            aya_obj::btf::Btf::from_sys_fs().context("reading the kernel's BTF (/sys/kernel/btf/vmlinux)").map_err(|e| format!("{e:#}"))?;
        btf.id_by_type_name_kind(KFUNC, aya_obj::btf::BtfKind::Func).map_err(|_| format!("the kernel has no {KFUNC}"))
    });
    id.clone().map_err(|e| anyhow::anyhow!(e))
}

/// Load the gate bound to `ifindex` (in the calling thread's namespace) and pin it at `pin`.
pub fn load(ifindex: u32, kfunc: u32, progs: BorrowedFd<'_>, drops: BorrowedFd<'_>, pin: &Path) -> anyhow::Result<()> {
    let insns = program(kfunc, progs, drops);
    let bytes: Vec<u64> = insns
        .iter()
        .map(|i| u64::from(i.code) | (u64::from(i.regs) << 8) | (u64::from(i.off as u16) << 16) | (u64::from(i.imm as u32) << 32))
        .collect();
    let license = CString::new("GPL").expect("no NUL");
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; 128];
    let put32 = |attr: &mut [u8; 128], at: usize, v: u32| attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 = |attr: &mut [u8; 128], at: usize, v: u64| attr[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
    put32(&mut attr, 4, bytes.len() as u32);
    put64(&mut attr, 8, bytes.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 24, 1); // log level
    put32(&mut attr, 28, log.len() as u32);
    put64(&mut attr, 32, log.as_mut_ptr() as u64);
    put32(&mut attr, 44, BPF_F_XDP_DEV_BOUND_ONLY);
    attr[48..56].copy_from_slice(b"vpc_vlan");
    put32(&mut attr, 64, ifindex);
    put32(&mut attr, 68, BPF_XDP);
    // SAFETY: attr is a valid bpf_attr for BPF_PROG_LOAD; the buffers outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) };
    if rc < 0 {
        // EAGAIN (a pending signal) is retried by the caller (`loader::retrying`).
        let err = std::io::Error::last_os_error();
        let text = String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
        return Err(anyhow::Error::new(err).context(format!("loading the VLAN gate for ifindex {ifindex}: {text}")));
    }
    // SAFETY: the kernel returned a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    pin_fd(fd.as_fd(), pin)
}

fn pin_fd(fd: BorrowedFd<'_>, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    let c = CString::new(path.as_os_str().as_bytes())?;
    let mut attr = [0u8; 24];
    attr[0..8].copy_from_slice(&(c.as_ptr() as u64).to_ne_bytes());
    attr[8..12].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
    // SAFETY: attr is a valid bpf_attr for BPF_OBJ_PIN; the path outlives the call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_PIN, attr.as_ptr(), attr.len()) };
    if rc < 0 {
        bail!("pinning the VLAN gate at {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(())
}
