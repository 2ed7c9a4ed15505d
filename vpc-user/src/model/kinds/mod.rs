//! One home per resource kind: each file holds what the model has for its kind -- the document's
//! shapes (`spec` re-exports them), the ID prefix, the validated type and how its changes read
//! (`diff` walks them in the order an apply reports). How a kind is checked is in
//! `validate::<kind>`; where a resource with an ID is in a document, in `locate`.

pub mod cen;
pub mod eni;
pub mod flow_log;
pub mod gateway;
pub mod multicast;
pub mod route_entry;
pub mod route_table;
pub mod security_group;
pub mod vpc;
pub mod vswitch;

/// serde's `skip_serializing_if` for a flag written only when set.
fn is_false(b: &bool) -> bool {
    !*b
}
