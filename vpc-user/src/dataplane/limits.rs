//! The map sizes an operator chooses (`--map-size NAME=N`): one per `vpc_common::maps::Size`
//! option, fixed when a map is first created.

use std::ops::{Index, IndexMut};

use aya::maps::MapInfo;
use vpc_common::maps::{Entries, MAPS, MapDecl, Size};

use super::bpffs::PinDirs;

/// A size for every `Size` option.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Limits([u32; Size::ALL.len()]);

impl Limits {
    /// Every option at its default.
    pub const DEFAULT: Limits = {
        let mut sizes = [0; Size::ALL.len()];
        let mut i = 0;
        while i < sizes.len() {
            sizes[i] = Size::ALL[i].default_entries();
            i += 1;
        }
        Limits(sizes)
    };

    /// The same sizes with `size` at `entries`.
    pub const fn with(mut self, size: Size, entries: u32) -> Limits {
        self.0[size as usize] = entries;
        self
    }

    /// Entries of map `map` with these sizes.
    pub fn entries(&self, map: &MapDecl) -> u32 {
        map.entries.with(|size| self[size])
    }

    /// Set one size from `NAME=N` (e.g. `conntrack=1000000`).
    pub fn set(&mut self, text: &str) -> Result<(), String> {
        let (name, value) = text.split_once('=').ok_or_else(|| format!("'{text}' is not NAME=N"))?;
        let value: u32 = value.trim().parse().ok().filter(|v| *v > 0).ok_or_else(|| format!("'{value}' is not a positive number"))?;
        let Some(&size) = Size::ALL.iter().find(|s| s.option() == name.trim()) else {
            let known: Vec<&str> = Size::ALL.iter().map(|s| s.option()).collect();
            return Err(format!("no map size '{name}' (sizes: {})", known.join(", ")));
        };
        if size == Size::EventRing && (!value.is_power_of_two() || value < 4096) {
            return Err(format!("event-ring={value}: the ring buffer's size is a power of two of at least 4096 bytes"));
        }
        self[size] = value;
        Ok(())
    }

    /// Take the sizes of maps already pinned under `pins` (what an earlier run chose), so a
    /// later command without `--map-size` does not recreate them.
    pub fn adopt_pinned(&mut self, pins: &PinDirs) {
        for &size in Size::ALL {
            // Every map an option sizes was created with it: the first one it sizes alone tells.
            let Some(map) = MAPS.iter().find(|m| m.entries == Entries::Sized(size)) else { continue };
            if let Ok(info) = MapInfo::from_pin(pins.map(map.name)) {
                self[size] = info.max_entries();
            }
        }
    }

    /// Room for security-group rule sets.
    pub fn sg_capacity(&self) -> crate::compile::sg::Capacity {
        crate::compile::sg::Capacity {
            sets: self[Size::SgSets],
            nodes: self[Size::SgNodes],
            chunks: self[Size::SgChunks],
            rules: self[Size::SgRules],
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

impl Index<Size> for Limits {
    type Output = u32;
    fn index(&self, size: Size) -> &u32 {
        &self.0[size as usize]
    }
}

impl IndexMut<Size> for Limits {
    fn index_mut(&mut self, size: Size) -> &mut u32 {
        &mut self.0[size as usize]
    }
}

/// As `--map-size` names them: `{"enis": 4096, ...}`.
impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(Size::ALL.iter().map(|&s| (s.option(), self[s]))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_takes_an_option_by_its_name() {
        let mut limits = Limits::default();
        limits.set("conntrack=1000000").unwrap();
        limits.set(" flow-log = 16").unwrap();
        assert_eq!(limits, Limits::DEFAULT.with(Size::Conntrack, 1_000_000).with(Size::FlowLog, 16));
        let err = limits.set("tables=4").unwrap_err();
        assert_eq!(
            err,
            "no map size 'tables' (sizes: enis, eni-index, routes, addrs, groups, conntrack, sg-sets, sg-nodes, sg-chunks, sg-rules, flow-log, mcast-groups, mcast-members, event-ring, hosts)"
        );
        assert!(limits.set("event-ring=5000").unwrap_err().contains("power of two"));
        assert!(limits.set("event-ring=2048").unwrap_err().contains("at least 4096"));
        limits.set("event-ring=8192").unwrap();
        assert_eq!(limits.set("enis=0").unwrap_err(), "'0' is not a positive number");
        assert_eq!(limits.set("enis").unwrap_err(), "'enis' is not NAME=N");
    }

    #[test]
    fn a_map_follows_its_option() {
        let limits = Limits::DEFAULT.with(Size::Enis, 16);
        assert_eq!(limits.entries(&vpc_common::maps::decl::TX_PORTS), 16);
        assert_eq!(limits.entries(&vpc_common::maps::decl::FRAGS), 16 * vpc_common::frag::FRAG_SLOTS);
        assert_eq!(limits.entries(&vpc_common::maps::decl::CONFIG), 4);
        assert_eq!(Limits::DEFAULT.with(Size::Enis, u32::MAX).entries(&vpc_common::maps::decl::FRAGS), u32::MAX, "saturates");
    }
}
