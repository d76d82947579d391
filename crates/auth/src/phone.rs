//! Phone accounts as far as craftbase can take them without an SMS provider: with the phone
//! provider on and `GOTRUE_SMS_AUTOCONFIRM`, a sign-up by number and password is confirmed at
//! once (GoTrue sends no code then either), and the number and password sign in.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::body;
use crate::error::AuthError;
use crate::redirect::Origin;
use crate::session::{self, Device};
use crate::user::{NewUser, User, COLUMNS};
use crate::{password, AuthState};

/// The confirmed user of a number, or none.
async fn find(
    db: &impl deadpool_postgres::GenericClient,
    phone: &str,
) -> Result<Option<User>, AuthError> {
    let sql = format!("select {COLUMNS} from auth.users where phone = $1 and not is_sso_user");
    Ok(db
        .query_opt(&sql, &[&phone])
        .await?
        .as_ref()
        .map(User::from_row))
}

/// `POST /signup` with a phone and `GOTRUE_SMS_AUTOCONFIRM`: a confirmed user with a phone
/// identity, and its session.
pub async fn sign_up(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    number: &str,
    pw: &str,
    meta: &Value,
) -> Result<Value, AuthError> {
    if pw.is_empty() {
        return Err(AuthError::Validation(
            "Signup requires a valid password".into(),
        ));
    }
    let phone = body::phone(number)?;
    password::check_strength(&state.settings, pw)?;
    let hash = password::hash(pw.to_owned()).await?;
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    if find(&tx, &phone).await?.is_some() {
        return Err(AuthError::UserAlreadyExists);
    }
    let id = Uuid::new_v4();
    NewUser {
        id,
        aud: &state.settings.jwt_aud,
        email: None,
        encrypted_password: Some(&hash),
        confirmed: false,
        user_metadata: meta,
        app_metadata: &json!({}),
        role: "authenticated",
        is_anonymous: false,
        invited: false,
        provider: Some("phone"),
    }
    .insert(&tx)
    .await?;
    tx.execute(
        "update auth.users set phone = $2, phone_confirmed_at = now() where id = $1",
        &[&id, &phone],
    )
    .await?;
    let data = json!({
        "sub": id.to_string(),
        "phone": phone,
        "email_verified": false,
        "phone_verified": true,
    });
    tx.execute(
        "insert into auth.identities (provider_id, user_id, identity_data, provider, \
           last_sign_in_at, created_at, updated_at) \
         values ($1, $2, $3, 'phone', now(), now(), now())",
        &[&id.to_string(), &id, &data],
    )
    .await?;
    let user = User::find(&tx, id).await?.ok_or(AuthError::UserGone)?;
    let issued = session::create(state, &tx, origin, device, &user, "password").await?;
    tx.commit().await?;
    Ok(issued.to_json(state))
}

/// `grant_type=password` with a phone: an unknown number costs the same bcrypt work as a wrong
/// password; an unconfirmed number is GoTrue's "Phone not confirmed".
pub async fn sign_in(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    number: &str,
    pw: &str,
) -> Result<Value, AuthError> {
    // GoTrue only drops `+` and spaces here; a malformed number simply matches nobody.
    let phone: String = number
        .strip_prefix('+')
        .unwrap_or(number)
        .chars()
        .filter(|c| *c != ' ')
        .collect();
    let mut db = state.ctx.admin.get().await?;
    let user = find(&db, &phone).await?;
    let stored = user.as_ref().and_then(|u| u.encrypted_password.clone());
    let ok = password::verify(pw.to_owned(), stored).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => return Err(AuthError::InvalidCredentials),
    };
    if user.phone_confirmed_at.is_none() {
        return Err(AuthError::PhoneNotConfirmed);
    }
    if user.is_banned() {
        return Err(AuthError::UserBanned);
    }
    let tx = db.transaction().await?;
    let issued = session::create(state, &tx, origin, device, &user, "password").await?;
    tx.commit().await?;
    Ok(issued.to_json(state))
}
