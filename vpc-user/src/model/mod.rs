//! The VPC resource model: what the user asked for, validated against every rule of the guide,
//! and the reference semantics the data path must match (`forward`).
//!
//! Each layer imports only from the layers before it:
//! - `constants`, `error`, `names`, `addr`, `quotas`, `change` (what a diff reports);
//! - `kinds`: one file per resource kind with all the model has for it -- its document shapes,
//!   ID prefix, validated type and how its changes read;
//! - `spec` (the document as written, each kind's shapes at their old paths) and `locate` (where
//!   the resource with an ID is in a document);
//! - `route`, `multicast`, `flowlog`, `vpc` (the validated types at their old paths), `security`
//!   (checking rules, verdicts) and `topology` (the region, and the types at the paths callers use);
//! - `normalize` (fills in a document) and `validate` (turns it into a `Topology`);
//! - what works on a topology: `ids`, `binding`, `conntrack`, `ecmp`, `forward`, `diff`.

pub mod addr;
pub mod binding;
pub mod change;
pub mod conntrack;
pub mod constants;
pub mod dependencies;
pub mod diff;
pub mod ecmp;
pub mod error;
pub mod flowlog;
pub mod forward;
pub mod ids;
pub mod kinds;
pub mod locate;
pub mod multicast;
pub mod names;
pub mod normalize;
pub mod quotas;
pub mod route;
pub mod security;
pub mod spec;
pub mod topology;
pub mod validate;
pub mod vpc;

pub use error::{Invalid, Problem};
pub use topology::{Eni, Topology, VSwitch, Vpc};
