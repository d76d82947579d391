//! Which user an external account (OAuth, ID token, Web3) signs in as: found by its identity,
//! joined to a user by email, or attached to the signed-in user who asked to link it. Below
//! both `oauth` and `identity`, which use it.

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

/// The user behind a provider account: by identity, else by verified email, else a new one.
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
    let by_email = match (&account.email, account.email_verified) {
        (Some(email), true) => User::find_by_email(db, email).await?,
        _ => None,
    };
    let user = match by_email {
        Some(user) => {
            db.execute(
                "update auth.users set raw_app_meta_data = jsonb_set(coalesce(raw_app_meta_data, '{}'), \
                   '{providers}', coalesce(raw_app_meta_data->'providers', '[]') || to_jsonb($2::text)), \
                   email_confirmed_at = coalesce(email_confirmed_at, now()), updated_at = now() \
                 where id = $1",
                &[&user.id, &provider],
            )
            .await?;
            user
        }
        None => {
            if state.settings.disable_signup {
                return Err(AuthError::SignupDisabled);
            }
            NewUser {
                id: Uuid::new_v4(),
                aud: &state.settings.jwt_aud,
                email: account.email.as_deref(),
                encrypted_password: None,
                confirmed: account.email_verified,
                user_metadata: &account.data,
                app_metadata: &json!({}),
                role: "authenticated",
                is_anonymous: false,
                invited: false,
                provider: Some(provider),
            }
            .insert(db)
            .await?
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

/// Attaches a provider account to `user_id` at the end of a linking round trip.
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
