//! `POST /signup`: email and password accounts, and anonymous users when neither email nor
//! phone is given.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::body::{self, Body};
use crate::error::AuthError;
use crate::limit::Client;
use crate::otp::{self, Kind};
use crate::redirect::Origin;
use crate::session::Device;
use crate::token::pkce::FlowRequest;
use crate::user::{NewUser, RedirectQuery, User};
use crate::{password, session, AuthState};

/// What auth-js sends; unknown fields (`gotrue_meta_security`, ...) are ignored.
#[derive(Deserialize)]
pub struct Signup {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
    data: Option<Map<String, Value>>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// A phone sign-up, checked as GoTrue checks one, then refused: with no SMS provider the phone
/// provider is off.
fn phone(state: &AuthState, req: &Signup) -> Result<Json<Value>, AuthError> {
    let pw = req.password.as_deref().unwrap_or("");
    if pw.is_empty() {
        return Err(AuthError::Validation(
            "Signup requires a valid password".into(),
        ));
    }
    password::check_strength(&state.settings, pw)?;
    Err(AuthError::PhoneProviderDisabled {
        status: axum::http::StatusCode::BAD_REQUEST,
        message: "Phone signups are disabled",
    })
}

pub async fn signup(
    State(state): State<AuthState>,
    origin: Origin,
    client: Client,
    device: Device,
    Query(query): Query<RedirectQuery>,
    Body(req): Body<Signup>,
) -> Result<Json<Value>, AuthError> {
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if blank(&req.email) && blank(&req.phone) {
        return anonymous(&state, &origin, &client, &device, req)
            .await
            .map(Json);
    }
    if state.settings.disable_signup {
        return Err(AuthError::SignupDisabled);
    }
    if blank(&req.email) {
        if state.settings.phone_enabled && state.settings.sms_autoconfirm {
            state.limits.sign_up(&state.settings, &client).await?;
            let pw = req.password.as_deref().unwrap_or("");
            let meta = Value::Object(req.data.clone().unwrap_or_default());
            let number = req.phone.as_deref().unwrap_or("");
            return crate::phone::sign_up(&state, &origin, &device, number, pw, &meta)
                .await
                .map(Json);
        }
        return phone(&state, &req);
    }
    if !state.settings.email_enabled {
        return Err(AuthError::EmailProviderDisabled);
    }
    let email = body::email(req.email.as_deref().unwrap_or(""))?;
    let pw = req
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuthError::Validation("Signup requires a valid password".into()))?;
    password::check_strength(&state.settings, pw)?;
    if !blank(&req.phone) {
        return Err(AuthError::Validation(
            "Only an email address or phone number should be provided on signup.".into(),
        ));
    }
    let flow = FlowRequest::from_parts(
        req.code_challenge.as_deref(),
        req.code_challenge_method.as_deref(),
    )?;
    state.limits.sign_up(&state.settings, &client).await?;
    let autoconfirm = state.settings.mailer_autoconfirm;
    if !autoconfirm {
        // Counted for known and unknown addresses alike, so a refusal reveals nothing.
        state.limits.email(&state.settings, &email).await?;
    }
    let hash = password::hash(pw.to_owned()).await?;
    let meta = Value::Object(req.data.unwrap_or_default());

