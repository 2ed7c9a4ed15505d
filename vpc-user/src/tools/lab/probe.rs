//! Real traffic between lab guests: ICMP echo with the system ping, and a tiny TCP "whoami"
//! service whose answer says which guest a connection really reached.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context as _;

use crate::netns;

/// A TCP server in a guest namespace that answers every connection with the guest's name.
pub struct Whoami {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Whoami {
    /// Serve `name` on `port` inside namespace `ns`.
    pub fn start(ns: &str, name: &str, port: u16) -> anyhow::Result<Whoami> {
        let stop = Arc::new(AtomicBool::new(false));
        let listener = netns::in_netns(&netns::path(ns), move || {
            let l = TcpListener::bind(("0.0.0.0", port)).context("binding whoami")?;
            l.set_nonblocking(true)?;
            Ok(l)
        })?;
        let (flag, name) = (stop.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.write_all(name.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Whoami { stop, thread: Some(thread) })
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connect from namespace `ns` to `addr:port` and read who answered.
pub fn whoami(ns: &str, addr: Ipv4Addr, port: u16, timeout: Duration) -> anyhow::Result<String> {
    netns::in_netns(&netns::path(ns), move || {
        let mut conn = TcpStream::connect_timeout(&SocketAddr::from((addr, port)), timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        let mut name = String::new();
        conn.read_to_string(&mut name)?;
        Ok(name)
    })
}

/// Whether `count` pings from `ns` to `addr` all get an answer.
pub fn ping(ns: &str, addr: Ipv4Addr, count: u32) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-q", "-n", "-c", &count.to_string(), "-i", "0.2", "-W", "1", &addr.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Send raw Ethernet `frames` out of `ifname` inside namespace `ns` (AF_PACKET), for tests that
/// need exact packets: spoofed sources, malformed headers, exact counts.
pub fn send_frames(ns: &str, ifname: &str, frames: Vec<Vec<u8>>) -> anyhow::Result<()> {
    let ifname = ifname.to_string();
    netns::in_netns(&netns::path(ns), move || {
        let ifindex = crate::dataplane::ifindex(&ifname).with_context(|| format!("no {ifname} in {}", "namespace"))?;
        // SAFETY: socket(2); the fd is closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        anyhow::ensure!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = ifindex as i32;
        addr.sll_halen = 6;
        let mut result = Ok(());
        for frame in &frames {
            // SAFETY: sending an owned buffer to a valid link-layer address.
            let n = unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&addr as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n < 0 {
                result = Err(anyhow::anyhow!("sendto: {}", std::io::Error::last_os_error()));
                break;
            }
        }
        // SAFETY: closing the fd we opened.
        unsafe { libc::close(fd) };
        result
    })
}

/// Frames arriving at an interface of a lab namespace (AF_PACKET, incoming only), collected on
/// a thread of their own from `start` to `stop`: what a guest really received.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
}

impl Capture {
    /// Start capturing on `ifname` in namespace `ns` (capturing has begun when this returns).
    pub fn start(ns: &str, ifname: &str) -> anyhow::Result<Capture> {
        let ifname = ifname.to_string();
        let fd = netns::in_netns(&netns::path(ns), move || {
            let ifindex = crate::dataplane::ifindex(&ifname).with_context(|| format!("no {ifname} in the namespace"))?;
            let all = (libc::ETH_P_ALL as u16).to_be();
            // SAFETY: socket(2); the fd is owned below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(all)) };
            anyhow::ensure!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            // SAFETY: we own the new descriptor.
            let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_protocol = all;
            addr.sll_ifindex = ifindex as i32;
            let timeout = libc::timeval { tv_sec: 0, tv_usec: 20_000 };
            use std::os::fd::AsRawFd as _;
            // SAFETY: valid descriptor, address and option buffers.
            unsafe {
                anyhow::ensure!(
                    libc::bind(fd.as_raw_fd(), (&addr as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
                        == 0,
                    "binding the capture: {}",
                    std::io::Error::last_os_error()
                );
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&timeout as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
            }
            Ok(fd)
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            use std::os::fd::AsRawFd as _;
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !flag.load(Ordering::Relaxed) {
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                // SAFETY: valid buffers; the descriptor lives in this closure.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    )
                };
                if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING as u8 {
                    frames.push(buf[..n as usize].to_vec());
                }
            }
            frames
        });
        Ok(Capture { stop, thread: Some(thread) })
    }

    /// Stop, after letting frames in flight land, and return what arrived.
    pub fn stop(mut self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(150));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
