//! Links without mail (`generate_link`) and invitations (`/invite`).

use axum::extract::{Query, State};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::bearer::Admin;
use crate::body::{self, Body};
use crate::error::AuthError;
use crate::otp::{self, Kind};
use crate::redirect::Origin;
use crate::user::{NewUser, RedirectQuery, User};
use crate::{mail, password, AuthState};

/// The body of `generate_link`.
#[derive(Deserialize)]
pub struct LinkRequest {
    #[serde(rename = "type")]
    kind: String,
    email: String,
    password: Option<String>,
    new_email: Option<String>,
    data: Option<Map<String, Value>>,
    redirect_to: Option<String>,
}

/// Finds the user for an invite or signup link, creating it when new.
async fn user_for_link(
    state: &AuthState,
    db: &impl GenericClient,
    email: &str,
    hash: Option<&str>,
    meta: &Value,
    invited: bool,
) -> Result<User, AuthError> {
    match User::find_by_email(db, email).await? {
        Some(u) if u.email_confirmed_at.is_some() => Err(AuthError::EmailExists),
        Some(u) => {
            if let Some(hash) = hash {
                db.execute(
                    "update auth.users set encrypted_password = $2 where id = $1",
                    &[&u.id, &hash],
                )
                .await?;
            }
            Ok(u)
        }
        None => {
            NewUser::unconfirmed_email(&state.settings.jwt_aud, email, hash, meta, invited)
                .insert(db)
                .await
        }
    }
}

/// `POST /admin/generate_link`: the link and code a mail would carry, returned instead of sent.
pub async fn generate_link(
    State(state): State<AuthState>,
    _admin: Admin,
    origin: Origin,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<LinkRequest>,
) -> Result<Json<Value>, AuthError> {
    let email = body::email(&req.email)?;
    let hash = match &req.password {
        Some(pw) => {
            password::check_strength(&state.settings, pw)?;
            Some(password::hash(pw.clone()).await?)
        }
        None => None,
    };
    let meta = Value::Object(req.data.clone().unwrap_or_default());
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let prepared = match req.kind.as_str() {
        "signup" => {
            if hash.is_none() {
                return Err(AuthError::Validation(
                    "Signup requires a valid password".into(),
                ));
            }
            let user = user_for_link(&state, &tx, &email, hash.as_deref(), &meta, false).await?;
            otp::prepare(&state, &tx, &user, Kind::Signup, &email, None).await?
        }
        "invite" => {
            let user = user_for_link(&state, &tx, &email, None, &meta, true).await?;
            otp::prepare(&state, &tx, &user, Kind::Invite, &email, None).await?
        }
        "magiclink" | "recovery" => {
            let user = User::find_by_email(&tx, &email)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            let kind = if req.kind == "magiclink" {
                Kind::MagicLink
            } else {
                Kind::Recovery
            };
            otp::prepare(&state, &tx, &user, kind, &email, None).await?
        }
        "email_change_current" | "email_change_new" => {
            let user = User::find_by_email(&tx, &email)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            let new_email = body::email(req.new_email.as_deref().unwrap_or(""))?;
            if User::find_by_email(&tx, &new_email).await?.is_some() {
                return Err(AuthError::EmailExists);
            }
            let kind = if req.kind == "email_change_current" {
                Kind::EmailChangeCurrent
            } else {
                Kind::EmailChange
            };
            otp::prepare_email_change_link(&state, &tx, &user, &new_email, kind).await?
        }
        _ => {
            return Err(AuthError::Validation(
                "Invalid email action link type requested".into(),
            ))
        }
    };
    let user = User::find_by_email(&tx, &email)
        .await?
        .ok_or(AuthError::UserGone)?;
    let mut json = user.to_json(&tx).await?;
    tx.commit().await?;
    let requested = query.redirect_to.as_deref().or(req.redirect_to.as_deref());
    let link = mail::VerifyLink::new(&state, &origin, &prepared, requested);
    json["action_link"] = json!(link.url);
    json["email_otp"] = json!(prepared.otp);
    json["hashed_token"] = json!(prepared.token_hash);
    json["redirect_to"] = json!(link.redirect_to);
    json["verification_type"] = json!(match prepared.kind {
        Kind::EmailChange | Kind::EmailChangeCurrent => req.kind.as_str(),
        kind => kind.as_str(),
    });
    Ok(Json(json))
}

/// The body of `POST /invite`.
#[derive(Deserialize)]
pub struct InviteRequest {
    email: String,
    data: Option<Map<String, Value>>,
}

/// `POST /invite`: creates the user and mails the invitation.
pub async fn invite(
    State(state): State<AuthState>,
    _admin: Admin,
    origin: Origin,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<InviteRequest>,
) -> Result<Json<Value>, AuthError> {
    let email = body::email(&req.email)?;
    let meta = Value::Object(req.data.unwrap_or_default());
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = user_for_link(&state, &tx, &email, None, &meta, true).await?;
    tx.execute(
        "update auth.users set invited_at = coalesce(invited_at, now()) where id = $1",
        &[&user.id],
    )
    .await?;
    let prepared = otp::prepare(&state, &tx, &user, Kind::Invite, &email, None).await?;
    let user = User::find(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    let json = user.to_json(&tx).await?;
    tx.commit().await?;
    mail::send_prepared(&state, &origin, prepared, query.redirect_to.as_deref()).await?;
    Ok(Json(json))
}
