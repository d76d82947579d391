//! `POST /factors/{id}/challenge` and `POST /factors/{id}/verify`: a challenge is good for one
//! verification from the address that asked for it, within the configured expiry.

use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::factor::Factor;
use super::{caller, check_type, lockout, totp, webauthn};
use crate::bearer::Bearer;
use crate::body::{Body, OptionalBody};
use crate::error::AuthError;
use crate::limit::Client;
use crate::redirect::Origin;
use crate::session::{self, new_refresh_token};
use crate::user::User;
use crate::AuthState;

/// The client address a challenge is bound to; without one (in-process calls) a fixed one.
fn address(client: &Client) -> IpAddr {
    client
        .ip()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The optional body of a challenge (`channel` is for phone factors; the relying party a
/// WebAuthn challenge names is ignored: the server's settings decide it, as in GoTrue).
#[derive(Deserialize, Default)]
pub struct ChallengeBody {}

/// `POST /factors/{id}/challenge`: `{id, type, expires_at}`.
pub async fn challenge(
    State(state): State<AuthState>,
    bearer: Bearer,
    client: Client,
    Path(id): Path<String>,
    OptionalBody(_body): OptionalBody<ChallengeBody>,
) -> Result<Json<Value>, AuthError> {
    let (user, _) = caller(&state, &bearer).await?;
    state
        .limits
        .factor_challenge(&state.settings, &client)
        .await?;
    let db = state.ctx.admin.get().await?;
    let factor = Factor::owned(&db, user.id, &id).await?;
    check_type(&state, &factor.factor_type, false)?;
    let (ceremony, kept) = if factor.factor_type == "webauthn" {
        let (ceremony, kept) = webauthn::begin(&state, &db, &user, &factor).await?;
        (Some(ceremony), Some(kept))
    } else {
        (None, None)
    };
    let challenge_id = Uuid::new_v4();
    let row = db
        .query_one(
            "with c as (insert into auth.mfa_challenges (id, factor_id, created_at, ip_address, \
               web_authn_session_data) values ($1, $2, now(), $3, $4) returning created_at), \
             f as (update auth.mfa_factors set last_challenged_at = now() where id = $2) \
             select extract(epoch from created_at)::bigint from c",
            &[&challenge_id, &factor.id, &address(&client), &kept],
        )
        .await?;
    let created: i64 = row.get(0);
    let mut out = json!({
        "id": challenge_id,
        "type": factor.factor_type,
        "expires_at": created + state.settings.mfa_challenge_expiry_duration as i64,
    });
    if let Some(ceremony) = ceremony {
        out["webauthn"] = ceremony;
    }
    Ok(Json(out))
}

/// The body of `POST /factors/{id}/verify`.
#[derive(Deserialize)]
pub struct VerifyBody {
    challenge_id: Uuid,
    #[serde(default)]
    code: String,
    /// A WebAuthn factor's answer instead of a code.
    #[serde(default)]
    webauthn: Option<webauthn::VerifyParams>,
}

/// `POST /factors/{id}/verify`: with the right code, the factor is verified and the session
/// steps up to `aal2`; answers a new access and refresh token, as a sign-in does.
///
/// Stricter than GoTrue: a challenge takes one code, right or wrong (a wrong one spends it),
/// and a factor that saw too many wrong codes refuses verification for a while.
pub async fn verify(
    State(state): State<AuthState>,
    bearer: Bearer,
    client: Client,
    origin: Origin,
    Path(id): Path<String>,
    Body(body): Body<VerifyBody>,
) -> Result<Json<Value>, AuthError> {
    let (user, session_id) = caller(&state, &bearer).await?;
    state.limits.factor_verify(&state.settings, &client).await?;
    let mut db = state.ctx.admin.get().await?;
    let factor = Factor::owned(&db, user.id, &id).await?;
    let is_webauthn = factor.factor_type == "webauthn";
    if body.code.is_empty() && !is_webauthn {
        return Err(AuthError::Validation("Code needs to be non-empty".into()));
    }
    check_type(&state, &factor.factor_type, false)?;
    if is_webauthn {
        webauthn::check_params(body.webauthn.as_ref())?;
    }
    open_challenge(&state, &db, &factor, body.challenge_id, address(&client)).await?;
    lockout::count_attempt(&state, &db, factor.id).await?;
    // A challenge takes one code: a concurrent verify of the same challenge finds it used.
    let claimed = db
        .execute(
            "update auth.mfa_challenges set verified_at = now() \
             where id = $1 and verified_at is null",
            &[&body.challenge_id],
        )
        .await?;
    if claimed == 0 {
        return Err(AuthError::MfaIpAddressMismatch);
    }
    let (method, credential) = match body.webauthn.as_ref().filter(|_| is_webauthn) {
        Some(params) => {
            let kept: Option<Value> = db
                .query_opt(
                    "select web_authn_session_data from auth.mfa_challenges where id = $1",
                    &[&body.challenge_id],
                )
                .await?
                .and_then(|r| r.get(0));
            match webauthn::finish(&state, &db, &factor, kept, params).await {
                Ok(credential) => (webauthn::AMR_METHOD, Some(credential)),
                Err(e) => {
                    db.execute(
                        "delete from auth.mfa_challenges where id = $1",
                        &[&body.challenge_id],
                    )
                    .await?;
                    tracing::info!(user_id = %user.id, factor_id = %factor.id, "mfa verification failed");
                    return Err(e);
                }
            }
        }
        None => ("totp", None),
    };
    let secret = factor.secret.as_deref().unwrap_or_default();
    if !is_webauthn && !totp::check(secret, body.code.trim())? {
        db.execute(
            "delete from auth.mfa_challenges where id = $1",
            &[&body.challenge_id],
        )
        .await?;
        tracing::info!(user_id = %user.id, factor_id = %factor.id, "mfa verification failed");
        return Err(AuthError::MfaVerificationFailed);
    }
    let tx = db.transaction().await?;
    lockout::clear(&tx, factor.id).await?;
    tx.execute(
        "update auth.mfa_factors set status = 'verified', updated_at = now() \
         where id = $1 and status <> 'verified'",
        &[&factor.id],
    )
    .await?;
    if let Some(credential) = &credential {
        let kind = if factor.is_verified() {
            "request"
        } else {
            "create"
        };
        // GoTrue's record of the last ceremony (its challenge, its kind and the authenticator's
        // answer), which the factor JSON shows for apps that check it themselves.
        let answer = body.webauthn.as_ref().and_then(|w| w.answer());
        tx.execute(
            "update auth.mfa_factors set web_authn_credential = $2, updated_at = now(), \
               last_webauthn_challenge_data = jsonb_build_object( \
                 'challenge', (select jsonb_build_object('id', c.id, 'factor_id', c.factor_id, \
                     'created_at', c.created_at, 'verified_at', c.verified_at, \
                     'ip_address', host(c.ip_address)) \
                   from auth.mfa_challenges c where c.id = $3), \
                 'type', $4::text, 'credential_response', $5::jsonb) \
             where id = $1",
            &[&factor.id, credential, &body.challenge_id, &kind, &answer],
        )
        .await?;
    }
    let refresh_token = step_up(&tx, session_id, &factor, method, &user).await?;
    let user = User::find(&tx, user.id).await?.ok_or(AuthError::UserGone)?;
    let issued = session::issue(&state, &tx, &origin, &user, session_id, refresh_token).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, factor_id = %factor.id, "mfa factor verified");
    Ok(Json(issued.to_json(&state)))
}

/// The challenge, if it may still be verified: unused, from the same address, not expired
/// (an expired one is deleted).
async fn open_challenge(
    state: &AuthState,
    db: &impl GenericClient,
    factor: &Factor,
    challenge_id: Uuid,
    ip: IpAddr,
) -> Result<(), AuthError> {
    let row = db
        .query_opt(
            "select verified_at is not null, ip_address = $3, \
               created_at + make_interval(secs => $4) < now() \
             from auth.mfa_challenges where id = $1 and factor_id = $2",
            &[
                &challenge_id,
                &factor.id,
                &ip,
                &(state.settings.mfa_challenge_expiry_duration as f64),
            ],
        )
        .await?
        .ok_or(AuthError::MfaChallengeNotFound)?;
    let (used, same_ip, expired): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if used || !same_ip {
        return Err(AuthError::MfaIpAddressMismatch);
    }
    if expired {
        db.execute(
            "delete from auth.mfa_challenges where id = $1",
            &[&challenge_id],
        )
        .await?;
        return Err(AuthError::MfaChallengeExpired(challenge_id));
    }
    Ok(())
}

/// Marks the session `aal2` through `factor` with `method` (`totp`, `mfa/webauthn`), ends the
/// user's other `aal1` sessions, drops their unverified factors of that type, and rotates the
/// session's refresh token so the one issued at `aal1` cannot be exchanged again. Returns the
/// new refresh token.
async fn step_up(
    db: &impl GenericClient,
    session_id: Uuid,
    factor: &Factor,
    method: &str,
    user: &User,
) -> Result<String, AuthError> {
    let factor_id = factor.id;
    db.execute(
        "insert into auth.mfa_amr_claims (id, session_id, created_at, updated_at, \
           authentication_method) values ($1, $2, now(), now(), $3) \
         on conflict on constraint mfa_amr_claims_session_id_authentication_method_pkey \
         do update set updated_at = now()",
        &[&Uuid::new_v4(), &session_id, &method],
    )
    .await?;
    db.execute(
        "update auth.sessions set aal = 'aal2', factor_id = $2, updated_at = now() where id = $1",
        &[&session_id, &factor_id],
    )
    .await?;
    db.execute(
        "delete from auth.sessions where user_id = $1 and aal < 'aal2'",
        &[&user.id],
    )
    .await?;
    db.execute(
        "delete from auth.mfa_factors where user_id = $1 and status = 'unverified' \
         and factor_type::text = $2",
        &[&user.id, &factor.factor_type],
    )
    .await?;
    let parent = db
        .query_opt(
            "update auth.refresh_tokens set revoked = true, updated_at = now() \
             where id = (select max(id) from auth.refresh_tokens \
                         where session_id = $1 and not revoked) returning token",
            &[&session_id],
        )
        .await?
        .map(|r| r.get::<_, Option<String>>(0));
    let token = new_refresh_token();
    db.execute(
        "insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, \
           updated_at, parent, session_id) \
         values ('00000000-0000-0000-0000-000000000000', $1, $2, false, now(), now(), $3, $4)",
        &[&token, &user.id.to_string(), &parent.flatten(), &session_id],
    )
    .await?;
    Ok(token)
}
