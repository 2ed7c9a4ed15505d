//! The XDP object built by build.rs, embedded in the binary.

/// ELF bytes of the vpc-ebpf programs. Aligned because aya parses it in place.
pub fn bytes() -> &'static [u8] {
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vpc-dataplane"))
}
