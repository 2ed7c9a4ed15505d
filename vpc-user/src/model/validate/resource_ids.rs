//! Resource IDs: every resource has a well-formed ID with its kind's prefix, unique in the region.

use crate::model::{
    error::{Problems, code},
    locate::each_resource,
    spec::TopologySpec,
};

/// Check the IDs of `spec`, remembering each in `seen`.
pub(super) fn check<'a>(spec: &'a TopologySpec, seen: &mut std::collections::HashSet<&'a str>, problems: &mut Problems) {
    let mut check = |field: &dyn Fn() -> String, id: &'a Option<String>, prefix: &str| match id {
        Some(id)
            if id
                .strip_prefix(prefix)
                .and_then(|s| s.strip_prefix('-'))
                .is_some_and(|s| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())) =>
        {
            if !seen.insert(id.as_str()) {
                problems.add(code::ID_DUPLICATE, field(), format!("ID {id} is used twice"));
            }
        }
        Some(id) => problems.add(code::ID_MALFORMED, field(), format!("'{id}' is not an ID like {prefix}-abc123")),
        None => problems.add(code::ID_MALFORMED, field(), format!("missing ID (expected {prefix}-...)")),
    };
    each_resource(spec, |location, id| {
        check(&|| format!("{}.id", location.field()), id, location.kind().id_prefix());
    });
}
