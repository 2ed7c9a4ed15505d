//! Address arithmetic of the guide: reserved addresses of a VSwitch and its gateway.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::constants::RESERVED_AT_END;

/// The gateway of a VSwitch: the third-from-last address of its CIDR (192.168.1.253 for
/// 192.168.1.0/24). The guide reserves the first address and the last three.
pub fn gateway(cidr: Ipv4Net) -> Ipv4Addr {
    // The first of the reserved addresses at the end.
    Ipv4Addr::from(u32::from(cidr.broadcast()) - (RESERVED_AT_END - 1))
}

/// Whether an ENI may not use `ip` in `cidr`: the network address and the last three.
pub fn is_reserved(cidr: Ipv4Net, ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    ip == u32::from(cidr.network()) || ip + RESERVED_AT_END > u32::from(cidr.broadcast())
}

/// Addresses an ENI can use in `cidr`: its size minus the four reserved ones.
pub fn available(cidr: Ipv4Net) -> u64 {
    (1u64 << (32 - cidr.prefix_len())) - 1 - u64::from(RESERVED_AT_END)
}

/// A MAC derived from a stable hash, with the given first octet (locally administered unicast).
pub fn derived_mac(first_octet: u8, seed: &str) -> [u8; 6] {
    let h = fnv1a(seed.as_bytes()).to_be_bytes();
    [first_octet, h[0], h[1], h[2], h[3], h[4]]
}

/// FNV-1a, 64 bit: a stable hash (std's hasher is randomised per process).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn gateway_is_third_from_last() {
        assert_eq!(gateway(net("192.168.1.0/24")), Ipv4Addr::new(192, 168, 1, 253));
        assert_eq!(gateway(net("10.0.0.0/8")), Ipv4Addr::new(10, 255, 255, 253));
        assert_eq!(gateway(net("192.168.0.0/29")), Ipv4Addr::new(192, 168, 0, 5));
    }

    #[test]
    fn reserved_are_first_and_last_three() {
        let c = net("192.168.1.0/24");
        let reserved: Vec<u8> = (0..=255u8).filter(|i| is_reserved(c, Ipv4Addr::new(192, 168, 1, *i))).collect();
        assert_eq!(reserved, vec![0, 253, 254, 255]);
        assert_eq!(available(c), 252);
        assert_eq!(available(net("172.31.0.0/20")), 4092);
        assert_eq!(available(net("192.168.0.0/29")), 4);
    }

    #[test]
    fn mac_round_trip_and_errors() {
        let mac = derived_mac(0x02, "web1");
        assert_eq!(mac[0], 0x02);
        assert_eq!(parse_mac(&format_mac(&mac)), Some(mac));
        assert_eq!(derived_mac(0x02, "web1"), mac, "derivation is stable");
        assert_ne!(derived_mac(0x02, "web2"), mac);
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "zz:00:00:00:00:00", "2:00:00:00:00:00"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
