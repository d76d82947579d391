//! `/verify`: a mailed code (`POST`) or link (`GET`, the browser's redirect) for a session.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::{sync_email_identity, token_hash, Kind};
use crate::body::{self, Body};
use crate::error::AuthError;
use crate::limit::Client;
use crate::redirect::{self, Origin};
use crate::session::{self, Device};
use crate::token::pkce;
use crate::user::User;
use crate::AuthState;

/// The body of `POST /verify`.
#[derive(Deserialize)]
pub struct VerifyRequest {
    #[serde(rename = "type")]
    kind: String,
    email: Option<String>,
    phone: Option<String>,
    token: Option<String>,
    token_hash: Option<String>,
}

/// Which kinds a `type` may redeem: `email` is the code of a magic link or of a signup.
fn kinds_for(kind: &str) -> Result<&'static [Kind], AuthError> {
    Ok(match kind {
        "signup" => &[Kind::Signup],
        "invite" => &[Kind::Invite, Kind::Signup],
        "magiclink" => &[Kind::MagicLink],
        "recovery" => &[Kind::Recovery],
        "email_change" => &[Kind::EmailChange, Kind::EmailChangeCurrent],
        "email" => &[Kind::MagicLink, Kind::Signup],
        _ => {
            return Err(AuthError::Validation(
                "Verify requires a verification type".into(),
            ))
        }
    })
}

/// The answer to the first of the two confirmations of a secure email change.
const FIRST_OF_TWO: &str =
    "Confirmation accepted; now follow the link sent to the other email address";

/// What redeeming a token came to.
enum Redeemed {
    /// The token did its work: a session for the user is due.
    Done(Box<User>, Kind),
    /// One address of a secure email change confirmed; the other one still has to.
    FirstOfTwo,
}

/// Finds the user holding `hash` for one of `kinds`, unexpired, and redeems it.
async fn redeem(
    state: &AuthState,
    db: &impl GenericClient,
    kinds: &[Kind],
    hash: &str,
) -> Result<Redeemed, AuthError> {
    for &kind in kinds {
        let (column, sent_at, token_type) = kind.columns();
        let row = db
            .query_opt(
                &format!(
                    "select id from auth.users where {column} = $1 and {column} <> '' \
                     and {sent_at} + make_interval(secs => $2) > now() for update"
                ),
                &[&hash, &(state.settings.mailer_otp_exp as f64)],
            )
            .await?;
        let Some(row) = row else { continue };
        let id: Uuid = row.get(0);
        db.execute(
            &format!("update auth.users set {column} = '', updated_at = now() where id = $1"),
            &[&id],
        )
        .await?;
        db.execute(
            "delete from auth.one_time_tokens where user_id = $1 \
               and token_type = $2::text::auth.one_time_token_type",
            &[&id, &token_type],
        )
        .await?;
        if matches!(kind, Kind::EmailChange | Kind::EmailChangeCurrent) {
            // With secure email change, the other address's token may still be waiting: then
            // this confirmation is only the first of two.
            let other = if kind == Kind::EmailChange {
                "email_change_token_current"
            } else {
                "email_change_token_new"
            };
            if state.settings.mailer_secure_email_change_enabled {
                let waiting = db
                    .execute(
                        &format!(
                            "update auth.users set email_change_confirm_status = 1 \
                             where id = $1 and coalesce({other}, '') <> '' \
                               and coalesce(email, '') <> ''"
                        ),
                        &[&id],
                    )
                    .await?;
                if waiting == 1 {
                    return Ok(Redeemed::FirstOfTwo);
                }
            }
            let row = db
                .query_one(
                    "update auth.users set email = email_change, email_change = '', \
                       email_change_confirm_status = 0, email_change_token_new = '', \
                       email_change_token_current = '', \
                       email_confirmed_at = coalesce(email_confirmed_at, now()) \
                     where id = $1 returning email",
                    &[&id],
                )
                .await?;
            db.execute(
                "delete from auth.one_time_tokens where user_id = $1 and token_type in \
                   ('email_change_token_new', 'email_change_token_current')",
                &[&id],
            )
            .await?;
            let email: String = row.get(0);
            sync_email_identity(db, id, &email).await?;
        } else {
            db.execute(
                "update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) \
                 where id = $1",
                &[&id],
            )
            .await?;
            db.execute(
                "update auth.identities set identity_data = identity_data || \
                   '{\"email_verified\": true}' where user_id = $1 and provider = 'email'",
                &[&id],
            )
            .await?;
        }
        let user = User::find(db, id).await?.ok_or(AuthError::UserGone)?;
        // The mailed token reached its owner: the address is proven (what account linking
        // asks of an existing user).
        if let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) {
            crate::linking::record_proof(db, id, email, kind.as_str()).await?;
        }
        return Ok(Redeemed::Done(Box::new(user), kind));
    }
    Err(AuthError::OtpExpired)
}

