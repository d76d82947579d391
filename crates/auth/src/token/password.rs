//! `grant_type=password`: email and password for a session.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::AuthError;
use crate::redirect::Origin;
use crate::session::Device;
use crate::user::User;
use crate::{password, session, AuthState};

/// The body auth-js sends; `gotrue_meta_security` and other fields are ignored.
#[derive(Deserialize)]
pub struct PasswordGrant {
    email: Option<String>,
    phone: Option<String>,
    password: Option<String>,
}

/// Signs in; an unknown email costs the same bcrypt work as a wrong password.
pub async fn grant(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    body: PasswordGrant,
) -> Result<Value, AuthError> {
    let Some(pw) = body.password.filter(|p| !p.is_empty()) else {
        return Err(AuthError::Validation("Password is required".into()));
    };
    let given = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    if given(&body.email) && given(&body.phone) {
        return Err(AuthError::Validation(
            "Only an email address or phone number should be provided on login.".into(),
        ));
    }
    let email = match (body.email.as_deref(), body.phone.as_deref()) {
        (Some(e), _) if !e.trim().is_empty() => e.trim().to_lowercase(),
        (_, Some(p)) if !p.trim().is_empty() && state.settings.phone_enabled => {
            return crate::phone::sign_in(state, origin, device, p, &pw).await;
        }
        (_, Some(p)) if !p.trim().is_empty() => {
            // No SMS provider: phone sign-in is off, as in GoTrue without one.
            return Err(AuthError::PhoneProviderDisabled {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                message: "Phone logins are disabled",
            });
        }
        _ => {
            return Err(AuthError::Validation(
                "An email address or phone number is required".into(),
            ))
        }
    };
    if !state.settings.email_enabled {
        return Err(AuthError::EmailProviderDisabled);
    }
    let mut db = state.ctx.admin.get().await?;
    let user = User::find_by_email(&db, &email).await?;
    let stored = user.as_ref().and_then(|u| u.encrypted_password.clone());
    let ok = password::verify(pw.clone(), stored).await?;
    let user = match user {
        Some(u) if ok => u,
        _ => return Err(AuthError::InvalidCredentials),
    };
    if user.email_confirmed_at.is_none() {
        return Err(AuthError::EmailNotConfirmed);
    }
    if user.is_banned() {
        return Err(AuthError::UserBanned);
    }
    let tx = db.transaction().await?;
    let issued = session::create(state, &tx, origin, device, &user, "password").await?;
    tx.commit().await?;
    let mut body = issued.to_json(state);
    if let Err(AuthError::WeakPassword { message, reasons }) =
        password::check_strength(&state.settings, &pw)
    {
        body["weak_password"] = json!({"reasons": reasons, "message": message});
    }
    Ok(body)
}
