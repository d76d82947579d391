//! A lint's finding: what, where, how bad, and the one-line fix.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Stable name of the rule (`rls_disabled`, …).
    pub id: &'static str,
    pub level: Level,
    /// The table, view, policy or function.
    pub object: String,
    pub message: String,
    pub fix: String,
}
