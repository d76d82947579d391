//! `/otp`, `/recover` and `/resend`: the endpoints that mail a code and a link.

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{prepare, start_email_change, Kind};
use crate::body::{self, Body};
use crate::error::AuthError;
use crate::limit::{Client, OtpRoute};
use crate::redirect::Origin;
use crate::token::pkce::FlowRequest;
use crate::user::{NewUser, RedirectQuery, User};
use crate::{mail, AuthState};

/// The body of `/otp`, `/recover` and `/resend`.
#[derive(Deserialize, Default)]
pub struct EmailRequest {
    email: Option<String>,
    phone: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    create_user: Option<bool>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl EmailRequest {
    fn email(&self) -> Result<String, AuthError> {
        body::email(self.email.as_deref().unwrap_or(""))
    }

    /// Which of email and phone were given (blank counts as absent).
    fn given(&self) -> (bool, bool) {
        let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        (given(&self.email), given(&self.phone))
    }

    fn flow(&self) -> Result<Option<FlowRequest>, AuthError> {
        FlowRequest::from_parts(
            self.code_challenge.as_deref(),
            self.code_challenge_method.as_deref(),
        )
    }
}

/// `POST /otp` and `POST /magiclink`: mails a magic link and code, creating the user first
/// unless told not to. Each path counts in its own bucket, as in GoTrue.
pub async fn send_otp(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    uri: Uri,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<EmailRequest>,
) -> Result<Json<Value>, AuthError> {
    let route = if uri.path().ends_with("/magiclink") {
        OtpRoute::MagicLink
    } else {
        OtpRoute::Otp
    };
    state.limits.otp(&state.settings, &client, route).await?;
    match req.given() {
        (true, true) => {
            return Err(AuthError::Validation(
                "Only an email address or phone number should be provided".into(),
            ))
        }
        (false, true) => {
            return Err(AuthError::PhoneProviderDisabled {
                status: StatusCode::BAD_REQUEST,
                message: "Unsupported phone provider",
            })
        }
        _ => {}
    }
    let email = req.email()?;
    let flow = req.flow()?;
    if !state.settings.email_enabled {
        return Err(AuthError::EmailProviderDisabled);
    }
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = match User::find_by_email(&tx, &email).await? {
        Some(u) => u,
        None if !req.create_user.unwrap_or(true) => return Err(AuthError::OtpDisabled),
        None if state.settings.disable_signup => return Err(AuthError::SignupDisabled),
        None => {
            let meta = Value::Object(req.data.clone().unwrap_or_default());
            NewUser::unconfirmed_email(&state.settings.jwt_aud, &email, None, &meta, false)
                .insert(&tx)
                .await?
        }
    };
    state.limits.email(&state.settings, &email).await?;
    let prepared = prepare(&state, &tx, &user, Kind::MagicLink, &email, flow).await?;
    tx.commit().await?;
    mail::send_prepared(&state, &origin, prepared, query.redirect_to.as_deref()).await?;
    Ok(Json(json!({})))
}

/// `POST /recover`: mails a recovery link; the answer never says whether the user exists.
pub async fn recover(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<EmailRequest>,
) -> Result<Json<Value>, AuthError> {
    state
        .limits
        .otp(&state.settings, &client, OtpRoute::Recover)
        .await?;
    let email = req.email()?;
    let flow = req.flow()?;
    state.limits.email(&state.settings, &email).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    // The same statements and no wait on SMTP either way: the time tells nothing either.
    match User::find_by_email(&tx, &email).await? {
        Some(user) => {
            let prepared = prepare(&state, &tx, &user, Kind::Recovery, &email, flow).await?;
            tx.commit().await?;
            super::mail_detached(&state, &origin, prepared, query.redirect_to);
        }
        None => {
            super::prepare_for_nobody(&tx, Kind::Recovery).await?;
            tx.commit().await?;
        }
    }
    Ok(Json(json!({})))
}

/// `/resend` of a phone code with the phone provider on: the number checked as GoTrue checks it;
/// nobody waiting on a code for it is GoTrue's silent 200 (no enumeration). Someone waiting would
/// need an SMS, which craftbase cannot send: a 500, as GoTrue's with a failing provider.
/// `/resend` is already counted in its own bucket by the caller.
async fn resend_sms(state: &AuthState, req: &EmailRequest) -> Result<Json<Value>, AuthError> {
    let phone = body::phone(req.phone.as_deref().unwrap_or(""))?;
    let sql = if req.kind.as_deref() == Some("sms") {
        "select 1 from auth.users where phone = $1 and phone_confirmed_at is null"
    } else {
        "select 1 from auth.users where phone_change = $1"
    };
    let db = state.ctx.admin.get().await?;
    if db.query_opt(sql, &[&phone]).await?.is_none() {
        return Ok(Json(json!({})));
    }
    Err(AuthError::Internal(
        "no SMS provider: craftbase sends no phone codes".into(),
    ))
}

/// `POST /resend`: mails the signup confirmation or email-change token again.
pub async fn resend(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<EmailRequest>,
) -> Result<Json<Value>, AuthError> {
    state
        .limits
        .otp(&state.settings, &client, OtpRoute::Resend)
        .await?;
    let kind = match req.kind.as_deref() {
        Some("signup") => Some(Kind::Signup),
        Some("email_change") => Some(Kind::EmailChange),
        Some("sms" | "phone_change") => None,
        _ => {
            return Err(AuthError::Validation(
                "Missing one of these types: signup, email_change, sms, phone_change".into(),
            ))
        }
    };
    let phone_off = AuthError::PhoneProviderDisabled {
        status: StatusCode::BAD_REQUEST,
        message: "Phone logins are disabled",
    };
    let kind = match (kind, req.given()) {
        (Some(Kind::Signup), (false, _)) => {
            return Err(AuthError::Validation(
                "Type provided requires an email address".into(),
            ))
        }
        (None, (_, false)) => {
            return Err(AuthError::Validation(
                "Type provided requires a phone number".into(),
            ))
        }
        (_, (true, true)) => {
            return Err(AuthError::Validation(
                "Only an email address or phone number should be provided.".into(),
            ))
        }
        (None, _) if state.settings.phone_enabled => {
            return resend_sms(&state, &req).await;
        }
        (None, _) | (_, (false, true)) => return Err(phone_off),
        (Some(kind), _) => kind,
    };
    let email = req.email()?;
    let flow = req.flow()?;
    state.limits.email(&state.settings, &email).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let mails = match kind {
        Kind::Signup => match User::find_by_email(&tx, &email).await? {
            Some(u) if u.email_confirmed_at.is_none() => {
                vec![prepare(&state, &tx, &u, kind, &email, flow).await?]
            }
            _ => Vec::new(),
        },
        _ => {
            // The pending change's new address, or the current address of a user with one:
            // the change's mails go out again, with fresh tokens.
            let row = tx
                .query_opt(
                    "select id, email_change from auth.users where email_change = $1 \
                     or (email = $1 and coalesce(email_change, '') <> '') limit 1",
                    &[&email],
                )
                .await?;
            match row {
                Some(r) => {
                    let user = User::find(&tx, r.get(0))
                        .await?
                        .ok_or(AuthError::UserGone)?;
                    let new_email: String = r.get(1);
                    start_email_change(&state, &tx, &user, &new_email, flow).await?
                }
                None => Vec::new(),
            }
        }
    };
    tx.commit().await?;
    for prepared in mails {
        mail::send_prepared(&state, &origin, prepared, query.redirect_to.as_deref()).await?;
    }
    Ok(Json(json!({})))
}
