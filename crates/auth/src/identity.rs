//! Linking and unlinking identities of the signed-in user: `GET /user/identities/authorize`
//! starts an OAuth round trip that attaches the provider account to the caller, and
//! `DELETE /user/identities/{id}` removes one, never the last. Off unless
//! `GOTRUE_SECURITY_MANUAL_LINKING_ENABLED`, as in GoTrue.

use axum::extract::{Path, Query, State};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bearer::Bearer;
use crate::error::AuthError;
use crate::oauth::{self, AuthorizeQuery};
use crate::redirect::Origin;
use crate::user::{self, User};
use crate::AuthState;

/// `GET /user/identities/authorize?provider=...&skip_http_redirect=true`: `{url}` to visit.
pub async fn authorize(
    State(state): State<AuthState>,
    origin: Origin,
    bearer: Bearer,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Json<Value>, AuthError> {
    if !state.settings.manual_linking_enabled {
        return Err(AuthError::ManualLinkingDisabled);
    }
    let user = user::current(&state, &bearer).await?;
    let url = oauth::provider_url(&state, &origin, &q, Some(user.id)).await?;
    Ok(Json(json!({ "url": url })))
}

/// `DELETE /user/identities/{identity_id}`.
pub async fn unlink(
    State(state): State<AuthState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    if !state.settings.manual_linking_enabled {
        return Err(AuthError::ManualLinkingDisabled);
    }
    let user = user::current(&state, &bearer).await?;
    let id = Uuid::parse_str(&id).map_err(|_| AuthError::IdentityNotFound)?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    User::lock(&tx, user.id).await?;
    let count: i64 = tx
        .query_one(
            "select count(*) from auth.identities where user_id = $1",
            &[&user.id],
        )
        .await?
        .get(0);
    let owned = tx
        .query_opt(
            "select 1 from auth.identities where id = $1 and user_id = $2",
            &[&id, &user.id],
        )
        .await?
        .is_some();
    if !owned {
        return Err(AuthError::IdentityNotFound);
    }
    if count <= 1 {
        return Err(AuthError::SingleIdentityNotDeletable);
    }
    tx.execute("delete from auth.identities where id = $1", &[&id])
        .await?;
    crate::linking::sync_providers(&tx, user.id).await?;
    tx.commit().await?;
    Ok(Json(json!({})))
}
