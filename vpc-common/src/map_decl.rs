//! What a map declaration says (see `maps`): enough for the agent to size a map and check a
//! pinned copy, and for a test to hold the kernel object to it.

use crate::maps::Size;

/// The kinds of map the data path uses, numbered as the kernel's `bpf_map_type`. The names
/// are aya-ebpf's, so a declaration reads like the static it declares.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    HashMap = 1,
    Array = 2,
    ProgramArray = 3,
    PerCpuHashMap = 5,
    PerCpuArray = 6,
    LpmTrie = 11,
    DevMap = 14,
    RingBuf = 27,
}

/// How many entries a map holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entries {
    /// Always this many: slots the code numbers itself.
    Fixed(u32),
    /// As many as a `--map-size` option says.
    Sized(Size),
    /// This many per unit of a `--map-size` option.
    PerUnit(Size, u32),
    /// This many per unit of a `--map-size` option, and this many more (a row for "none").
    PerUnitAndOne(Size, u32),
}

impl Entries {
    /// The entries when the options have the sizes `size` gives.
    pub fn with(self, size: impl Fn(Size) -> u32) -> u32 {
        match self {
            Entries::Fixed(n) => n,
            Entries::Sized(s) => size(s),
            Entries::PerUnit(s, n) => size(s).saturating_mul(n),
            Entries::PerUnitAndOne(s, n) => size(s).saturating_add(1).saturating_mul(n),
        }
    }

    /// The entries with every option at its default: what the kernel object declares.
    pub const fn default(self) -> u32 {
        match self {
            Entries::Fixed(n) => n,
            Entries::Sized(s) => s.default_entries(),
            Entries::PerUnit(s, n) => s.default_entries().saturating_mul(n),
            Entries::PerUnitAndOne(s, n) => s.default_entries().saturating_add(1).saturating_mul(n),
        }
    }
}

/// One map the agent shares with the data path by its pinned name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapDecl {
    pub name: &'static str,
    pub kind: MapKind,
    /// Bytes of a key and of a value (of one CPU's value, for per-CPU maps).
    pub key_size: u32,
    pub value_size: u32,
    pub entries: Entries,
}

impl MapDecl {
    /// A map of `K -> V`.
    pub const fn new<K, V>(name: &'static str, kind: MapKind, entries: Entries) -> MapDecl {
        // An LPM trie's key starts with its prefix length.
        let prefix = if matches!(kind, MapKind::LpmTrie) { size_of::<u32>() } else { 0 };
        MapDecl { name, kind, key_size: (prefix + size_of::<K>()) as u32, value_size: size_of::<V>() as u32, entries }
    }

    /// Entries with every option at its default (the size the kernel object is built with).
    pub const fn default_entries(&self) -> u32 {
        self.entries.default()
    }
}

/// A DEVMAP slot as the kernel holds it (`struct bpf_devmap_val`): the target ifindex and a
/// program to run there (none: 0). Only its size matters here.
#[repr(C)]
pub struct DevMapSlot {
    pub ifindex: u32,
    pub prog_fd: u32,
}

/// Declares the `--map-size` options, in the order `--map-size` lists them:
/// `Variant "option" = default;`.
macro_rules! sizes {
    ($( $(#[$doc:meta])* $variant:ident $option:literal = $default:expr; )+) => {
        /// A map size the operator chooses (`--map-size NAME=N`), fixed when the maps are created.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Size {
            $( $(#[$doc])* $variant, )+
        }

        impl Size {
            /// Every option, in declaration order (`Size as usize` is the position).
            pub const ALL: &'static [Size] = &[$(Size::$variant),+];

            /// The name `--map-size` takes.
            pub const fn option(self) -> &'static str {
                match self {
                    $(Size::$variant => $option,)+
                }
            }

            pub const fn default_entries(self) -> u32 {
                match self {
                    $(Size::$variant => $default,)+
                }
            }
        }
    };
}

/// Declares the maps: `NAME: Kind<Key, Value>, entries;`. Each gives a name constant (the
/// pinned name, with the doc comment), `decl::NAME` (its `MapDecl`), and a row of `MAPS`.
macro_rules! maps {
    ($( $(#[$doc:meta])* $name:ident: $kind:ident<$key:ty, $value:ty>, $entries:expr; )+) => {
        $( $(#[$doc])* pub const $name: &str = stringify!($name); )+

        /// Each map's declaration, under the map's name.
        pub mod decl {
            use super::*;
            $(
                pub const $name: $crate::map_decl::MapDecl =
                    $crate::map_decl::MapDecl::new::<$key, $value>(super::$name, $crate::map_decl::MapKind::$kind, $entries);
            )+
        }

        /// Every map the agent shares with the data path, in declaration order.
        pub const MAPS: &[$crate::map_decl::MapDecl] = &[$(decl::$name),+];
    };
}

pub(crate) use {maps, sizes};
