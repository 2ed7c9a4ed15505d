//! What `diff` reports: one change of a resource, and what each kind's diff (in `kinds`) shares to
//! find them.

use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Change {
    Add { kind: &'static str, name: String },
    Remove { kind: &'static str, name: String },
    Modify { kind: &'static str, name: String, what: String },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Add { kind, name } => write!(f, "+ {kind} {name}"),
            Change::Remove { kind, name } => write!(f, "- {kind} {name}"),
            Change::Modify { kind, name, what } => write!(f, "~ {kind} {name}: {what}"),
        }
    }
}

/// The top-level fields of two versions of a resource that differ (by their serialized form),
/// but `skip` (fields reported on their own).
pub(super) fn changed_fields(old: &impl Serialize, new: &impl Serialize, skip: &[&str]) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k)).map(|k| format!("{k} changed")).collect()
}

/// Adds, removes and changes of resources named by `key`, of kind `kind`.
pub(super) fn by_name<T: Serialize>(out: &mut Vec<Change>, kind: &'static str, old: &[(String, &T)], new: &[(String, &T)]) {
    for (name, now) in new {
        match old.iter().find(|(n, _)| n == name) {
            None => out.push(Change::Add { kind, name: name.clone() }),
            Some((_, before)) => {
                let what = changed_fields(*before, *now, &["id"]);
                if !what.is_empty() {
                    out.push(Change::Modify { kind, name: name.clone(), what: what.join(", ") });
                }
            }
        }
    }
    for (name, _) in old {
        if !new.iter().any(|(n, _)| n == name) {
            out.push(Change::Remove { kind, name: name.clone() });
        }
    }
}
