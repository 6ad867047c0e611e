//! [`TwinsForm`]: which of the two forms of the Twins Loss a run uses (docs/method.md).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which form of the Twins Loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TwinsForm {
    /// Pull the fraternal twin up to its target, never push it away.
    #[default]
    Pull,
    /// Squared distance to the target from both sides.
    TwoSided,
}

impl FromStr for TwinsForm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pull" => Ok(TwinsForm::Pull),
            "two-sided" => Ok(TwinsForm::TwoSided),
            other => Err(format!("`{other}` is not a Twins Loss form (pull, two-sided)")),
        }
    }
}
