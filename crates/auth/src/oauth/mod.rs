//! Sign-in through external providers (§2.8): `GET /authorize` sends the browser to the
//! provider, `GET /callback` takes it back, finds or creates the user and its identity, and
//! redirects to the app with a session in the fragment, or with `?code=` for PKCE.
//!
//! The round trip's state travels in a short-lived JWT signed with the project secret, so no
//! table is needed for flows that are not PKCE.

pub mod custom;
mod pkce;
pub mod provider;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::AuthError;
use crate::redirect::{self, Origin};
use crate::session::Device;
use crate::token::pkce::FlowRequest;
use crate::{session, AuthState};
use provider::Provider;

/// How long a browser may take between `/authorize` and `/callback`.
const STATE_TTL_SECONDS: i64 = 600;
/// Marks a JWT as an OAuth state, so no other token of the project passes for one.
const STATE_PURPOSE: &str = "oauth_state";

/// The query of `GET /authorize` (and of `GET /user/identities/authorize`).
#[derive(Deserialize)]
pub struct AuthorizeQuery {
    provider: Option<String>,
    redirect_to: Option<String>,
    scopes: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// `GET /authorize?provider=...`: 302 to the provider's consent page.
pub async fn authorize(
    State(state): State<AuthState>,
    origin: Origin,
    client: crate::limit::Client,
    Query(q): Query<AuthorizeQuery>,
) -> Result<Response, AuthError> {
    state.limits.authorize(&state.settings, &client).await?;
    Ok(found(&provider_url(&state, &origin, &q, None).await?))
}

/// The provider's consent URL for a sign-in, or for linking to `link_user` when given.
pub async fn provider_url(
    state: &AuthState,
    origin: &Origin,
    q: &AuthorizeQuery,
    link_user: Option<Uuid>,
) -> Result<String, AuthError> {
    let name = q.provider.as_deref().unwrap_or("").to_ascii_lowercase();
    let provider = resolve(state, &name).await?;
    let flow = FlowRequest::from_parts(
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    )?;
    let flow_state_id = match flow {
        Some(flow) => {
            let db = state.ctx.admin.get().await?;
            Some(flow.save(&db, None, &name, "oauth").await?.0)
        }
        None => None,
    };
    let redirect_to = redirect::target(&state.settings, q.redirect_to.as_deref());
    let upstream_pkce = match provider.pkce {
        true => Some(pkce::start(state, &name).await?),
        false => None,
    };
    let claims = json!({
        "purpose": STATE_PURPOSE,
        "provider": name,
        "redirect_to": redirect_to,
        "flow_state_id": flow_state_id,
        "link_user_id": link_user,
        "oauth_client_state_id": upstream_pkce.as_ref().map(|p| p.id),
        "exp": chrono::Utc::now().timestamp() + STATE_TTL_SECONDS,
    });
    let signed = craftbase_shared::keys::sign(&state.ctx.keys.jwt_secret, &claims)
        .map_err(|e| AuthError::Internal(format!("signing OAuth state: {e}")))?;
    let mut scopes: Vec<&str> = provider.scopes.split_whitespace().collect();
    for s in q.scopes.as_deref().unwrap_or("").split([' ', ',']) {
        if !s.is_empty() && !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &provider.client_id)
        .append_pair("redirect_uri", &redirect_uri(&provider, origin))
        .append_pair("response_type", "code")
        .append_pair("scope", &scopes.join(" "))
        .append_pair("state", &signed)
        .extend_pairs(provider.authorization_params.iter())
        .extend_pairs(upstream_pkce.iter().flat_map(|p| {
            [
                ("code_challenge", p.challenge.as_str()),
                ("code_challenge_method", "S256"),
            ]
        }))
        .finish();
    let sep = if provider.authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(format!("{}{sep}{query}", provider.authorize_url))
}

/// The enabled provider called `name`: configured in the environment, or (`custom:…`)
/// registered through the admin API.
pub async fn resolve(state: &AuthState, name: &str) -> Result<Provider, AuthError> {
    if let Some(p) = state.providers.get(name) {
        return Ok(p.clone());
    }
    if name.starts_with("custom:") && state.settings.custom_oauth_enabled {
        let db = state.ctx.admin.get().await?;
        if let Some(p) = custom::CustomProvider::find(&db, name).await? {
            if p.enabled {
                return Ok(p.to_provider());
            }
        }
    }
    Err(AuthError::Validation(
        "Unsupported provider: provider is not enabled".into(),
    ))
}

fn redirect_uri(provider: &Provider, origin: &Origin) -> String {
    provider
        .redirect_uri
        .clone()
        .unwrap_or_else(|| format!("{}/callback", origin.0))
}

/// The query the provider sends the browser back with.
#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /callback`: finishes the sign-in and redirects to the app.
pub async fn callback(
    State(state): State<AuthState>,
    origin: Origin,
    device: Device,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let claims = q
        .state
        .as_deref()
        .and_then(|s| state.ctx.jwt.verify(s).ok())
        .filter(|c| c.get("purpose").and_then(Value::as_str) == Some(STATE_PURPOSE));
    let Some(claims) = claims else {
        return error_redirect(
            &state.settings.site_url,
            "bad_oauth_state",
            "OAuth state is missing or invalid",
        );
    };
    let redirect_to = claims
        .get("redirect_to")
        .and_then(Value::as_str)
        .unwrap_or(&state.settings.site_url)
        .to_owned();
    if let Some(error) = &q.error {
        let description = q.error_description.as_deref().unwrap_or(error);
        return error_redirect(&redirect_to, "bad_oauth_callback", description);
    }
    match finish(
        &state,
        &origin,
        &device,
        &claims,
        q.code.as_deref().unwrap_or(""),
        &redirect_to,
    )
    .await
    {
        Ok(location) => found(&location),
        Err(e) => {
            if let AuthError::Internal(detail) = &e {
                tracing::error!(%detail, "OAuth callback failed");
            }
            error_redirect(&redirect_to, e.code(), &e.to_string())
        }
    }
}

fn error_redirect(target: &str, code: &str, description: &str) -> Response {
    let params = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("error", "server_error")
        .append_pair("error_code", code)
        .append_pair("error_description", description)
        .finish();
    found(&redirect::with_params(target, &params, true))
}

async fn finish(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    claims: &craftbase_shared::Claims,
    code: &str,
    redirect_to: &str,
) -> Result<String, AuthError> {
    let name = claims.get("provider").and_then(Value::as_str).unwrap_or("");
    let provider = resolve(state, name).await?;
    if code.is_empty() {
        return Err(AuthError::Validation(
            "OAuth callback with missing authorization code".into(),
        ));
    }
    let verifier = match claims
        .get("oauth_client_state_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
    {
        Some(id) => Some(pkce::take(state, id).await?),
        None => None,
    };
    let tokens = provider
        .exchange(
            &state.http,
            code,
            &redirect_uri(&provider, origin),
            verifier.as_deref(),
        )
        .await?;
    let account = provider.user(&state.http, &tokens.access_token).await?;
    if account.email.is_none() && !provider.email_optional {
        return Err(AuthError::ProviderEmailMissing);
    }
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    let link_user = claims
        .get("link_user_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    let user = match link_user {
        Some(id) => crate::linking::attach(&tx, id, name, &account).await?,
        None => crate::linking::link_or_create(state, &tx, name, &account).await?,
    };
    let flow_state_id = claims
        .get("flow_state_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    if let Some(id) = flow_state_id {
        let row = tx
            .query_opt(
                "update auth.flow_state set user_id = $2, provider_access_token = $3, \
                   provider_refresh_token = $4, auth_code_issued_at = now(), updated_at = now() \
                 where id = $1 and user_id is null returning auth_code",
                &[&id, &user.id, &tokens.access_token, &tokens.refresh_token],
            )
            .await?
            .ok_or(AuthError::FlowStateNotFound)?;
        tx.commit().await?;
        let code: String = row.get(0);
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .finish();
        return Ok(redirect::with_params(redirect_to, &params, false));
    }
    let issued = session::create(state, &tx, origin, device, &user, "oauth").await?;
    tx.commit().await?;
    let mut extra = url::form_urlencoded::Serializer::new(String::new());
    extra.append_pair("provider_token", &tokens.access_token);
    if let Some(r) = &tokens.refresh_token {
        extra.append_pair("provider_refresh_token", r);
    }
    let fragment = format!(
        "{}&{}&sb=",
        issued.to_fragment(state, "oauth"),
        extra.finish()
    );
    Ok(redirect::with_params(redirect_to, &fragment, true))
}