    let mut db = state.ctx.admin.get().await?;
    let mut tx = db.transaction().await?;
    let (user, fresh) = match User::find_by_email(&tx, &email).await? {
        // With autoconfirm a new sign-up gets a session, so GoTrue's answer cannot hide anything.
        Some(_) if autoconfirm => return Err(AuthError::UserAlreadyExists),
        Some(existing) if existing.email_confirmed_at.is_some() => {
            // Answered as a new sign-up is, after the same work, without revealing the account.
            let json = stand_in(&state, &mut tx, &email, &hash, &meta, flow).await?;
            tx.commit().await?;
            return Ok(Json(json));
        }
        Some(existing) => (existing, false),
        None => (
            new_user(&state, &tx, &email, &hash, &meta, autoconfirm).await?,
            true,
        ),
    };
    if autoconfirm {
        let issued = session::create(&state, &tx, &origin, &device, &user, "password").await?;
        tx.commit().await?;
        return Ok(Json(issued.to_json(&state)));
    }
    if !fresh {
        // An unconfirmed account signing up again: its password and data are replaced.
        tx.execute(
            "update auth.users set encrypted_password = $2, raw_user_meta_data = $3, \
               updated_at = now() where id = $1",
            &[&user.id, &hash, &meta],
        )
        .await?;
    }
    let prepared = otp::prepare(&state, &tx, &user, Kind::Signup, &email, flow).await?;
    let user = User::find(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    let json = user.to_json(&tx).await?;
    tx.commit().await?;
    // Sent after answering: how long SMTP takes must not tell known addresses apart.
    otp::mail_detached(&state, &origin, prepared, query.redirect_to);
    Ok(Json(json))
}

/// The user row and email identity of a new email sign-up.
async fn new_user(
    state: &AuthState,
    db: &impl deadpool_postgres::GenericClient,
    email: &str,
    hash: &str,
    meta: &Value,
    confirmed: bool,
) -> Result<User, AuthError> {
    NewUser {
        id: Uuid::new_v4(),
        aud: &state.settings.jwt_aud,
        email: Some(email),
        encrypted_password: Some(hash),
        confirmed,
        user_metadata: meta,
        app_metadata: &json!({}),
        role: "authenticated",
        is_anonymous: false,
        invited: false,
        provider: None,
    }
    .insert(db)
    .await
}

/// The answer to a sign-up of an already confirmed address: a new user's JSON, made by the
/// statements a new sign-up runs, for a stand-in address, in a savepoint rolled back after;
/// the stand-in address is then replaced by the requested one. Nothing is kept or mailed.
async fn stand_in(
    state: &AuthState,
    tx: &mut deadpool_postgres::Transaction<'_>,
    email: &str,
    hash: &str,
    meta: &Value,
    flow: Option<FlowRequest>,
) -> Result<Value, AuthError> {
    let stand_in = format!("{}@stand-in.invalid", Uuid::new_v4().simple());
    let sp = tx.savepoint("signup_stand_in").await?;
    let user = new_user(state, &sp, &stand_in, hash, meta, false).await?;
    otp::prepare(state, &sp, &user, Kind::Signup, &stand_in, flow).await?;
    let user = User::find(&sp, user.id).await?.ok_or(AuthError::UserGone)?;
    let json = user.to_json(&sp).await?;
    sp.rollback().await?;
    let text = json.to_string().replace(&stand_in, email);
    serde_json::from_str(&text).map_err(|e| AuthError::Internal(format!("stand-in user: {e}")))
}

/// An anonymous user and its session.
async fn anonymous(
    state: &AuthState,
    origin: &Origin,
    client: &Client,
    device: &Device,
    req: Signup,
) -> Result<Value, AuthError> {
    if !state.settings.anonymous_users_enabled {
        return Err(AuthError::AnonymousProviderDisabled);
    }
    if state.settings.disable_signup {
        return Err(AuthError::SignupDisabled);
    }
    state.limits.anonymous(&state.settings, client).await?;
    let meta = Value::Object(req.data.unwrap_or_default());
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let user = NewUser {
        id: Uuid::new_v4(),
        aud: &state.settings.jwt_aud,
        email: None,
        encrypted_password: None,
        confirmed: false,
        user_metadata: &meta,
        app_metadata: &json!({}),
        role: "authenticated",
        is_anonymous: true,
        invited: false,
        provider: None,
    }
    .insert(&tx)
    .await?;
    let issued = session::create(state, &tx, origin, device, &user, "anonymous").await?;
    tx.commit().await?;
    Ok(issued.to_json(state))
}
