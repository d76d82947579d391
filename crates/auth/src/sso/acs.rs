//! `POST /sso/saml/acs`: the identity provider posts its signed Response here (HTTP-POST
//! binding). A valid one signs the user in — found by the `sso:<provider-id>` identity or
//! created as an SSO user — and redirects to the app with the session in the fragment, or with
//! `?code=` for a PKCE flow. Refusals redirect to the site URL with the error in the query,
//! as GoTrue does; only "SAML is off" answers JSON.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use super::assertion::{self, Assertion, Expect};
use super::model::Provider;
use super::start::METHOD;
use super::{idp, invalid, refuse, require_enabled, signature, sp, xml};
use crate::error::AuthError;
use crate::redirect::{self, Origin};
use crate::session::{self, Device};
use crate::user::User;
use crate::AuthState;

/// The form the IdP posts: a base64 Response of at most ~192 KiB.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// `POST /sso/saml/acs`.
pub async fn acs(
    State(state): State<AuthState>,
    origin: Origin,
    device: Device,
    client: crate::limit::Client,
    request: Request,
) -> Response {
    if let Err(e) = require_enabled(&state) {
        return e.into_response();
    }
    // Over the limit is a JSON 429 as GoTrue's limiter answers, before any redirect.
    if let Err(e) = state.limits.sso(&state.settings, &client, true).await {
        return e.into_response();
    }
    match consume(&state, &origin, &device, request).await {
        Ok(location) => found(&location),
        Err(e) => {
            match &e {
                AuthError::Internal(detail) => tracing::error!(%detail, "SAML ACS failed"),
                other => tracing::info!(code = other.code(), reason = %other, "SAML ACS refused"),
            }
            error_redirect(&state.settings.site_url, &e)
        }
    }
}

/// Where the relay state says the sign-in goes.
struct Started {
    provider: Provider,
    request_id: Option<String>,
    redirect_to: String,
    flow_state_id: Option<Uuid>,
}

async fn consume(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    request: Request,
) -> Result<String, AuthError> {
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| invalid("SAMLResponse is too large"))?;
    let mut saml_response = None;
    let mut relay_state = String::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match &*k {
            "SAMLResponse" => saml_response = Some(v.into_owned()),
            "RelayState" => relay_state = v.into_owned(),
            "SAMLart" => {
                return Err(invalid(
                    "SAML Artifact response can only be used with SP initiated flow",
                ))
            }
            _ => {}
        }
    }
    let saml_response = saml_response
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("SAMLResponse is missing"))?;
    let compact: String = saml_response
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let raw = STANDARD
        .decode(compact)
        .map_err(|_| invalid("SAMLResponse is not a valid Base64 string"))?;
    let text = String::from_utf8(raw)
        .map_err(|_| invalid("SAMLResponse is not a valid XML SAML assertion"))?;
    let doc =
        xml::parse(&text).map_err(|_| invalid("SAMLResponse is not a valid XML SAML assertion"))?;
    let root = doc
        .document_element()
        .ok_or_else(|| invalid("SAMLResponse is not a valid XML SAML assertion"))?;

    let db = state.ctx.admin.get().await?;
    let started = match Uuid::parse_str(&relay_state) {
        Ok(id) => from_relay_state(state, &db, id).await?,
        Err(_) if relay_state.is_empty() || url::Url::parse(&relay_state).is_ok() => {
            // IdP-initiated: the provider is the Response's issuer.
            let issuer = xml::child(&doc, root, xml::SAML, "Issuer")
                .or_else(|| {
                    xml::child(&doc, root, xml::SAML, "Assertion")
                        .and_then(|a| xml::child(&doc, a, xml::SAML, "Issuer"))
                })
                .map(|i| xml::text(&doc, i))
                .unwrap_or_default();
            let provider = Provider::find_by_entity_id(&db, &issuer)
                .await?
                .ok_or_else(|| {
                    refuse(
                        StatusCode::NOT_FOUND,
                        "saml_idp_not_found",
                        "A SAML connection has not been established with this Identity Provider",
                    )
                })?;
            Started {
                provider,
                request_id: None,
                redirect_to: relay_state.clone(),
                flow_state_id: None,
            }
        }
        Err(_) => return Err(invalid("SAML RelayState is not a valid UUID or URL")),
    };
    let provider = &started.provider;
    if !provider.enabled() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "sso_provider_disabled",
            "SSO Provider assigned for this domain is currently disabled",
        ));
    }
    let metadata = idp::current(state, provider).await?;
    let not_valid = |reason: String| {
        tracing::info!(%reason, provider = %provider.id, "SAML Response refused");
        invalid("SAML Assertion is not valid")
    };
    let signed = signature::signed_assertion(&doc, &metadata.signing_certs).map_err(not_valid)?;
    let (sp_entity_id, acs_url) = (sp::entity_id(state), sp::acs_url(state));
    let expect = Expect {
        idp_entity_id: &provider.entity_id,
        sp_entity_id: &sp_entity_id,
        acs_url: &acs_url,
        request_id: started.request_id.as_deref(),
        now: chrono::Utc::now(),
    };
    let assertion = assertion::validate(&doc, root, signed, &expect).map_err(not_valid)?;
    let user_id = assertion.user_id().ok_or_else(|| {
        invalid_code(
            "saml_assertion_no_user_id",
            "SAML Assertion did not contain a persistent Subject Identifier attribute or Subject NameID uniquely identifying this user",
        )
    })?;
    let mut claims = assertion.mapped_claims(&provider.attribute_mapping);
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .or_else(|| assertion.email())
        .ok_or_else(|| {
            invalid_code(
                "saml_assertion_no_email",
                "SAML Assertion does not contain an email address",
            )
        })?;
    claims.remove("email");
    let identity_data = json!({
        "iss": provider.entity_id,
        "sub": user_id,
        "email": email,
        "email_verified": true,
        "custom_claims": claims,
    });
    // Users' addresses are kept lower-case, as GoTrue's NewUser keeps them.
    let email = email.trim().to_lowercase();
    sign_in(
        state,
        origin,
        device,
        &started,
        &assertion,
        &user_id,
        &email,
        &identity_data,
    )
    .await
}

