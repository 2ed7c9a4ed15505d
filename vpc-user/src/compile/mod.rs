//! Compile: a pure function from the validated model (bound to this host) to the exact entries
//! every data-path map must hold. No I/O here; `dataplane::sync` makes the kernel maps equal to it.

use std::collections::BTreeMap;

use vpc_common::{addr_raw, route_kind, AddrKey, Eni, Port, Route, RouteKey, ENI_F_NO_SRC_DST_CHECK, ROUTE_TABLE_BITS};

use crate::model::{self, binding::Binding, topology::NextHop, Topology};

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
        let vpc_id = ids.vpc(&vpc.id);
        let port_of = |eni: &model::Eni| {
            let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
            Port { port: ids.port(&eni.id), flags: 0, mac: eni.mac, gw_mac: vswitch.gateway_mac }
        };
        for table in &vpc.route_tables {
            let table_id = ids.route_table(&table.id);
            for (dst, hop) in vpc.effective_routes(table) {
                let route = match hop {
                    NextHop::Local => Route { kind: route_kind::LOCAL, arg: vpc_id, hop: Port::default() },
                    NextHop::Host => Route { kind: route_kind::HOST, arg: 0, hop: Port::default() },
                    NextHop::Blackhole => Route { kind: route_kind::BLACKHOLE, arg: 0, hop: Port::default() },
                    NextHop::Eni { eni } => {
                        let target = vpc.eni(&eni).expect("validated reference");
                        Route { kind: route_kind::ENI, arg: 0, hop: port_of(target) }
                    }
                };
                out.routes.insert(lpm_key(table_id, dst.network().octets(), dst.prefix_len()), route);
            }
        }
        for eni in &vpc.enis {
            let vswitch = vpc.vswitch(&eni.vswitch).expect("validated reference");
            let port = port_of(eni);
            out.addrs.insert(AddrKey { vpc_id, addr: addr_raw(eni.ip.octets()) }, port);
            let Some(&ifindex) = binding.ifindex.get(&eni.id) else { continue };
            out.ports.insert(port.port, ifindex);
            let table = vpc.route_table(&vswitch.route_table).expect("validated reference");
            out.enis.insert(
                ifindex,
                Eni {
                    ip: addr_raw(eni.ip.octets()),
                    gw_ip: addr_raw(vswitch.gateway.octets()),
                    vpc_net: addr_raw(vpc.cidr.network().octets()),
                    vpc_mask: addr_raw(vpc.cidr.netmask().octets()),
                    vpc_id,
                    vswitch_id: ids.vswitch(&vswitch.id),
                    route_table: ids.route_table(&table.id),
                    port: port.port,
                    flags: if eni.source_dest_check { 0 } else { ENI_F_NO_SRC_DST_CHECK },
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
