//! `POST /oauth/token`: an OAuth client authenticates (HTTP Basic, a secret in the body, or
//! none for public clients, whichever it registered) and trades an authorization code, with its
//! PKCE verifier, or a refresh token for tokens. Sessions it gets are marked with the client.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::client::Client;
use super::enabled;
use crate::error::AuthError;
use crate::redirect::Origin;
use crate::session::{self, Device};
use crate::user::User;
use crate::AuthState;

/// The `amr` method of sessions an OAuth client obtained.
const METHOD: &str = "oauth_provider/authorization_code";

fn oauth(error: &'static str, description: impl Into<String>) -> AuthError {
    AuthError::OAuthServer {
        error,
        description: description.into(),
    }
}

fn bad_client(why: impl Into<String>) -> AuthError {
    AuthError::InvalidClientCredentials(why.into())
}

/// The request's parameters, from a JSON or a form body.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, AuthError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if json {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad_client(
                "Invalid client credentials: failed to parse JSON body",
            )),
        };
    }
    Ok(url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect())
}

fn text<'a>(p: &'a Map<String, Value>, key: &str) -> &'a str {
    p.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Finds and authenticates the calling client.
async fn authenticate(
    db: &deadpool_postgres::Object,
    headers: &HeaderMap,
    p: &Map<String, Value>,
) -> Result<Client, AuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    let (id, secret, method) = match basic {
        Some(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| {
                    bad_client("Invalid client credentials: invalid basic auth encoding")
                })?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad_client("Invalid client credentials: invalid basic auth format"))?;
            let (id, secret) = decoded.split_once(':').ok_or_else(|| {
                bad_client("Invalid client credentials: invalid basic auth format")
            })?;
            (id.to_owned(), secret.to_owned(), "client_secret_basic")
        }
        None => {
            let id = text(p, "client_id");
            if id.is_empty() {
                return Err(bad_client(
                    "Invalid client credentials: client_id is required",
                ));
            }
            let secret = text(p, "client_secret");
            let method = if secret.is_empty() {
                "none"
            } else {
                "client_secret_post"
            };
            (id.to_owned(), secret.to_owned(), method)
        }
    };
    let id = Uuid::parse_str(&id).map_err(|_| bad_client("Invalid client_id format"))?;
    let client = Client::find(db, id)
        .await?
        .ok_or_else(|| bad_client("Invalid client credentials"))?;
    if client.auth_method != method {
        return Err(bad_client(format!(
            "invalid authentication method: client is registered for '{}' but '{method}' was used",
            client.auth_method
        )));
    }
    if client.is_public() {
        if !secret.is_empty() {
            return Err(bad_client("public clients must not provide client_secret"));
        }
    } else if secret.is_empty() {
        return Err(bad_client(
            "confidential clients must provide client_secret",
        ));
    } else if !client.secret_matches(&secret) {
        return Err(bad_client("invalid client credentials"));
    }
    Ok(client)
}

/// The token endpoint.
pub async fn token(
    State(state): State<AuthState>,
    origin: Origin,
    device: Device,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let p = params(&headers, &body)?;
    let db = state.ctx.admin.get().await?;
    let client = authenticate(&db, &headers, &p).await?;
    drop(db);
    let grant_type = text(&p, "grant_type");
    if grant_type.is_empty() {
        return Err(oauth("invalid_request", "grant_type is required"));
    }
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(oauth(
            "unsupported_grant_type",
            format!("Client is not allowed to use grant type: {grant_type}"),
        ));
    }
    let issued = match grant_type {
        "authorization_code" => code_grant(&state, &origin, &device, &client, &p).await?,
        "refresh_token" => refresh_grant(&state, &origin, &client, &p).await?,
        other => {
            return Err(oauth(
                "unsupported_grant_type",
                format!("Unsupported grant type: {other}"),
            ))
        }
    };
    let mut out = json!({
        "access_token": issued["access_token"],
        "token_type": issued["token_type"],
        "expires_in": issued["expires_in"],
        "refresh_token": issued["refresh_token"],
    });
    if let Some(id_token) = issued.get("id_token") {
        out["id_token"] = id_token.clone();
    }
    Ok(Json(out))
}

/// The PKCE check: `S256` (base64url SHA-256 of the verifier) only. A code without a
/// challenge, or with a `plain` one (stored before `/oauth/authorize` refused them), is not
/// exchanged: OAuth 2.1 requires PKCE, and `plain` protects nothing.
fn verify_pkce(challenge: &str, method: &str, verifier: &str) -> Result<(), &'static str> {
    if challenge.is_empty() {
        return Err("code challenge is required");
    }
    if verifier.is_empty() {
        return Err("code_verifier is required when PKCE challenge is present");
    }
    let expected = match method {
        "s256" => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
        _ => return Err("code challenge method not supported"),
    };
    if expected.len() == challenge.len()
        && expected
            .bytes()
            .zip(challenge.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    {
        Ok(())
    } else {
        Err("code challenge does not match previously saved code verifier")
    }
}

