//! A user's standing consents to OAuth clients: `GET /user/oauth/grants` lists them and
//! `DELETE /user/oauth/grants?client_id=` withdraws one, ending that client's sessions.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::client::{Client, COLUMNS};
use super::{enabled, scope_list};
use crate::bearer::Bearer;
use crate::error::AuthError;
use crate::AuthState;

/// `GET /user/oauth/grants`: `[{client, scopes, granted_at}]`, newest first.
pub async fn list(
    State(state): State<AuthState>,
    bearer: Bearer,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let user = bearer.user_id()?;
    let db = state.ctx.admin.get().await?;
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "select {columns}, g.scopes, g.granted_at from auth.oauth_consents g \
         join auth.oauth_clients c on c.id = g.client_id and c.deleted_at is null \
         where g.user_id = $1 and g.revoked_at is null order by g.granted_at desc"
    );
    let grants: Vec<Value> = db
        .query(&sql, &[&user])
        .await?
        .iter()
        .map(|r| {
            let scopes: String = r.get(12);
            let granted_at: chrono::DateTime<chrono::Utc> = r.get(13);
            json!({
                "client": Client::from_row(r).details(),
                "scopes": scope_list(&scopes),
                "granted_at": granted_at,
            })
        })
        .collect();
    Ok(Json(Value::Array(grants)))
}

#[derive(Deserialize)]
pub struct RevokeQuery {
    client_id: Option<String>,
}

/// `DELETE /user/oauth/grants?client_id=…`: 204.
pub async fn revoke(
    State(state): State<AuthState>,
    bearer: Bearer,
    Query(q): Query<RevokeQuery>,
) -> Result<StatusCode, AuthError> {
    enabled(&state)?;
    let user = bearer.user_id()?;
    let raw = q
        .client_id
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthError::Validation("client_id query parameter is required".into()))?;
    let client = Uuid::parse_str(&raw)
        .map_err(|_| AuthError::Validation("invalid client_id format".into()))?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let n = tx
        .execute(
            "update auth.oauth_consents set revoked_at = now() \
             where user_id = $1 and client_id = $2 and revoked_at is null",
            &[&user, &client],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::OAuthConsentNotFound);
    }
    tx.execute(
        "delete from auth.sessions where user_id = $1 and oauth_client_id = $2",
        &[&user, &client],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user, client_id = %client, "OAuth grant revoked");
    Ok(StatusCode::NO_CONTENT)
}
