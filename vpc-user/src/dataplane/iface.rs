//! Host-side ENI interfaces take the MAC of their VSwitch gateway. Frames a guest sends to the
//! gateway are then addressed to the interface itself, so the ones the data path hands to the
//! host's own stack (100.64.0.0/10, the cloud-services range) are accepted there as local, and
//! whatever the host sends back comes from the gateway's MAC, as the guest expects.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, bail};

fn socket() -> anyhow::Result<OwnedFd> {
    // SAFETY: plain socket(2); owned right away.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn request(ifname: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(ifname.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    req
}

/// The MAC of `ifname`.
pub fn mac(ifname: &str) -> anyhow::Result<[u8; 6]> {
    let sock = socket()?;
    let mut req = request(ifname);
    // SAFETY: SIOCGIFHWADDR fills ifr_hwaddr.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        bail!("reading the MAC of {ifname}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote ifru_hwaddr.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    Ok(std::array::from_fn(|i| data[i] as u8))
}

/// Give `ifname` the MAC `mac` unless it has it already.
pub fn ensure_mac(ifname: &str, mac: [u8; 6]) -> anyhow::Result<()> {
    if self::mac(ifname)? == mac {
        return Ok(());
    }
    let sock = socket()?;
    let mut req = request(ifname);
    // SAFETY: writing the hwaddr member of the union before the ioctl reads it.
    unsafe {
        req.ifr_ifru.ifru_hwaddr.sa_family = libc::ARPHRD_ETHER;
        for (dst, src) in req.ifr_ifru.ifru_hwaddr.sa_data.iter_mut().zip(mac) {
            *dst = src as libc::c_char;
        }
    }
    // SAFETY: SIOCSIFHWADDR with a filled request.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFHWADDR, &req) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setting the MAC of {ifname}"));
    }
    Ok(())
}

/// The MTU of `ifname`.
pub fn mtu(ifname: &str) -> anyhow::Result<u16> {
    let sock = socket()?;
    let mut req = request(ifname);
    // SAFETY: SIOCGIFMTU fills ifru_mtu.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFMTU, &mut req) } != 0 {
        bail!("reading the MTU of {ifname}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote ifru_mtu.
    Ok(u16::try_from(unsafe { req.ifr_ifru.ifru_mtu }).unwrap_or(u16::MAX))
}

/// The (primary) IPv4 address of `ifname`.
pub fn ipv4(ifname: &str) -> anyhow::Result<std::net::Ipv4Addr> {
    let sock = socket()?;
    let mut req = request(ifname);
    // SAFETY: SIOCGIFADDR fills ifru_addr with a sockaddr_in.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFADDR, &mut req) } != 0 {
        bail!("{ifname} has no IPv4 address: {}", std::io::Error::last_os_error());
    }
    // SAFETY: for AF_INET the kernel wrote a sockaddr_in, which fits in the sockaddr.
    let addr = unsafe { *(std::ptr::addr_of!(req.ifr_ifru.ifru_addr) as *const libc::sockaddr_in) };
    Ok(std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)))
}
