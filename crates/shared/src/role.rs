//! Which database role a request runs as.
//!
//! The role comes from the JWT's `role` claim (anon without one), and may only be a role the
//! connecting role (`authenticator`) is a member of: a token claiming `postgres` is refused before
//! any SQL runs, not left for `SET ROLE` to catch.

use std::collections::HashSet;

use crate::Claims;

/// The role requests without a JWT, or without a role claim, run as.
pub const ANON_ROLE: &str = "anon";

/// Why a token's role cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoleError {
    #[error("role \"{0}\" does not exist or the API may not switch to it")]
    NotAllowed(String),
    #[error("the role claim is not a string")]
    NotAString,
}

/// The roles the connecting role may switch to, read once at start.
#[derive(Debug, Clone)]
pub struct RoleSwitch {
    allowed: HashSet<String>,
}

impl RoleSwitch {
    /// Reads the roles `client`'s user is a member of (other than itself).
    pub async fn load(client: &tokio_postgres::Client) -> Result<Self, tokio_postgres::Error> {
        let rows = client
            .query(
                "select rolname::text from pg_roles
                 where rolname <> current_user and pg_has_role(current_user, oid, 'member')",
                &[],
            )
            .await?;
        Ok(Self::new(rows.iter().map(|r| r.get::<_, String>(0))))
    }

    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        Self {
            allowed: allowed.into_iter().collect(),
        }
    }

    /// Whether the connecting role may switch to `role`.
    pub fn allows(&self, role: &str) -> bool {
        self.allowed.contains(role)
    }

    /// The role for a request: its token's `role` claim, or anon without a token or claim.
    pub fn resolve<'a>(&self, claims: Option<&'a Claims>) -> Result<&'a str, RoleError> {
        let role = match claims.and_then(|c| c.get("role")) {
            None | Some(serde_json::Value::Null) => ANON_ROLE,
            Some(serde_json::Value::String(role)) => role.as_str(),
            Some(_) => return Err(RoleError::NotAString),
        };
        if self.allowed.contains(role) {
            Ok(role)
        } else {
            Err(RoleError::NotAllowed(role.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_member_roles_resolve() {
        let roles = RoleSwitch::new(["anon", "authenticated", "service_role"].map(String::from));
        let claims = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(roles.resolve(None), Ok("anon"));
        let c = claims(serde_json::json!({"role": "authenticated"}));
        assert_eq!(roles.resolve(Some(&c)), Ok("authenticated"));
        let c = claims(serde_json::json!({"sub": "x"}));
        assert_eq!(roles.resolve(Some(&c)), Ok("anon"));
        let c = claims(serde_json::json!({"role": "postgres"}));
        assert_eq!(
            roles.resolve(Some(&c)),
            Err(RoleError::NotAllowed("postgres".into()))
        );
        let c = claims(serde_json::json!({"role": 1}));
        assert_eq!(roles.resolve(Some(&c)), Err(RoleError::NotAString));
    }
}
