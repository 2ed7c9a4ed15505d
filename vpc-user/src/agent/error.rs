//! What a change can fail with: the document breaks a rule (nothing changed), or the host failed
//! it (the previous state was put back). The API maps these to its codes and statuses.

use crate::model::{Invalid, error::Problem};

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// Every rule the new document breaks.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    /// The data path or the store failed; what was there before is back.
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl ChangeError {
    /// One broken rule (a limit found past validation: addresses, rule space).
    pub fn rule(code: &str, field: &str, message: impl Into<String>) -> ChangeError {
        ChangeError::Invalid(Invalid(vec![Problem { code: code.into(), field: field.into(), message: message.into(), parameter: None }]))
    }
}
