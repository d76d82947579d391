//! The signed-in user's own account: `GET /user`, `PUT /user` (metadata, password, email) and
//! `GET /reauthenticate`.

use axum::extract::{Query, State};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{current, in_session, merge_metadata, RedirectQuery, User};
use crate::bearer::Bearer;
use crate::body::Body;
use crate::error::AuthError;
use crate::redirect::Origin;
use crate::{mail, password, AuthState};

/// `GET /user`.
pub async fn get(State(state): State<AuthState>, bearer: Bearer) -> Result<Json<Value>, AuthError> {
    let user = current(&state, &bearer).await?;
    let db = state.ctx.admin.get().await?;
    Ok(Json(user.to_json(&db).await?))
}

/// The body of `PUT /user`.
#[derive(Deserialize, Default)]
pub struct UserUpdate {
    email: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

/// A password change in a session last refreshed over a day ago needs a mailed nonce when
/// configured; a nonce that is sent is always checked (and used up).
async fn check_reauthentication(
    state: &AuthState,
    db: &impl GenericClient,
    bearer: &Bearer,
    user: &User,
    nonce: Option<&str>,
) -> Result<(), AuthError> {
    if let Some(nonce) = nonce.filter(|n| !n.trim().is_empty()) {
        return match crate::otp::consume_nonce(state, db, user, nonce).await? {
            true => Ok(()),
            false => {
                crate::otp::guesses::count_nonce(state, user.id).await?;
                Err(AuthError::ReauthenticationNotValid)
            }
        };
    }
    if !state.settings.update_password_require_reauthentication {
        return Ok(());
    }
    let stale = match bearer.session_id() {
        Some(id) => db
            .query_opt(
                "select coalesce(refreshed_at at time zone 'utc', created_at) \
                   < now() - interval '24 hours' from auth.sessions where id = $1",
                &[&id],
            )
            .await?
            .is_none_or(|r| r.get::<_, bool>(0)),
        None => true,
    };
    if stale {
        Err(AuthError::ReauthenticationNeeded)
    } else {
        Ok(())
    }
}

/// `GET /reauthenticate`: mails the signed-in user a nonce for `PUT /user`.
pub async fn reauthenticate(
    State(state): State<AuthState>,
    origin: Origin,
    bearer: Bearer,
) -> Result<Json<Value>, AuthError> {
    let user = in_session(&state, &bearer).await?;
    let Some(email) = user.email.clone().filter(|e| !e.is_empty()) else {
        return Err(AuthError::Validation(
            "Reauthentication requires the user to have an email or a phone number".into(),
        ));
    };
    state.limits.email(&state.settings, &email).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let prepared = crate::otp::prepare(
        &state,
        &tx,
        &user,
        crate::otp::Kind::Reauthentication,
        &email,
        None,
    )
    .await?;
    tx.commit().await?;
    mail::send_prepared(&state, &origin, prepared, None).await?;
    Ok(Json(json!({})))
}

/// `PUT /user`: metadata, password and email changes of the signed-in user.
pub async fn update(
    State(state): State<AuthState>,
    origin: Origin,
    client: crate::limit::Client,
    Query(query): Query<RedirectQuery>,
    bearer: Bearer,
    Body(body): Body<UserUpdate>,
) -> Result<Json<Value>, AuthError> {
    let user = in_session(&state, &bearer).await?;
    // Before any bcrypt work: a stolen session must not turn into a hashing flood.
    state
        .limits
        .user_update(&state.settings, &client, user.id)
        .await?;
    let new_hash = match &body.password {
        Some(pw) => {
            password::check_strength(&state.settings, pw)?;
            if let Some(old) = &user.encrypted_password {
                if password::verify(pw.clone(), Some(old.clone())).await? {
                    return Err(AuthError::SamePassword);
                }
            }
            Some(password::hash(pw.clone()).await?)
        }
        None => None,
    };
    let new_email = match body.email.as_deref() {
        Some(e) => {
            let e = crate::body::email(e)?;
            (Some(e.as_str()) != user.email.as_deref()).then_some(e)
        }
        None => None,
    };
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    if new_hash.is_some() {
        check_reauthentication(&state, &tx, &bearer, &user, body.nonce.as_deref()).await?;
    }
    if let Some(data) = &body.data {
        let merged = merge_metadata(&user.user_metadata, data);
        tx.execute(
            "update auth.users set raw_user_meta_data = $2, updated_at = now() where id = $1",
            &[&user.id, &merged],
        )
        .await?;
    }
    if let Some(hash) = &new_hash {
        tx.execute(
            "update auth.users set encrypted_password = $2, updated_at = now() where id = $1",
            &[&user.id, hash],
        )
        .await?;
    }
    let mut mails = Vec::new();
    if let Some(new_email) = new_email {
        if User::find_by_email(&tx, &new_email).await?.is_some() {
            return Err(AuthError::EmailExists);
        }
        if state.settings.mailer_autoconfirm {
            // Autoconfirm: the new address applies at once (an anonymous user becomes a
            // permanent one); otherwise the new address must confirm it first.
            tx.execute(
                "update auth.users set email = $2, email_confirmed_at = now(), \
                   updated_at = now() where id = $1",
                &[&user.id, &new_email],
            )
            .await?;
            crate::otp::sync_email_identity(&tx, user.id, &new_email).await?;
        } else {
            let flow = crate::token::pkce::FlowRequest::from_parts(
                body.code_challenge.as_deref(),
                body.code_challenge_method.as_deref(),
            )?;
            mails = crate::otp::start_email_change(&state, &tx, &user, &new_email, flow).await?;
        }
    }
    let updated = User::find(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    let json = updated.to_json(&tx).await?;
    tx.commit().await?;
    for prepared in mails {
        mail::send_prepared(&state, &origin, prepared, query.redirect_to.as_deref()).await?;
    }
    Ok(Json(json))
}
