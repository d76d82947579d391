//! One-time tokens sent by email: confirmation, magic links and codes, recovery, invites and
//! email changes; `/otp`, `/recover`, `/resend` send them and `/verify` redeems them.
//!
//! Each mail carries a 6-digit code and a link; both redeem the same token. The database keeps
//! only `sha256(email || code)` (the link's `token`), in the `auth.users` column GoTrue uses
//! for that kind and in `auth.one_time_tokens`.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use rand::Rng;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::body::{self, Body};
use crate::error::AuthError;
use crate::limit::Client;
use crate::redirect::{self, Origin};
use crate::session::Device;
use crate::token::pkce::{self, FlowRequest};
use crate::user::{NewUser, RedirectQuery, User};
use crate::{mail, session, AuthState};

/// What a token is for; the names are the `type` of `/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signup,
    Invite,
    MagicLink,
    Recovery,
    EmailChange,
    /// A nonce confirming a signed-in user before a password change; never redeemed by `/verify`.
    Reauthentication,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Signup => "signup",
            Kind::Invite => "invite",
            Kind::MagicLink => "magiclink",
            Kind::Recovery => "recovery",
            Kind::EmailChange => "email_change",
            Kind::Reauthentication => "reauthentication",
        }
    }

    /// The `auth.users` columns holding this kind's token and when it was sent.
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Kind::Signup | Kind::Invite => (
                "confirmation_token",
                "confirmation_sent_at",
                "confirmation_token",
            ),
            Kind::MagicLink | Kind::Recovery => {
                ("recovery_token", "recovery_sent_at", "recovery_token")
            }
            Kind::EmailChange => (
                "email_change_token_new",
                "email_change_sent_at",
                "email_change_token_new",
            ),
            Kind::Reauthentication => (
                "reauthentication_token",
                "reauthentication_sent_at",
                "reauthentication_token",
            ),
        }
    }

    /// The session's `amr` method once redeemed.
    fn method(self) -> &'static str {
        match self {
            Kind::Signup => "otp",
            Kind::Invite => "invite",
            Kind::MagicLink => "magiclink",
            Kind::Recovery => "recovery",
            Kind::EmailChange => "email_change",
            Kind::Reauthentication => "reauthentication",
        }
    }
}

/// A token written to the database and waiting to be mailed (or shown by `generate_link`).
pub struct Prepared {
    pub to: String,
    pub kind: Kind,
    pub otp: String,
    pub token_hash: String,
}

fn token_hash(email: &str, otp: &str) -> String {
    Sha256::digest(format!("{email}{otp}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Creates a token of `kind` for `user`, addressed to `to`, and saves a PKCE flow if asked.
pub async fn prepare(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    kind: Kind,
    to: &str,
    flow: Option<FlowRequest>,
) -> Result<Prepared, AuthError> {
    let len = state.settings.mailer_otp_length.clamp(6, 10);
    let otp: String = {
        let mut rng = rand::rng();
        (0..len)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    let hash = token_hash(to, &otp);
    let (column, sent_at, token_type) = kind.columns();
    db.execute(
        &format!("update auth.users set {column} = $2, {sent_at} = now() where id = $1"),
        &[&user.id, &hash],
    )
    .await?;
    db.execute(
        "insert into auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to) \
         values ($1, $2, $3::text::auth.one_time_token_type, $4, $5) \
         on conflict (user_id, token_type) do update set token_hash = excluded.token_hash, \
           relates_to = excluded.relates_to, updated_at = now()",
        &[&Uuid::new_v4(), &user.id, &token_type, &hash, &to],
    )
    .await?;
    if let Some(flow) = flow {
        flow.save(db, Some(user.id), "email", kind.as_str()).await?;
    }
    Ok(Prepared {
        to: to.to_owned(),
        kind,
        otp,
        token_hash: hash,
    })
}

/// Records a pending change of `user`'s email to `new_email` and its token.
pub async fn prepare_email_change(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    new_email: &str,
    flow: Option<FlowRequest>,
) -> Result<Prepared, AuthError> {
    db.execute(
        "update auth.users set email_change = $2, email_change_confirm_status = 0 where id = $1",
        &[&user.id, &new_email],
    )
    .await?;
    prepare(state, db, user, Kind::EmailChange, new_email, flow).await
}

/// Checks and consumes a reauthentication nonce of `user`; false when wrong or expired.
pub async fn consume_nonce(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    nonce: &str,
) -> Result<bool, AuthError> {
    let Some(email) = user.email.as_deref() else {
        return Ok(false);
    };
    let hash = token_hash(email, nonce.trim());
    let n = db
        .execute(
            "update auth.users set reauthentication_token = '' where id = $1 \
               and reauthentication_token = $2 and reauthentication_token <> '' \
               and reauthentication_sent_at + make_interval(secs => $3) > now()",
            &[&user.id, &hash, &(state.settings.mailer_otp_exp as f64)],
        )
        .await?;
    if n == 1 {
        db.execute(
            "delete from auth.one_time_tokens where user_id = $1 \
               and token_type = 'reauthentication_token'",
            &[&user.id],
        )
        .await?;
    }
    Ok(n == 1)
}

/// Points the user's email identity at `email`, creating it for users who had none.
pub async fn sync_email_identity(
    db: &impl GenericClient,
    user_id: Uuid,
    email: &str,
) -> Result<(), AuthError> {
    let data = json!({"sub": user_id.to_string(), "email": email, "email_verified": true, "phone_verified": false});
    db.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, \
           last_sign_in_at, created_at, updated_at) values ($1, $2, $3, 'email', now(), now(), now()) \
         on conflict (provider_id, provider) do update set identity_data = \
           auth.identities.identity_data || excluded.identity_data, updated_at = now()",
        &[&user_id.to_string(), &user_id, &data],
    )
    .await?;
    db.execute(
        "update auth.users set is_anonymous = false, raw_app_meta_data = \
           coalesce(raw_app_meta_data, '{}') || jsonb_build_object('provider', 'email', \
           'providers', jsonb_build_array('email')) where id = $1 and is_anonymous",
        &[&user_id],
    )
    .await?;
    Ok(())
}

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
        if self.email.is_none() && self.phone.is_some() {
            return Err(AuthError::Validation(
                "Phone logins are not supported".into(),
            ));
        }
        body::email(self.email.as_deref().unwrap_or(""))
    }

    fn flow(&self) -> Result<Option<FlowRequest>, AuthError> {
        FlowRequest::from_parts(
            self.code_challenge.as_deref(),
            self.code_challenge_method.as_deref(),
        )
    }
}

