//! Which user an external account (OAuth, ID token, Web3) signs in as, and the proofs of email
//! ownership that decide it.
//!
//! An account at a provider joins an existing user by email only when both sides have proven
//! that address: the provider says it verified it, and the user proved it to craftbase (a
//! mailed link or code was used, the admin API confirmed it, or a provider that verified it
//! created or joined the user). A sign-up that was merely autoconfirmed proved nothing, so
//! whoever signs up first with someone else's address cannot receive that person's later
//! OAuth sign-ins. Otherwise a new user is created, without the email when another user
//! already has it (as GoTrue does for unverified provider emails).

use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::AuthError;
use crate::user::{NewUser, User};
use crate::AuthState;

/// A provider's account, as auth keeps it in `auth.identities`.
pub struct ProviderUser {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub data: Value,
}

/// Records that `user_id` proved it receives mail at `email` (`how`: the token kind, `admin`,
/// or `provider:<name>`). One proof per user: the latest address proven.
pub async fn record_proof(
    db: &impl GenericClient,
    user_id: Uuid,
    email: &str,
    how: &str,
) -> Result<(), AuthError> {
    db.execute(
        "insert into auth.craftbase_email_proofs (user_id, email, method, proven_at) \
         values ($1, lower($2), $3, now()) \
         on conflict (user_id) do update set email = excluded.email, \
           method = excluded.method, proven_at = excluded.proven_at",
        &[&user_id, &email, &how],
    )
    .await?;
    Ok(())
}

/// True when the user proved the address it has now.
async fn proven(db: &impl GenericClient, user: &User) -> Result<bool, AuthError> {
    let Some(email) = user.email.as_deref().filter(|e| !e.is_empty()) else {
        return Ok(false);
    };
    Ok(db
        .query_opt(
            "select 1 from auth.craftbase_email_proofs where user_id = $1 and email = lower($2)",
            &[&user.id, &email],
        )
        .await?
        .is_some())
}

/// The user behind a provider account: by identity; else the user with the same email when
/// both sides proved it (see the module); else a new user.
pub async fn link_or_create(
    state: &AuthState,
    db: &impl GenericClient,
    provider: &str,
    account: &ProviderUser,
) -> Result<User, AuthError> {
    let existing = db
        .query_opt(
            "update auth.identities set identity_data = $3, last_sign_in_at = now(), \
               updated_at = now() where provider_id = $1 and provider = $2 returning user_id",
            &[&account.id, &provider, &account.data],
        )
        .await?;
    if let Some(row) = existing {
        let id: Uuid = row.get(0);
        db.execute(
            "update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2, \
               updated_at = now() where id = $1",
            &[&id, &account.data],
        )
        .await?;
        return User::find(db, id).await?.ok_or(AuthError::UserGone);
    }
    let same_email = match &account.email {
        Some(email) => User::find_by_email(db, email).await?,
        None => None,
    };
    let linkable = match &same_email {
        Some(user) if account.email_verified => proven(db, user).await?,
        _ => false,
    };
    let user = match same_email {
        Some(user) if linkable => {
            db.execute(
                "update auth.users set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'), \
                   '{providers}', coalesce(raw_app_meta_data->'providers', '[]') || to_jsonb($2::text)), \
                   updated_at = now() where id = $1",
                &[&user.id, &provider],
            )
            .await?;
            user
        }
        taken => {
            if state.settings.disable_signup {
                return Err(AuthError::SignupDisabled);
            }
            // The address stays with the user who has it; the new one signs in without it.
            let email = account.email.as_deref().filter(|_| taken.is_none());
            let user = NewUser {
                id: Uuid::new_v4(),
                aud: &state.settings.jwt_aud,
                email,
                encrypted_password: None,
                confirmed: account.email_verified && email.is_some(),
                user_metadata: &account.data,
                app_metadata: &json!({}),
                role: "authenticated",
                is_anonymous: false,
                invited: false,
                provider: Some(provider),
            }
            .insert(db)
            .await?;
            if let (Some(email), true) = (email, account.email_verified) {
                record_proof(db, user.id, email, &format!("provider:{provider}")).await?;
            }
            user
        }
    };
    db.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, \
           last_sign_in_at, created_at, updated_at) values ($1, $2, $3, $4, now(), now(), now())",
        &[&account.id, &user.id, &account.data, &provider],
    )
    .await?;
    User::find(db, user.id).await?.ok_or(AuthError::UserGone)
}

/// Attaches a provider account to `user_id` at the end of a linking round trip the signed-in
/// user started (`/user/identities/authorize`).
pub async fn attach(
    db: &impl GenericClient,
    user_id: Uuid,
    provider: &str,
    account: &ProviderUser,
) -> Result<User, AuthError> {
    let owner = db
        .query_opt(
            "select user_id from auth.identities where provider_id = $1 and provider = $2",
            &[&account.id, &provider],
        )
        .await?
        .map(|r| r.get::<_, Uuid>(0));
    match owner {
        Some(owner) if owner != user_id => return Err(AuthError::IdentityAlreadyExists),
        Some(_) => {}
        None => {
            db.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, \
                   last_sign_in_at, created_at, updated_at) \
                 values ($1, $2, $3, $4, now(), now(), now())",
                &[&account.id, &user_id, &account.data, &provider],
            )
            .await?;
        }
    }
    sync_providers(db, user_id).await?;
    User::find(db, user_id).await?.ok_or(AuthError::UserGone)
}

/// Makes `app_metadata.providers` list the user's identities (and `provider` one of them).
pub async fn sync_providers(db: &impl GenericClient, user_id: Uuid) -> Result<(), AuthError> {
    db.execute(
        "update auth.users u set raw_app_meta_data = coalesce(u.raw_app_meta_data, '{}') || \
           jsonb_build_object('providers', p.list, 'provider', \
             case when p.list ? (u.raw_app_meta_data->>'provider') \
               then u.raw_app_meta_data->>'provider' else p.list->>0 end), updated_at = now() \
         from (select coalesce(jsonb_agg(distinct provider), '[]') as list \
               from auth.identities where user_id = $1) p \
         where u.id = $1 and jsonb_array_length(p.list) > 0",
        &[&user_id],
    )
    .await?;
    Ok(())
}
