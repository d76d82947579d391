//! One-time tokens sent by email: confirmation, magic links and codes, recovery, invites and
//! email changes; `/otp`, `/recover`, `/resend` send them and `/verify` redeems them.
//!
//! Each mail carries a 6-digit code and a link; both redeem the same token. The database keeps
//! only `sha256(email || code)` (the link's `token`), in the `auth.users` column GoTrue uses
//! for that kind and in `auth.one_time_tokens`.

pub mod guesses;
mod send;
mod verify;

pub use send::{recover, resend, send_otp};
pub use verify::{verify, verify_link};

use deadpool_postgres::GenericClient;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use crate::emailed_token::{Kind, Prepared};

use crate::error::AuthError;
use crate::token::pkce::FlowRequest;
use crate::user::User;
use crate::AuthState;

/// What the database keeps of a code: `sha256(email || code)`, the link's `token`.
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
    guesses::reset(db, user.id).await?;
    if let Some(flow) = flow {
        flow.save(db, Some(user.id), "email", kind.as_str()).await?;
    }
    Ok(Prepared {
        to: to.to_owned(),
        kind,
        otp,
        token_hash: hash,
        email: user
            .email
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| to.to_owned()),
        new_email: None,
        data: user.user_metadata.clone(),
    })
}

/// Mails `prepared` without the caller waiting: answers that must not tell known addresses
/// from unknown ones (`/signup`, `/recover`) cannot wait on SMTP; a failure is logged.
pub fn mail_detached(
    state: &AuthState,
    origin: &crate::redirect::Origin,
    prepared: Prepared,
    redirect_to: Option<String>,
) {
    let (state, origin) = (state.clone(), origin.clone());
    tokio::spawn(async move {
        let kind = prepared.kind.as_str();
        if let Err(e) =
            crate::mail::send_prepared(&state, &origin, prepared, redirect_to.as_deref()).await
        {
            tracing::error!(error = %e, kind, "mail not sent");
        }
    });
}

/// The statements [`prepare`] runs, for no user: the work a request about an unknown address
/// does, so that it takes as long as one about a known address.
pub async fn prepare_for_nobody(db: &impl GenericClient, kind: Kind) -> Result<(), AuthError> {
    let nobody = Uuid::new_v4();
    let (column, sent_at, token_type) = kind.columns();
    db.execute(
        &format!("update auth.users set {column} = $2, {sent_at} = now() where id = $1"),
        &[&nobody, &token_hash("", &nobody.to_string())],
    )
    .await?;
    db.execute(
        "update auth.one_time_tokens set updated_at = now() where user_id = $1 \
           and token_type = $2::text::auth.one_time_token_type",
        &[&nobody, &token_type],
    )
    .await?;
    guesses::reset(db, nobody).await
}

/// Records a pending change of `user`'s email to `new_email` and returns the mails to send:
/// one to the new address, and with secure email change (the default) one to the current
/// address too; the change applies once every token sent is redeemed.
pub async fn start_email_change(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    new_email: &str,
    flow: Option<FlowRequest>,
) -> Result<Vec<Prepared>, AuthError> {
    restart_email_change(db, user, new_email).await?;
    let mut mails = Vec::with_capacity(2);
    let current = user.email.as_deref().filter(|e| !e.is_empty());
    if let (true, Some(current)) = (state.settings.mailer_secure_email_change_enabled, current) {
        let mut p = prepare(state, db, user, Kind::EmailChangeCurrent, current, None).await?;
        p.new_email = Some(new_email.to_owned());
        mails.push(p);
    }
    let mut p = prepare(state, db, user, Kind::EmailChange, new_email, flow).await?;
    p.new_email = Some(new_email.to_owned());
    mails.push(p);
    Ok(mails)
}

/// Starts an email change to `new_email` afresh: any earlier tokens and progress are dropped.
async fn restart_email_change(
    db: &impl GenericClient,
    user: &User,
    new_email: &str,
) -> Result<(), AuthError> {
    db.execute(
        "update auth.users set email_change = $2, email_change_confirm_status = 0, \
           email_change_token_new = '', email_change_token_current = '' where id = $1",
        &[&user.id, &new_email],
    )
    .await?;
    db.execute(
        "delete from auth.one_time_tokens where user_id = $1 and token_type in \
           ('email_change_token_new', 'email_change_token_current')",
        &[&user.id],
    )
    .await?;
    Ok(())
}

/// One token of an email change, as `generate_link` makes it: `kind` is the current or the
/// new address's. A pending change to another address is replaced; one to the same address
/// keeps its other token, so an admin may generate both links.
pub async fn prepare_email_change_link(
    state: &AuthState,
    db: &impl GenericClient,
    user: &User,
    new_email: &str,
    kind: Kind,
) -> Result<Prepared, AuthError> {
    if user.email_change.as_deref() != Some(new_email) {
        restart_email_change(db, user, new_email).await?;
    }
    let to = match kind {
        Kind::EmailChangeCurrent => user
            .email
            .clone()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| AuthError::Validation("The user has no email address".into()))?,
        _ => new_email.to_owned(),
    };
    let mut p = prepare(state, db, user, kind, &to, None).await?;
    p.new_email = Some(new_email.to_owned());
    Ok(p)
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
        guesses::reset(db, user.id).await?;
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
