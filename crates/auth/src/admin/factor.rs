//! A user's MFA factors as admins see them: listed and removed.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::parse_id;
use crate::bearer::Admin;
use crate::error::AuthError;
use crate::mfa::factor::Factor;
use crate::user::User;
use crate::AuthState;

/// `GET /admin/users/{id}/factors`.
pub async fn factors(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    let id = parse_id(&id)?;
    let db = state.ctx.admin.get().await?;
    User::find(&db, id).await?.ok_or(AuthError::UserNotFound)?;
    let list = Factor::of_user(&db, id).await?;
    Ok(Json(Value::Array(
        list.iter().map(Factor::to_json).collect(),
    )))
}

/// `DELETE /admin/users/{id}/factors/{factor_id}`: answers the removed factor's id.
pub async fn delete_factor(
    State(state): State<AuthState>,
    _admin: Admin,
    Path((id, factor)): Path<(String, String)>,
) -> Result<Json<Value>, AuthError> {
    let id = parse_id(&id)?;
    let factor =
        Uuid::parse_str(&factor).map_err(|_| AuthError::Validation("invalid factor id".into()))?;
    let db = state.ctx.admin.get().await?;
    let n = db
        .execute(
            "delete from auth.mfa_factors where id = $1 and user_id = $2",
            &[&factor, &id],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::NotFound);
    }
    crate::mfa::downgrade_sessions(&db, factor).await?;
    Ok(Json(json!({"id": factor})))
}
