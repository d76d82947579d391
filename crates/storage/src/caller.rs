//! Who a request comes from, and the transaction it runs in as that role.
//!
//! The Storage API trusts only the `Authorization` bearer (the edge fills it from the apikey):
//! verified with the project's keys, its `role` claim must be one `authenticator` may become.
//! Every catalogue read and write then runs in a transaction as that role with
//! `request.jwt.claims` set, so the project's RLS policies on `storage.objects` and
//! `storage.buckets` decide, and `service_role` (BYPASSRLS) sees everything.

use axum::http::{header, HeaderMap};
use craftbase_shared::{Claims, ServiceContext};

use crate::error::StorageError;

/// The verified caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: String,
    pub claims: Claims,
}

impl Caller {
    /// The caller named by the request's bearer token; none or a bad one is refused as the
    /// Storage API refuses it (403 in the body).
    pub fn from_headers(ctx: &ServiceContext, headers: &HeaderMap) -> Result<Self, StorageError> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| match v.get(..7) {
                Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => v[7..].trim(),
                _ => v.trim(),
            })
            .unwrap_or("");
        if token.is_empty() {
            return Err(StorageError::AccessDenied("Invalid Compact JWS".into()));
        }
        let claims = ctx.jwt.verify_access_token(token).map_err(|e| {
            StorageError::AccessDenied(match e {
                craftbase_shared::JwtError::Expired => {
                    "\"exp\" claim timestamp check failed".into()
                }
                _ => "signature verification failed".into(),
            })
        })?;
        let role = ctx
            .roles
            .resolve(Some(&claims))
            .map_err(|_| StorageError::AccessDenied("Access denied: Invalid role".into()))?
            .to_owned();
        Ok(Self { role, claims })
    }

    /// The user's id (`sub`), which becomes an object's or bucket's owner.
    pub fn owner(&self) -> Option<&str> {
        self.claims.get("sub").and_then(|s| s.as_str())
    }

    /// Starts `client`'s transaction as this caller.
    pub async fn begin<'a>(
        &self,
        client: &'a mut deadpool_postgres::Object,
    ) -> Result<deadpool_postgres::Transaction<'a>, StorageError> {
        let tx = client.transaction().await?;
        let claims = serde_json::Value::Object(self.claims.clone()).to_string();
        tx.execute(
            "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true), \
             set_config('request.jwt.claim.sub', coalesce($3, ''), true), \
             set_config('request.jwt.claim.role', $1, true), \
             set_config('storage.allow_delete_query', 'true', true)",
            &[&self.role, &claims, &self.owner()],
        )
        .await?;
        Ok(tx)
    }
}

/// A transaction as the database owner, for what the Storage API does as its superuser:
/// public and signed downloads, bucket settings an upload must obey, signed uploads.
pub async fn begin_owner(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StorageError> {
    let tx = client.transaction().await?;
    tx.execute(
        "select set_config('storage.allow_delete_query', 'true', true)",
        &[],
    )
    .await?;
    Ok(tx)
}

/// Who writes an object's row: the request's caller under RLS, or the owner for a signed
/// upload (permission was checked, under RLS, when the URL was signed) on behalf of `sub`.
pub enum Actor {
    Caller(Caller),
    Owner { sub: Option<String> },
}

impl Actor {
    /// The pool this actor's transactions run on.
    pub fn pool<'a>(&self, ctx: &'a ServiceContext) -> &'a deadpool_postgres::Pool {
        match self {
            Self::Caller(_) => &ctx.db,
            Self::Owner { .. } => &ctx.admin,
        }
    }

    pub async fn begin<'a>(
        &self,
        client: &'a mut deadpool_postgres::Object,
    ) -> Result<deadpool_postgres::Transaction<'a>, StorageError> {
        match self {
            Self::Caller(caller) => caller.begin(client).await,
            Self::Owner { .. } => begin_owner(client).await,
        }
    }

    /// The user recorded as the object's owner.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Self::Caller(caller) => caller.owner(),
            Self::Owner { sub } => sub.as_deref(),
        }
    }
}
