//! Host-wide names the product creates: network namespaces and host-side interfaces of lab
//! ENIs. A prefix keeps side-by-side labs (and parallel tests) apart.

use crate::model::{Eni, Topology, addr::fnv1a};

/// Linux interface names are at most 15 bytes.
pub const IFNAMSIZ_MAX: usize = 15;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    pub prefix: String,
}

impl Naming {
    pub fn new(prefix: impl Into<String>) -> Self {
        Naming { prefix: prefix.into() }
    }

    /// The lab namespace of an ENI: the prefix and the ENI name.
    pub fn netns(&self, eni: &str) -> String {
        format!("{}{eni}", self.prefix)
    }

    /// The host-side interface of an ENI: the one the file names, else `<prefix>ve-<eni>`, with
    /// the tail replaced by a hash when that is longer than 15 bytes.
    pub fn host_ifname(&self, eni: &Eni) -> String {
        self.host_ifname_of(&eni.name, eni.interface.as_deref())
    }

    /// Every ENI's and gateway's host-side interface: (ID, name, interface).
    pub fn interfaces<'a>(&'a self, topology: &'a Topology) -> impl Iterator<Item = (&'a str, &'a str, String)> + 'a {
        let enis = topology.enis().map(|(_, _, e)| (e.id.as_str(), e.name.as_str(), self.host_ifname(e)));
        let gateways = topology
            .vpcs
            .iter()
            .flat_map(|v| &v.gateways)
            .map(|g| (g.id.as_str(), g.name.as_str(), self.host_ifname_of(&g.name, g.interface.as_deref())));
        enis.chain(gateways)
    }

    /// `host_ifname` from an ENI's name and its `interface:` setting.
    pub fn host_ifname_of(&self, eni: &str, interface: Option<&str>) -> String {
        match interface {
            Some(name) => name.to_string(),
            None => fit(&format!("{}ve-{eni}", self.prefix)),
        }
    }
}

/// `name` if it fits an interface name, else its first bytes and a short stable hash.
pub fn fit(name: &str) -> String {
    if name.len() <= IFNAMSIZ_MAX && name.is_ascii() {
        return name.to_string();
    }
    let hash = format!("{:06x}", fnv1a(name.as_bytes()) & 0xff_ffff);
    let head: String = name.chars().filter(char::is_ascii).take(IFNAMSIZ_MAX - hash.len() - 1).collect();
    format!("{head}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eni(name: &str, interface: Option<&str>) -> Eni {
        Eni {
            id: "eni-x".into(),
            name: name.into(),
            vswitch: "web".into(),
            ip: "10.0.0.5".parse().unwrap(),
            mac: [2, 0, 0, 0, 0, 1],
            interface: interface.map(Into::into),
            source_dest_check: true,
            security_groups: vec![],
            mtu: 1500,
            conntrack_limit: 32768,
            host: None,
        }
    }

    #[test]
    fn names_fit_and_stay_distinct() {
        let n = Naming::new("t1-");
        assert_eq!(n.netns("web1"), "t1-web1");
        assert_eq!(n.host_ifname(&eni("web1", None)), "t1-ve-web1");
        assert_eq!(n.host_ifname(&eni("web1", Some("tap7"))), "tap7");
        let long_a = n.host_ifname(&eni("a-very-long-eni-name-1", None));
        let long_b = n.host_ifname(&eni("a-very-long-eni-name-2", None));
        assert!(long_a.len() <= 15 && long_b.len() <= 15);
        assert_ne!(long_a, long_b);
        assert!(fit("网络网络").is_ascii());
    }
}