async fn code_grant(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    client: &Client,
    p: &Map<String, Value>,
) -> Result<Value, AuthError> {
    let code = text(p, "code");
    if code.is_empty() {
        return Err(oauth(
            "invalid_request",
            "code is required for authorization_code grant",
        ));
    }
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            "select id, client_id, user_id, redirect_uri, scope, resource, \
               coalesce(code_challenge, ''), coalesce(code_challenge_method::text, ''), \
               expires_at < now(), nonce \
             from auth.oauth_authorizations \
             where authorization_code = $1 and status = 'approved' for update",
            &[&code],
        )
        .await?
        .ok_or_else(|| oauth("invalid_grant", "Invalid authorization code"))?;
    let (id, owner, user_id): (Uuid, Uuid, Option<Uuid>) = (row.get(0), row.get(1), row.get(2));
    let (redirect_uri, scope, resource): (String, String, Option<String>) =
        (row.get(3), row.get(4), row.get(5));
    if row.get::<_, bool>(8) {
        return Err(oauth("invalid_grant", "Authorization code has expired"));
    }
    if owner != client.id {
        return Err(oauth(
            "invalid_grant",
            "Authorization code was not issued for this client",
        ));
    }
    let asked_resource = text(p, "resource");
    if !asked_resource.is_empty() && Some(asked_resource) != resource.as_deref() {
        return Err(oauth(
            "invalid_grant",
            "Authorization code resource does not match the resource parameter",
        ));
    }
    // Required, as OAuth 2.0 requires it when the authorization request had one (every
    // request here has): GoTrue checks it only when sent.
    let asked_redirect = text(p, "redirect_uri");
    if asked_redirect.is_empty() {
        return Err(oauth(
            "invalid_request",
            "redirect_uri is required for authorization_code grant",
        ));
    }
    if asked_redirect != redirect_uri {
        return Err(oauth("invalid_grant", "Invalid redirect_uri"));
    }
    verify_pkce(row.get(6), row.get(7), text(p, "code_verifier"))
        .map_err(|e| oauth("invalid_grant", format!("PKCE verification failed: {e}")))?;
    let user_id = user_id
        .ok_or_else(|| oauth("invalid_grant", "Authorization code has no associated user"))?;
    let user = User::find(&tx, user_id)
        .await?
        .ok_or_else(|| oauth("invalid_grant", "User not found for authorization code"))?;
    if user.is_banned() {
        return Err(oauth("access_denied", "User is banned"));
    }
    let created = session::create(state, &tx, origin, device, &user, METHOD).await?;
    let session_id: Uuid = tx
        .query_one(
            "update auth.sessions set oauth_client_id = $2, scopes = $3 \
             where id = (select session_id from auth.refresh_tokens where token = $1) \
             returning id",
            &[&created.refresh_token, &client.id, &scope],
        )
        .await?
        .get(0);
    // Signed again now that the session names its client (the `client_id` claim).
    let issued =
        session::issue(state, &tx, origin, &user, session_id, created.refresh_token).await?;
    tx.execute(
        "delete from auth.oauth_authorizations where id = $1",
        &[&id],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, client_id = %client.id, "OAuth code exchanged");
    let mut out = issued.to_json(state);
    let scopes = super::scope_list(&scope);
    if super::id_token::wanted(&scopes) {
        let nonce: Option<String> = row.get(9);
        let issuer = origin.issuer(&state.settings);
        out["id_token"] = json!(super::id_token::sign(
            state,
            &issuer,
            &user,
            client.id,
            nonce.as_deref(),
            &scopes
        )?);
    }
    Ok(out)
}

async fn refresh_grant(
    state: &AuthState,
    origin: &Origin,
    client: &Client,
    p: &Map<String, Value>,
) -> Result<Value, AuthError> {
    let token = text(p, "refresh_token");
    if token.is_empty() {
        return Err(oauth(
            "invalid_request",
            "refresh_token is required for refresh_token grant",
        ));
    }
    let mut body: crate::token::refresh::RefreshGrant =
        serde_json::from_value(json!({ "refresh_token": token }))
            .map_err(|e| AuthError::Internal(e.to_string()))?;
    body.client = Some(client.id);
    crate::token::refresh::grant(state, origin, body).await
}

#[cfg(test)]
mod tests {
    use super::verify_pkce;

    #[test]
    fn pkce_s256_only() {
        // The challenge computed independently (Python's hashlib and base64).
        let verifier = "dBjftJeZ4CVP-mJ92K9qmzXrjeU_1aX4-9Q7D_Kz4fk";
        let challenge = "inLSWSlVJLDw0nFbC5zs1mq6HcykOhmNHN6gYAzHvTg";
        assert!(verify_pkce(challenge, "s256", verifier).is_ok());
        assert!(verify_pkce(challenge, "s256", "other").is_err());
        assert!(verify_pkce("abc", "plain", "abc").is_err());
        assert!(verify_pkce("", "", "abc").is_err());
        assert_eq!(
            verify_pkce(challenge, "s256", ""),
            Err("code_verifier is required when PKCE challenge is present")
        );
    }
}