async fn from_relay_state(
    state: &AuthState,
    db: &impl GenericClient,
    id: Uuid,
) -> Result<Started, AuthError> {
    // Deleting it is what makes a relay state single-use, whatever happens next.
    let row = db
        .query_opt(
            "delete from auth.saml_relay_states where id = $1 returning sso_provider_id, \
               request_id, redirect_to, flow_state_id, \
               created_at + make_interval(secs => $2) < now()",
            &[
                &id,
                &state
                    .settings
                    .saml
                    .saml_relay_state_validity_period
                    .as_secs_f64(),
            ],
        )
        .await?
        .ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                "saml_relay_state_not_found",
                "SAML RelayState does not exist, try logging in again?",
            )
        })?;
    if row.get::<_, Option<bool>>(4).unwrap_or(true) {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "saml_relay_state_expired",
            "SAML RelayState has expired. Try logging in again?",
        ));
    }
    let provider = Provider::find(db, row.get(0)).await?.ok_or_else(|| {
        AuthError::Internal("Unable to find SSO Provider from SAML RelayState".into())
    })?;
    Ok(Started {
        provider,
        request_id: Some(row.get(1)),
        redirect_to: row.get::<_, Option<String>>(2).unwrap_or_default(),
        flow_state_id: row.get(3),
    })
}

