//! `GET /admin/users/{id}/passkeys` and `DELETE /admin/users/{id}/passkeys/{passkey_id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use uuid::Uuid;

use super::credential;
use crate::bearer::Admin;
use crate::error::AuthError;
use crate::user::User;
use crate::AuthState;

/// The user of an admin route; a malformed or unknown id is GoTrue's 404.
async fn user_id(state: &AuthState, id: &str) -> Result<Uuid, AuthError> {
    let id = Uuid::parse_str(id).map_err(|_| AuthError::UserNotFound)?;
    let db = state.ctx.admin.get().await?;
    User::find(&db, id).await?.ok_or(AuthError::UserNotFound)?;
    Ok(id)
}

/// `GET /admin/users/{id}/passkeys`.
pub async fn admin_list(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    let id = user_id(&state, &id).await?;
    let db = state.ctx.admin.get().await?;
    let list = credential::of_user(&db, id).await?;
    Ok(Json(Value::Array(
        list.iter().map(|p| p.to_json()).collect(),
    )))
}

/// `DELETE /admin/users/{id}/passkeys/{passkey_id}`: 204.
pub async fn admin_delete(
    State(state): State<AuthState>,
    _admin: Admin,
    Path((id, passkey)): Path<(String, String)>,
) -> Result<StatusCode, AuthError> {
    let id = user_id(&state, &id).await?;
    let db = state.ctx.admin.get().await?;
    let passkey = credential::owned(&db, id, &passkey).await?;
    db.execute(
        "delete from auth.webauthn_credentials where id = $1",
        &[&passkey],
    )
    .await?;
    tracing::info!(user_id = %id, passkey_id = %passkey, "passkey deleted by an admin");
    Ok(StatusCode::NO_CONTENT)
}
