//! Multi-factor authentication with TOTP and WebAuthn, as GoTrue's `/factors` endpoints behave:
//! enrol a factor, challenge it, verify a code or an authenticator's answer (the session
//! becomes `aal2` with `totp` or `mfa/webauthn` in its `amr`), unenrol. Phone factors answer
//! as GoTrue does when they are switched off, since craftbase sends no SMS.

mod challenge;
pub mod factor;
mod lockout;
mod totp;
mod webauthn;

use axum::extract::{Path, State};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::bearer::Bearer;
use crate::body::Body;
use crate::error::AuthError;
use crate::user::{current, User};
use crate::AuthState;
use factor::Factor;

pub use challenge::{challenge, verify};

/// Unverified factors that were never challenged are dropped after this long, as in GoTrue.
const UNVERIFIED_FACTOR_LIFETIME_SECONDS: f64 = 300.0;

/// The body of `POST /factors`.
#[derive(Deserialize, Default)]
pub struct EnrollBody {
    friendly_name: Option<String>,
    factor_type: Option<String>,
    issuer: Option<String>,
}

/// The caller's user and session, which every factor endpoint needs.
async fn caller(state: &AuthState, bearer: &Bearer) -> Result<(User, Uuid), AuthError> {
    let user = current(state, bearer).await?;
    let session = bearer.session_id().ok_or(AuthError::SessionGone)?;
    Ok((user, session))
}

/// True when the session has verified a second factor.
async fn session_is_aal2(db: &impl GenericClient, session_id: Uuid) -> Result<bool, AuthError> {
    Ok(db
        .query_opt(
            "select 1 from auth.sessions where id = $1 and aal = 'aal2'",
            &[&session_id],
        )
        .await?
        .is_some())
}

/// Refuses factor types craftbase cannot serve, with the error GoTrue gives when they are off.
fn check_type(state: &AuthState, factor_type: &str, enrolling: bool) -> Result<(), AuthError> {
    let s = &state.settings;
    let off = |code, message| Err(AuthError::MfaDisabled { code, message });
    match (factor_type, enrolling) {
        ("totp", true) if !s.mfa_totp_enroll_enabled => off(
            "mfa_totp_enroll_not_enabled",
            "MFA enroll is disabled for TOTP",
        ),
        ("totp", false) if !s.mfa_totp_verify_enabled => off(
            "mfa_totp_verify_not_enabled",
            "MFA verification is disabled for TOTP",
        ),
        ("totp", _) => Ok(()),
        ("phone", true) => off(
            "mfa_phone_enroll_not_enabled",
            "MFA enroll is disabled for Phone",
        ),
        ("phone", false) => off(
            "mfa_phone_verify_not_enabled",
            "MFA verification is disabled for Phone",
        ),
        ("webauthn", true) if !s.webauthn.mfa_web_authn_enroll_enabled => off(
            "mfa_webauthn_enroll_not_enabled",
            "MFA enroll is disabled for WebAuthn",
        ),
        ("webauthn", false) if !s.webauthn.mfa_web_authn_verify_enabled => off(
            "mfa_webauthn_verify_not_enabled",
            "MFA verification is disabled for WebAuthn",
        ),
        ("webauthn", _) => Ok(()),
        _ => Err(AuthError::Validation(
            "factor_type needs to be totp, phone, or webauthn".into(),
        )),
    }
}

/// GoTrue's limits on enrolling: no two factors with one name, at most so many factors and
/// verified factors, and a user with a verified factor enrols further ones only at `aal2`.
fn check_limits(
    state: &AuthState,
    factors: &[Factor],
    name: &str,
    aal2: bool,
) -> Result<(), AuthError> {
    if factors
        .iter()
        .any(|f| f.friendly_name.as_deref().unwrap_or("") == name)
    {
        return Err(AuthError::MfaFactorNameConflict(name.to_owned()));
    }
    let verified = factors.iter().filter(|f| f.is_verified()).count();
    if factors.len() >= state.settings.mfa_max_enrolled_factors
        || verified >= state.settings.mfa_max_verified_factors
    {
        return Err(AuthError::TooManyEnrolledFactors);
    }
    if verified > 0 && !aal2 {
        return Err(AuthError::AalRequiredToEnroll);
    }
    Ok(())
}