/// `POST /verify`: a code (with its email) or a token hash for a session.
pub async fn verify(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    device: Device,
    Body(req): Body<VerifyRequest>,
) -> Result<Json<Value>, AuthError> {
    state.limits.verify(&state.settings, &client).await?;
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty());
    if given(&req.token) && given(&req.phone) && !given(&req.email) {
        // GoTrue checks the number's format before it looks anything up.
        body::phone(req.phone.as_deref().unwrap_or(""))?;
    }
    if matches!(req.kind.as_str(), "sms" | "phone_change") {
        // No SMS provider sends codes, so no phone code is ever valid.
        return Err(AuthError::OtpExpired);
    }
    let kinds = kinds_for(&req.kind)?;
    let mut db = state.ctx.admin.get().await?;
    let hash = match (&req.token_hash, &req.email, &req.token) {
        (Some(h), _, _) if !h.is_empty() => h.clone(),
        (_, Some(email), Some(token)) if !token.is_empty() => {
            // A short code can be guessed: guesses count per address, from any client.
            let email = body::email(email).map_err(|_| AuthError::InvalidEmailFormat)?;
            state.limits.verify_account(&state.settings, &email).await?;
            super::guesses::count(&state, &db, &email).await?;
            token_hash(&email, token.trim())
        }
        _ => {
            return Err(AuthError::Validation(
                "Verify requires either a token and email or a token hash".into(),
            ))
        }
    };
    let tx = db.transaction().await?;
    let (user, kind) = match redeem(&state, &tx, kinds, &hash).await? {
        Redeemed::Done(user, kind) => (*user, kind),
        Redeemed::FirstOfTwo => {
            tx.commit().await?;
            return Ok(Json(serde_json::json!({"msg": FIRST_OF_TWO, "code": 200})));
        }
    };
    super::guesses::reset(&tx, user.id).await?;
    let issued = session::create(&state, &tx, &origin, &device, &user, kind.method()).await?;
    tx.commit().await?;
    Ok(Json(issued.to_json(&state)))
}

/// The query of the browser's `GET /verify`.
#[derive(Deserialize)]
pub struct VerifyLink {
    token: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    redirect_to: Option<String>,
}

/// `GET /verify`: the mailed link. Redirects (303) with the session in the fragment, or with
/// `?code=` when the flow started with PKCE, or with the error in the fragment.
pub async fn verify_link(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    device: Device,
    Query(q): Query<VerifyLink>,
) -> Response {
    let target = redirect::target(&state.settings, q.redirect_to.as_deref());
    match verify_link_inner(&state, &origin, &client, &device, &q, &target).await {
        Ok(location) => see_other(&location),
        Err(e) => {
            let (code, description) = match e {
                AuthError::RequestRateLimit => (
                    "over_request_rate_limit",
                    "Request rate limit reached".to_owned(),
                ),
                AuthError::OtpExpired => (
                    "otp_expired",
                    "Email link is invalid or has expired".to_owned(),
                ),
                AuthError::Internal(_) => ("unexpected_failure", e.to_string()),
                ref other => ("validation_failed", other.to_string()),
            };
            let params = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("error", "access_denied")
                .append_pair("error_code", code)
                .append_pair("error_description", &description)
                .append_pair("sb", "")
                .finish();
            if let AuthError::Internal(_) = &e {
                tracing::error!(error = %e, "verify link failed");
            }
            see_other(&redirect::with_params(&target, &params, true))
        }
    }
}

async fn verify_link_inner(
    state: &AuthState,
    origin: &Origin,
    client: &Client,
    device: &Device,
    q: &VerifyLink,
    target: &str,
) -> Result<String, AuthError> {
    state.limits.verify(&state.settings, client).await?;
    let kinds = kinds_for(q.kind.as_deref().unwrap_or(""))?;
    let hash = q
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::OtpExpired)?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let (user, kind) = match redeem(state, &tx, kinds, &hash).await? {
        Redeemed::Done(user, kind) => (*user, kind),
        Redeemed::FirstOfTwo => {
            tx.commit().await?;
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("message", FIRST_OF_TWO)
                .append_pair("sb", "")
                .finish();
            return Ok(redirect::with_params(target, &fragment, true));
        }
    };
    if let Some(code) = pkce::pending_code(&tx, user.id, kind.as_str()).await? {
        tx.commit().await?;
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .finish();
        return Ok(redirect::with_params(target, &params, false));
    }
    let issued = session::create(state, &tx, origin, device, &user, kind.method()).await?;
    tx.commit().await?;
    let fragment = format!("{}&sb=", issued.to_fragment(state, kind.as_str()));
    Ok(redirect::with_params(target, &fragment, true))
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}
