//! PKCE towards a provider (RFC 7636): the verifier of one sign-in round trip, kept in
//! `auth.oauth_client_states` until the callback takes it, once, within the state's lifetime.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::STATE_TTL_SECONDS;
use crate::error::AuthError;
use crate::AuthState;

/// A stored verifier's id (carried in the signed state) and its S256 challenge.
pub struct Started {
    pub id: Uuid,
    pub challenge: String,
}

/// Makes and stores a verifier for a round trip through `provider`.
pub async fn start(state: &AuthState, provider: &str) -> Result<Started, AuthError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let id = Uuid::new_v4();
    let db = state.ctx.admin.get().await?;
    db.execute(
        "insert into auth.oauth_client_states (id, provider_type, code_verifier, created_at) \
         values ($1, $2, $3, now())",
        &[&id, &provider, &verifier],
    )
    .await?;
    Ok(Started { id, challenge })
}

/// The verifier of round trip `id`, removed so it serves one exchange; stale ones are swept.
pub async fn take(state: &AuthState, id: Uuid) -> Result<String, AuthError> {
    let db = state.ctx.admin.get().await?;
    let ttl = STATE_TTL_SECONDS as f64;
    db.execute(
        "delete from auth.oauth_client_states \
         where created_at < now() - make_interval(secs => $1)",
        &[&ttl],
    )
    .await?;
    db.query_opt(
        "delete from auth.oauth_client_states where id = $1 returning code_verifier",
        &[&id],
    )
    .await?
    .and_then(|r| r.get::<_, Option<String>>(0))
    .ok_or_else(|| AuthError::Validation("OAuth state has expired or was already used".into()))
}