/// `POST /factors`: a new unverified TOTP factor, with its secret, URI and QR code.
pub async fn enroll(
    State(state): State<AuthState>,
    bearer: Bearer,
    Body(body): Body<EnrollBody>,
) -> Result<Json<Value>, AuthError> {
    let (user, session_id) = caller(&state, &bearer).await?;
    let factor_type = body.factor_type.as_deref().unwrap_or("");
    check_type(&state, factor_type, true)?;
    let webauthn = factor_type == "webauthn";
    let issuer = match body.issuer.filter(|i| !i.is_empty()) {
        Some(issuer) => issuer,
        None if webauthn => String::new(),
        None => site_host(&state.settings.site_url)?,
    };
    let name = body.friendly_name.unwrap_or_default();
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    // One enrolment of a user at a time, so the limits hold under concurrent requests.
    User::lock(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    tx.execute(
        "delete from auth.mfa_factors f where user_id = $1 and status <> 'verified' \
         and created_at + make_interval(secs => $2) < now() \
         and not exists (select 1 from auth.mfa_challenges c where c.factor_id = f.id)",
        &[&user.id, &UNVERIFIED_FACTOR_LIFETIME_SECONDS],
    )
    .await?;
    let factors = Factor::of_user(&tx, user.id).await?;
    check_limits(
        &state,
        &factors,
        &name,
        session_is_aal2(&tx, session_id).await?,
    )?;
    if webauthn {
        // The credential comes with the first challenge's verification.
        let id = Uuid::new_v4();
        tx.execute(
            "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, \
               created_at, updated_at) values ($1, $2, $3, 'webauthn', 'unverified', now(), now())",
            &[&id, &user.id, &name],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(user_id = %user.id, factor_id = %id, "mfa webauthn factor enrolled");
        return Ok(Json(
            json!({"id": id, "type": "webauthn", "friendly_name": name}),
        ));
    }
    let enrolment = totp::enrol(&issuer, user.email.as_deref().unwrap_or(""))?;
    let id = Uuid::new_v4();
    tx.execute(
        "insert into auth.mfa_factors (id, user_id, friendly_name, factor_type, status, \
           created_at, updated_at, secret) values ($1, $2, $3, 'totp', 'unverified', now(), now(), $4)",
        &[&id, &user.id, &name, &enrolment.secret],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, factor_id = %id, "mfa factor enrolled");
    Ok(Json(json!({
        "id": id,
        "type": "totp",
        "friendly_name": name,
        "totp": {
            "qr_code": enrolment.qr_code,
            "secret": enrolment.secret,
            "uri": enrolment.uri,
        },
    })))
}

/// The TOTP issuer GoTrue defaults to: the site URL's host (with its port).
fn site_host(site_url: &str) -> Result<String, AuthError> {
    let url = url::Url::parse(site_url)
        .map_err(|_| AuthError::Internal("site url is improperly formatted".into()))?;
    let host = url.host_str().unwrap_or_default();
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// `DELETE /factors/{id}`: removes the caller's factor (a verified one only from an `aal2`
/// session); sessions that reached `aal2` with it drop back to `aal1`.
pub async fn unenroll(
    State(state): State<AuthState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    let (user, session_id) = caller(&state, &bearer).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let factor = Factor::owned(&tx, user.id, &id).await?;
    if factor.is_verified() && !session_is_aal2(&tx, session_id).await? {
        return Err(AuthError::AalRequiredToUnenroll);
    }
    tx.execute("delete from auth.mfa_factors where id = $1", &[&factor.id])
        .await?;
    downgrade_sessions(&tx, factor.id).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, factor_id = %factor.id, "mfa factor unenrolled");
    Ok(Json(json!({"id": factor.id})))
}

/// Sessions that reached `aal2` with a removed factor lose that claim and go back to `aal1`.
pub async fn downgrade_sessions(db: &impl GenericClient, factor_id: Uuid) -> Result<(), AuthError> {
    db.execute(
        "delete from auth.mfa_amr_claims where authentication_method in ('totp', 'mfa/webauthn') \
         and session_id in (select id from auth.sessions where factor_id = $1)",
        &[&factor_id],
    )
    .await?;
    db.execute(
        "update auth.sessions set aal = 'aal1', factor_id = null, updated_at = now() \
         where factor_id = $1",
        &[&factor_id],
    )
    .await?;
    Ok(())
}