/// `POST /otp`: mails a magic link and code, creating the user first unless told not to.
pub async fn send_otp(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<EmailRequest>,
) -> Result<Json<Value>, AuthError> {
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
            NewUser {
                id: Uuid::new_v4(),
                aud: &state.settings.jwt_aud,
                email: Some(&email),
                encrypted_password: None,
                confirmed: false,
                user_metadata: &meta,
                app_metadata: &json!({}),
                role: "authenticated",
                is_anonymous: false,
                invited: false,
                provider: None,
            }
            .insert(&tx)
            .await?
        }
    };
    state.limits.email(&state.settings, &client)?;
    let prepared = prepare(&state, &tx, &user, Kind::MagicLink, &email, flow).await?;
    tx.commit().await?;
    let redirect = redirect::target(&state.settings, query.redirect_to.as_deref());
    mail::send_prepared(&state, &origin, prepared, &redirect).await?;
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
    let email = req.email()?;
    let flow = req.flow()?;
    state.limits.email(&state.settings, &client)?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    if let Some(user) = User::find_by_email(&tx, &email).await? {
        let prepared = prepare(&state, &tx, &user, Kind::Recovery, &email, flow).await?;
        tx.commit().await?;
        let redirect = redirect::target(&state.settings, query.redirect_to.as_deref());
        mail::send_prepared(&state, &origin, prepared, &redirect).await?;
    }
    Ok(Json(json!({})))
}

/// `POST /resend`: mails the signup confirmation or email-change token again.
pub async fn resend(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<EmailRequest>,
) -> Result<Json<Value>, AuthError> {
    let email = req.email()?;
    let flow = req.flow()?;
    let kind = match req.kind.as_deref() {
        Some("signup") => Kind::Signup,
        Some("email_change") => Kind::EmailChange,
        _ => {
            return Err(AuthError::Validation(
                "Missing one of these types: signup, email_change, sms, phone_change".into(),
            ))
        }
    };
    state.limits.email(&state.settings, &client)?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let prepared = match kind {
        Kind::Signup => match User::find_by_email(&tx, &email).await? {
            Some(u) if u.email_confirmed_at.is_none() => {
                Some(prepare(&state, &tx, &u, kind, &email, flow).await?)
            }
            _ => None,
        },
        _ => {
            let row = tx
                .query_opt(
                    "select id from auth.users where email_change = $1",
                    &[&email],
                )
                .await?;
            match row {
                Some(r) => {
                    let user = User::find(&tx, r.get(0))
                        .await?
                        .ok_or(AuthError::UserGone)?;
                    Some(prepare(&state, &tx, &user, kind, &email, flow).await?)
                }
                None => None,
            }
        }
    };
    tx.commit().await?;
    if let Some(prepared) = prepared {
        let redirect = redirect::target(&state.settings, query.redirect_to.as_deref());
        mail::send_prepared(&state, &origin, prepared, &redirect).await?;
    }
    Ok(Json(json!({})))
}

/// The body of `POST /verify`.
#[derive(Deserialize)]
pub struct VerifyRequest {
    #[serde(rename = "type")]
    kind: String,
    email: Option<String>,
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
        "email_change" => &[Kind::EmailChange],
        "email" => &[Kind::MagicLink, Kind::Signup],
        _ => {
            return Err(AuthError::Validation(
                "Verify requires a verification type".into(),
            ))
        }
    })
}

/// Finds the user holding `hash` for one of `kinds`, unexpired; redeems it and returns the user.
async fn redeem(
    state: &AuthState,
    db: &impl GenericClient,
    kinds: &[Kind],
    hash: &str,
) -> Result<(User, Kind), AuthError> {
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
        if kind == Kind::EmailChange {
            let row = db
                .query_one(
                    "update auth.users set email = email_change, email_change = '', \
                       email_change_confirm_status = 0, \
                       email_confirmed_at = coalesce(email_confirmed_at, now()) \
                     where id = $1 returning email",
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
        return Ok((user, kind));
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
    state.limits.verify(&state.settings, &client)?;
    let kinds = kinds_for(&req.kind)?;
    let hash = match (&req.token_hash, &req.email, &req.token) {
        (Some(h), _, _) if !h.is_empty() => h.clone(),
        (_, Some(email), Some(token)) if !token.is_empty() => {
            token_hash(&body::email(email)?, token.trim())
        }
        _ => {
            return Err(AuthError::Validation(
                "Verify requires either a token and email or a token hash".into(),
            ))
        }
    };
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let (user, kind) = redeem(&state, &tx, kinds, &hash).await?;
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
    state.limits.verify(&state.settings, client)?;
    let kinds = kinds_for(q.kind.as_deref().unwrap_or(""))?;
    let hash = q
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or(AuthError::OtpExpired)?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let (user, kind) = redeem(state, &tx, kinds, &hash).await?;
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
