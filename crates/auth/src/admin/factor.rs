//! A user's MFA factors as admins see them: listed and removed.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::parse_id;
use crate::error::AuthError;
use crate::jwt::Admin;
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
    let rows = db
        .query(
            "select id, friendly_name, factor_type::text, status::text, created_at, updated_at \
             from auth.mfa_factors where user_id = $1 order by created_at",
            &[&id],
        )
        .await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, Uuid>(0),
                "friendly_name": r.get::<_, Option<String>>(1),
                "factor_type": r.get::<_, String>(2),
                "status": r.get::<_, String>(3),
                "created_at": r.get::<_, chrono::DateTime<chrono::Utc>>(4),
                "updated_at": r.get::<_, chrono::DateTime<chrono::Utc>>(5),
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
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
    Ok(Json(json!({"id": factor})))
}
