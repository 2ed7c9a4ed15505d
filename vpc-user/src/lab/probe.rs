//! Real traffic between lab guests: ICMP echo with the system ping, and a tiny TCP "whoami"
//! service whose answer says which guest a connection really reached.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
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