#[allow(clippy::too_many_arguments)]
async fn sign_in(
    state: &AuthState,
    origin: &Origin,
    device: &Device,
    started: &Started,
    assertion: &Assertion,
    user_id: &str,
    email: &str,
    identity_data: &Value,
) -> Result<String, AuthError> {
    let provider_name = format!("sso:{}", started.provider.id);
    let mut db = state.ctx.admin.get().await?;
    let tx = db.transaction().await?;
    tx.execute(
        "delete from auth.craftbase_saml_assertions where expires_at < now()",
        &[],
    )
    .await?;
    let fresh = tx
        .execute(
            "insert into auth.craftbase_saml_assertions (sso_provider_id, assertion_id, expires_at) \
             values ($1, $2, $3) on conflict do nothing",
            &[&started.provider.id, &assertion.id, &assertion.expires_at],
        )
        .await?;
    if fresh == 0 {
        tracing::info!(provider = %started.provider.id, "SAML assertion replayed");
        return Err(invalid("SAML Assertion is not valid"));
    }
    let user = find_or_create(state, &tx, &provider_name, user_id, email, identity_data).await?;
    let redirect_to = redirect::target(&state.settings, Some(&started.redirect_to));
    if let Some(flow) = started.flow_state_id {
        let row = tx
            .query_opt(
                "update auth.flow_state set user_id = $2, auth_code_issued_at = now(), \
                   updated_at = now() where id = $1 and user_id is null returning auth_code",
                &[&flow, &user.id],
            )
            .await?
            .ok_or_else(|| {
                invalid_code("flow_state_already_used", "State has already been used")
            })?;
        tx.commit().await?;
        let code: String = row.get(0);
        let params = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .finish();
        return Ok(redirect::with_params(&redirect_to, &params, false));
    }
    let issued = session::create(state, &tx, origin, device, &user, METHOD).await?;
    if let Some(not_after) = assertion.session_not_after {
        tx.execute(
            "update auth.sessions set not_after = $2 where id = (select id from auth.sessions \
               where user_id = $1 order by created_at desc limit 1)",
            &[&user.id, &not_after],
        )
        .await?;
    }
    tx.commit().await?;
    let fragment = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", &issued.access_token)
        .append_pair("expires_at", &issued.expires_at.to_string())
        .append_pair("expires_in", &state.settings.jwt_exp.to_string())
        .append_pair("refresh_token", &issued.refresh_token)
        .append_pair("token_type", "bearer")
        .finish();
    Ok(redirect::with_params(&redirect_to, &fragment, true))
}

/// The SSO user of this identity, or a new one: SSO users are never linked to other accounts
/// by email (GoTrue keeps them apart with `is_sso_user`).
async fn find_or_create(
    state: &AuthState,
    db: &impl GenericClient,
    provider_name: &str,
    subject: &str,
    email: &str,
    identity_data: &Value,
) -> Result<User, AuthError> {
    let existing = db
        .query_opt(
            "update auth.identities set identity_data = $3, last_sign_in_at = now(), \
               updated_at = now() where provider_id = $1 and provider = $2 returning user_id",
            &[&subject, &provider_name, identity_data],
        )
        .await?;
    let id = match existing {
        Some(row) => {
            let id: Uuid = row.get(0);
            db.execute(
                "update auth.users set raw_user_meta_data = coalesce(raw_user_meta_data, '{}') || $2, \
                   email = $3, updated_at = now() where id = $1",
                &[&id, identity_data, &email],
            )
            .await?;
            id
        }
        None => {
            if state.settings.disable_signup {
                return Err(AuthError::SignupDisabled);
            }
            let id = Uuid::new_v4();
            let app_metadata = json!({"provider": provider_name, "providers": [provider_name]});
            db.execute(
                "insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at, \
                   raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, \
                   is_sso_user, is_super_admin, confirmation_token, recovery_token, \
                   email_change_token_new, email_change) \
                 values ('00000000-0000-0000-0000-000000000000', $1, $2, 'authenticated', $3, \
                   now(), $4, $5, now(), now(), false, true, false, '', '', '', '')",
                &[
                    &id,
                    &state.settings.jwt_aud,
                    &email,
                    &app_metadata,
                    identity_data,
                ],
            )
            .await?;
            db.execute(
                "insert into auth.identities (provider_id, user_id, identity_data, provider, \
                   last_sign_in_at, created_at, updated_at) values ($1, $2, $3, $4, now(), now(), now())",
                &[&subject, &id, identity_data, &provider_name],
            )
            .await?;
            id
        }
    };
    User::find(db, id).await?.ok_or(AuthError::UserGone)
}

fn invalid_code(code: &'static str, message: &str) -> AuthError {
    refuse(StatusCode::BAD_REQUEST, code, message)
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// GoTrue's error redirect: the site URL with `error`, `error_code` and `error_description`.
fn error_redirect(site_url: &str, e: &AuthError) -> Response {
    let status = e.http_status();
    let error = match status.as_u16() {
        400 => "invalid_request",
        401 => "unauthorized_client",
        403 => "access_denied",
        503 => "temporarily_unavailable",
        _ => "server_error",
    };
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("error", error);
    if status.as_u16() < 500 {
        q.append_pair("error_code", e.code());
    }
    q.append_pair("error_description", &e.to_string());
    let location = redirect::with_params(site_url, &q.finish(), false);
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}
