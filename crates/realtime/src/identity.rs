//! Who a subscriber is to the database: the role and claims its changes and messages are
//! authorized with.

/// The database identity a subscriber's changes are authorized with.
#[derive(Debug, PartialEq, Eq, Hash, Clone)]
pub struct Identity {
    pub role: String,
    /// The verified claims as JSON text; equal texts share one visibility check.
    pub claims: String,
    /// The claims' `sub` as `auth.uid()` reads it (a uuid in PostgreSQL's text form), read
    /// once here: rows of owner-form policies are routed by it (`changes::ownership`).
    pub uid: Option<String>,
}

/// The owner id a claims `sub` stands for: read as a uuid, in PostgreSQL's text form (what
/// `auth.uid()` and `auth.uid()::text` compare). `None` when it is not one.
pub fn owner_id(sub: &str) -> Option<String> {
    uuid::Uuid::parse_str(sub)
        .ok()
        .map(|u| u.hyphenated().to_string())
}
