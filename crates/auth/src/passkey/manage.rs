//! `GET /passkeys`, `PATCH /passkeys/{id}` (the friendly name) and `DELETE /passkeys/{id}`:
//! the signed-in user's own passkeys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::credential::{self, MAX_FRIENDLY_NAME_CHARS};
use super::error::WebAuthnError;
use super::registration::require_aal2_with_mfa;
use super::require_enabled;
use crate::bearer::Bearer;
use crate::body::Body;
use crate::error::AuthError;
use crate::user::current;
use crate::AuthState;

/// `GET /passkeys`.
pub async fn list(
    State(state): State<AuthState>,
    bearer: Bearer,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let user = current(&state, &bearer).await?;
    let db = state.ctx.admin.get().await?;
    let list = credential::of_user(&db, user.id).await?;
    Ok(Json(Value::Array(
        list.iter().map(|p| p.to_json()).collect(),
    )))
}

/// The body of `PATCH /passkeys/{id}`.
#[derive(Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    friendly_name: String,
}

/// `PATCH /passkeys/{id}`: renames the passkey; answers it as listed.
pub async fn update(
    State(state): State<AuthState>,
    bearer: Bearer,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let user = current(&state, &bearer).await?;
    if body.friendly_name.is_empty() {
        return Err(WebAuthnError::Invalid("friendly_name is required").into());
    }
    if body.friendly_name.len() > MAX_FRIENDLY_NAME_CHARS {
        return Err(WebAuthnError::Invalid("friendly_name must be 120 characters or less").into());
    }
    let db = state.ctx.admin.get().await?;
    let id = credential::owned(&db, user.id, &id).await?;
    db.execute(
        "update auth.webauthn_credentials set friendly_name = $2, updated_at = now() where id = $1",
        &[&id, &body.friendly_name],
    )
    .await?;
    let updated = credential::of_user(&db, user.id)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(WebAuthnError::PasskeyNotFound)?;
    Ok(Json(updated.to_json()))
}

/// `DELETE /passkeys/{id}`: 204; with a verified MFA factor, only from an `aal2` session.
pub async fn delete(
    State(state): State<AuthState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, AuthError> {
    require_enabled(&state)?;
    let user = current(&state, &bearer).await?;
    require_aal2_with_mfa(&state, &bearer, &user).await?;
    let db = state.ctx.admin.get().await?;
    let id = credential::owned(&db, user.id, &id).await?;
    db.execute(
        "delete from auth.webauthn_credentials where id = $1",
        &[&id],
    )
    .await?;
    tracing::info!(user_id = %user.id, passkey_id = %id, "passkey deleted");
    Ok(StatusCode::NO_CONTENT)
}
