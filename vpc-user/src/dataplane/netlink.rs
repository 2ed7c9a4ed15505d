//! Minimal rtnetlink (and generic netlink's `netdev` family): ask the kernel of the calling
//! thread's network namespace about one link. (sysfs would show the namespace sysfs was
//! mounted in, not the thread's.)

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::bail;

const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const IFLA_LINK: u16 = 5;
const IFLA_LINK_NETNSID: u16 = 37;
const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_INFO_KIND: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

#[repr(C)]
struct Request {
    // struct nlmsghdr
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
    // struct ifinfomsg
    family: u8,
    _pad: u8,
    if_type: u16,
    index: i32,
    if_flags: u32,
    change: u32,
}

fn route_socket() -> anyhow::Result<OwnedFd> {
    // SAFETY: plain socket(2); owned right away.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        bail!("netlink socket: {}", std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    buf.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

/// Create a veth pair `name` <-> `peer` in the calling thread's namespace; returns the ifindex of
/// `name`. (This kernel has no dummy driver; a veth end serves as a stand-in interface too.)
pub fn add_veth(name: &str, peer: &str) -> anyhow::Result<u32> {
    const IFLA_INFO_DATA: u16 = 2;
    const VETH_INFO_PEER: u16 = 1;
    let mut peer_attr = vec![0u8; 16]; // struct ifinfomsg of the peer
    push_attr(&mut peer_attr, IFLA_IFNAME, format!("{peer}\0").as_bytes());
    let mut data = Vec::new();
    push_attr(&mut data, VETH_INFO_PEER, &peer_attr);
    let mut info = Vec::new();
    push_attr(&mut info, IFLA_INFO_KIND, b"veth\0");
    push_attr(&mut info, IFLA_INFO_DATA, &data);
    let mut attrs = Vec::new();
    push_attr(&mut attrs, IFLA_IFNAME, format!("{name}\0").as_bytes());
    push_attr(&mut attrs, IFLA_LINKINFO, &info);
    new_link(name, &attrs)?;
    crate::dataplane::ifindex(name).ok_or_else(|| anyhow::anyhow!("veth {name} vanished"))
}

fn new_link(name: &str, attrs: &[u8]) -> anyhow::Result<()> {
    let sock = route_socket()?;
    let mut msg = vec![0u8; 32];
    msg.extend_from_slice(attrs);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).to_ne_bytes());
    // SAFETY: sending an initialised buffer.
    if unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        bail!("netlink send: {}", std::io::Error::last_os_error());
    }
    let mut reply = [0u8; 1024];
    // SAFETY: receiving into an owned buffer.
    let n = unsafe { libc::recv(sock.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
    if n < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != NLMSG_ERROR {
        bail!("netlink: no acknowledgement creating {name}");
    }
    let errno = i32::from_ne_bytes(reply[16..20].try_into()?);
    if errno != 0 {
        bail!("creating {name}: {}", std::io::Error::from_raw_os_error(-errno));
    }
    Ok(())
}

/// IFLA_LINK of `ifindex` (for a veth: its peer's ifindex), if the link exists.
pub fn link_of(ifindex: u32) -> anyhow::Result<Option<u32>> {
    Ok(peer_of(ifindex)?.map(|(link, _)| link))
}

/// IFLA_LINK of `ifindex` and IFLA_LINK_NETNSID: the id, in this namespace, of the namespace the
/// peer lives in (none: this one).
pub fn peer_of(ifindex: u32) -> anyhow::Result<Option<(u32, Option<i32>)>> {
    let sock = route_socket()?;
    let req = Request {
        len: std::mem::size_of::<Request>() as u32,
        kind: RTM_GETLINK,
        flags: NLM_F_REQUEST,
        seq: 1,
        pid: 0,
        family: 0,
        _pad: 0,
        if_type: 0,
        index: ifindex as i32,
        if_flags: 0,
        change: 0,
    };
    // SAFETY: `Request` is plain data, fully initialised; its bytes are the message.
    let bytes = unsafe { std::slice::from_raw_parts((&req as *const Request).cast::<u8>(), req.len as usize) };
    let buf = exchange(&sock, bytes)?;
    let buf = buf.as_slice();
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    if kind == NLMSG_ERROR {
        return Ok(None); // no such link
    }
    if kind != RTM_NEWLINK {
        bail!("unexpected netlink message type {kind}");
    }
    let (mut link, mut netnsid) = (None, None);
    for (kind, payload) in attrs(buf, 16 + 16) {
        match kind {
            IFLA_LINK if payload.len() >= 4 => link = Some(u32::from_ne_bytes(payload[..4].try_into()?)),
            IFLA_LINK_NETNSID if payload.len() >= 4 => netnsid = Some(i32::from_ne_bytes(payload[..4].try_into()?)),
            _ => {}
        }
    }
    Ok(link.map(|link| (link, netnsid)))
}

/// Send one request and read the first message of the answer (at least a header long).
fn exchange(sock: &OwnedFd, request: &[u8]) -> anyhow::Result<Vec<u8>> {
    // SAFETY: sending an initialised buffer.
    if unsafe { libc::send(sock.as_raw_fd(), request.as_ptr().cast(), request.len(), 0) } < 0 {
        bail!("netlink send: {}", std::io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 16384];
    // SAFETY: receiving into an owned buffer of the given size.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 16 {
        bail!("netlink recv: {}", std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The attributes of the first message in `buf`, from byte `at`: (type, payload).
fn attrs(buf: &[u8], mut at: usize) -> Vec<(u16, &[u8])> {
    let msg_len = (u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize).min(buf.len());
    let mut out = Vec::new();
    while at + 4 <= msg_len {
        let rta_len = usize::from(u16::from_ne_bytes([buf[at], buf[at + 1]]));
        let rta_type = u16::from_ne_bytes([buf[at + 2], buf[at + 3]]) & 0x3fff;
        if rta_len < 4 || at + rta_len > msg_len {
            break;
        }
        out.push((rta_type, &buf[at + 4..at + rta_len]));
        at += (rta_len + 3) & !3;
    }
    out
}

/// The id this namespace gives the namespace of `netns_fd` (RTM_GETNSID), if it gives one.
pub fn nsid_of(netns_fd: std::os::fd::BorrowedFd<'_>) -> anyhow::Result<Option<i32>> {
    const RTM_GETNSID: u16 = 90;
    const RTM_NEWNSID: u16 = 88;
    const NETNSA_NSID: u16 = 1;
    const NETNSA_FD: u16 = 3;
    let sock = route_socket()?;
    // nlmsghdr, rtgenmsg (padded to 4), NETNSA_FD.
    let mut req = vec![0u8; 16];
    req.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    push_attr(&mut req, NETNSA_FD, &(netns_fd.as_raw_fd() as u32).to_ne_bytes());
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNSID.to_ne_bytes());
    req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    let buf = exchange(&sock, &req)?;
    let buf = buf.as_slice();
    if u16::from_ne_bytes([buf[4], buf[5]]) != RTM_NEWNSID {
        return Ok(None);
    }
    let nsid = attrs(buf, 16 + 4).into_iter().find(|(kind, p)| *kind == NETNSA_NSID && p.len() >= 4);
    Ok(nsid.map(|(_, p)| i32::from_ne_bytes([p[0], p[1], p[2], p[3]])).filter(|id| *id >= 0))
}

/// Whether XDP can transmit on `ifindex` (a frame redirected into it leaves), as the kernel's
/// `netdev` family reports it: none when the kernel does not say (before 6.3), or the link is
/// gone. (A veth says yes only while its peer has GRO or an XDP program.)
pub fn xdp_xmit(ifindex: u32) -> Option<bool> {
    const GENL_ID_CTRL: u16 = 0x10;
    const CTRL_CMD_GETFAMILY: u8 = 3;
    const CTRL_ATTR_FAMILY_ID: u16 = 1;
    const CTRL_ATTR_FAMILY_NAME: u16 = 2;
    const NETDEV_CMD_DEV_GET: u8 = 1;
    const NETDEV_A_DEV_IFINDEX: u16 = 1;
    const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
    const NETDEV_XDP_ACT_NDO_XMIT: u64 = 4;
    // SAFETY: plain socket(2); owned right away.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_GENERIC) };
    if fd < 0 {
        return None;
    }
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // nlmsghdr, genlmsghdr (command, version 1), attributes; the answer's attributes at 20.
    let ask = |family: u16, command: u8, attr: u16, payload: &[u8]| -> Option<Vec<(u16, Vec<u8>)>> {
        let mut req = vec![0u8; 16];
        req.extend_from_slice(&[command, 1, 0, 0]);
        push_attr(&mut req, attr, payload);
        let len = req.len() as u32;
        req[0..4].copy_from_slice(&len.to_ne_bytes());
        req[4..6].copy_from_slice(&family.to_ne_bytes());
        req[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        req[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let buf = exchange(&sock, &req).ok()?;
        (u16::from_ne_bytes([buf[4], buf[5]]) == family).then(|| attrs(&buf, 20).into_iter().map(|(k, p)| (k, p.to_vec())).collect())
    };
    let answer = ask(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME, b"netdev\0")?;
    let family = answer.iter().find(|(k, p)| *k == CTRL_ATTR_FAMILY_ID && p.len() >= 2).map(|(_, p)| u16::from_ne_bytes([p[0], p[1]]))?;
    let answer = ask(family, NETDEV_CMD_DEV_GET, NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())?;
    let features = answer.iter().find(|(k, p)| *k == NETDEV_A_DEV_XDP_FEATURES && p.len() >= 8)?;
    Some(u64::from_ne_bytes(features.1[..8].try_into().ok()?) & NETDEV_XDP_ACT_NDO_XMIT != 0)
}
