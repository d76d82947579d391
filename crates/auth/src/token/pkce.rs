//! PKCE: the flow state saved when a flow starts with a `code_challenge`, and
//! `grant_type=pkce`, which trades the auth code and its verifier for a session.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::AuthError;
use crate::redirect::Origin;
use crate::session::Device;
use crate::user::User;
use crate::{session, AuthState};

/// How long an auth code may wait for its exchange, as GoTrue allows.
const FLOW_STATE_TTL_SECONDS: f64 = 300.0;

/// A client's code challenge, given when it starts a flow.
#[derive(Debug, Clone)]
pub struct FlowRequest {
    challenge: String,
    method: &'static str,
}

impl FlowRequest {
    /// The challenge from a request's two fields; both null means the implicit flow.
    pub fn from_parts(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> Result<Option<FlowRequest>, AuthError> {
        let challenge = match challenge.map(str::trim) {
            None | Some("") => return Ok(None),
            Some(c) => c,
        };
        let method = match method.map(str::to_ascii_lowercase).as_deref() {
            Some("s256") => "s256",
            Some("plain") => "plain",
            _ => {
                return Err(AuthError::Validation(
                    "code challenge method not supported".into(),
                ))
            }
        };
        if !(43..=128).contains(&challenge.len()) {
            return Err(AuthError::Validation(
                "code challenge has to be between 43 and 128 characters".into(),
            ));
        }
        Ok(Some(FlowRequest {
            challenge: challenge.to_owned(),
            method,
        }))
    }

    /// Saves the flow state (its user is set later for OAuth); returns its id and auth code.
    pub async fn save(
        &self,
        db: &impl GenericClient,
        user_id: Option<Uuid>,
        provider_type: &str,
        authentication_method: &str,
    ) -> Result<(Uuid, String), AuthError> {
        crate::sweep::before_insert(db, crate::sweep::Expiring::FlowState).await?;
        let id = Uuid::new_v4();
        let auth_code = Uuid::new_v4().to_string();
        db.execute(
            "insert into auth.flow_state (id, user_id, auth_code, code_challenge_method, \
               code_challenge, provider_type, created_at, updated_at, authentication_method) \
             values ($1, $2, $3, $4::text::auth.code_challenge_method, $5, $6, now(), now(), $7)",
            &[
                &id,
                &user_id,
                &auth_code,
                &self.method,
                &self.challenge,
                &provider_type,
                &authentication_method,
            ],
        )
        .await?;
        Ok((id, auth_code))
    }
}

/// The auth code of the newest unexpired flow a user started for `authentication_method`.
pub async fn pending_code(
    db: &impl GenericClient,
    user_id: Uuid,
    authentication_method: &str,
) -> Result<Option<String>, AuthError> {
    Ok(db
        .query_opt(
            "select auth_code from auth.flow_state where user_id = $1 \
               and authentication_method = $2 order by created_at desc limit 1",
            &[&user_id, &authentication_method],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The body of `grant_type=pkce`.
#[derive(Deserialize)]
pub struct PkceGrant {
    auth_code: Option<String>,
    code_verifier: Option<String>,
}

pub async fn grant(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    body: PkceGrant,
) -> Result<Value, AuthError> {
    let (Some(code), Some(verifier)) = (
        body.auth_code.filter(|c| !c.is_empty()),
        body.code_verifier.filter(|v| !v.is_empty()),
    ) else {
        return Err(AuthError::Validation(
            "invalid request: both auth code and code verifier should be non-empty".into(),
        ));
    };
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "delete from auth.flow_state where auth_code = $1 returning user_id, \
               code_challenge_method::text, code_challenge, authentication_method, \
               now() > created_at + make_interval(secs => $2), provider_access_token, \
               provider_refresh_token",
            &[&code, &FLOW_STATE_TTL_SECONDS],
        )
        .await?;
    let Some(row) = row else {
        return Err(AuthError::FlowStateNotFound);
    };
    let (user_id, method, challenge, auth_method, expired): (
        Option<Uuid>,
        String,
        String,
        String,
        bool,
    ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if expired {
        tx.commit().await?;
        return Err(AuthError::FlowStateExpired);
    }
    let computed = match method.as_str() {
        "s256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier,
    };
    if computed != challenge {
        return Err(AuthError::BadCodeVerifier);
    }
    let user_id = user_id.ok_or(AuthError::FlowStateNotFound)?;
    let user = User::find(&tx, user_id).await?.ok_or(AuthError::UserGone)?;
    let issued = session::create(state, &tx, origin, device, &user, &auth_method).await?;
    tx.commit().await?;
    let mut body = issued.to_json(state);
    if let Some(token) = row.get::<_, Option<String>>(5) {
        body["provider_token"] = token.into();
    }
    if let Some(token) = row.get::<_, Option<String>>(6) {
        body["provider_refresh_token"] = token.into();
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::FlowRequest;

    #[test]
    fn challenges_are_optional_but_checked_when_given() {
        assert!(FlowRequest::from_parts(None, None).unwrap().is_none());
        assert!(FlowRequest::from_parts(Some(""), Some("s256"))
            .unwrap()
            .is_none());
        let c = "a".repeat(43);
        assert!(FlowRequest::from_parts(Some(&c), Some("S256"))
            .unwrap()
            .is_some());
        assert!(FlowRequest::from_parts(Some(&c), Some("md5")).is_err());
        assert!(FlowRequest::from_parts(Some("short"), Some("s256")).is_err());
    }
}
