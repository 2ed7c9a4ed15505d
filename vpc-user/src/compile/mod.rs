//! Compile: a pure function from the validated model (bound to this host) to the exact entries
//! every data-path map must hold. No I/O here; `dataplane::sync` makes the kernel maps equal to it.

use std::collections::BTreeMap;

use vpc_common::{addr_raw, route_kind, AddrKey, Eni, Port, Route, RouteKey, ROUTE_TABLE_BITS};

use crate::model::{binding::Binding, ids::SYSTEM_TABLE, Topology};

/// An LPM trie key: prefix length (counting the table bits) and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LpmKey {
    pub prefix_len: u32,
    pub key: RouteKey,
}

/// The desired content of every config map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapEntries {
    /// `ENIS`: ifindex -> ENI.
    pub enis: BTreeMap<u32, Eni>,
    /// `ENI_ADDRS`: (VPC, address) -> port.
    pub addrs: BTreeMap<AddrKey, Port>,
    /// `ROUTES`.
    pub routes: BTreeMap<LpmKey, Route>,
    /// `TX_PORTS`: port -> ifindex.
    pub ports: BTreeMap<u32, u32>,
}

/// Build every map entry for `topology` as bound by `binding`.
pub fn compile(topology: &Topology, binding: &Binding) -> MapEntries {
    let ids = &binding.ids;
    let mut out = MapEntries::default();
    for vpc in &topology.vpcs {
        let vpc_id = ids.vpc(&vpc.name);
        let system_table = ids.route_table(&vpc.name, SYSTEM_TABLE);
        for vswitch in &vpc.vswitches {
            out.routes.insert(
                lpm_key(system_table, vswitch.cidr.network().octets(), vswitch.cidr.prefix_len()),
                Route { kind: route_kind::LOCAL, arg: vpc_id },
            );
        }
        for eni in &vpc.enis {
            let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
            let port = ids.port(&eni.name);
            out.addrs.insert(
                AddrKey { vpc_id, addr: addr_raw(eni.ip.octets()) },
                Port { port, flags: 0, mac: eni.mac, gw_mac: vswitch.gateway_mac },
            );
            let Some(&ifindex) = binding.ifindex.get(&eni.name) else { continue };
            out.ports.insert(port, ifindex);
            out.enis.insert(
                ifindex,
                Eni {
                    ip: addr_raw(eni.ip.octets()),
                    gw_ip: addr_raw(vswitch.gateway.octets()),
                    vpc_net: addr_raw(vpc.cidr.network().octets()),
                    vpc_mask: addr_raw(vpc.cidr.netmask().octets()),
                    vpc_id,
                    vswitch_id: ids.vswitch(&vpc.name, &vswitch.name),
                    route_table: system_table,
                    port,
                    flags: 0,
                    mac: eni.mac,
                    gw_mac: vswitch.gateway_mac,
                },
            );
        }
    }
    out
}

/// The LPM key of `addr/prefix_len` in route table `table`.
pub fn lpm_key(table: u32, addr: [u8; 4], prefix_len: u8) -> LpmKey {
    LpmKey { prefix_len: ROUTE_TABLE_BITS + u32::from(prefix_len), key: RouteKey { table, addr: addr_raw(addr) } }
}

#[cfg(test)]
mod tests;
