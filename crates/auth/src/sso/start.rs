//! `POST /sso`: starts a SAML sign-in with the provider of a `domain` or a `provider_id`,
//! answering with the identity provider's URL (303, or JSON with `skip_http_redirect` as
//! auth-js's `signInWithSSO` sends it).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::model::Provider;
use super::sp::AuthnRequest;
use super::{idp, invalid, refuse, require_enabled};
use crate::body::Body;
use crate::error::AuthError;
use crate::token::pkce::FlowRequest;
use crate::{redirect, AuthState};

/// GoTrue's `sso/saml` authentication method (flow states, the `amr` claim).
pub const METHOD: &str = "sso/saml";

#[derive(Deserialize, Default)]
pub struct SsoParams {
    provider_id: Option<Uuid>,
    #[serde(default)]
    domain: String,
    redirect_to: Option<String>,
    skip_http_redirect: Option<bool>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `POST /sso`.
pub async fn start(
    State(state): State<AuthState>,
    client: crate::limit::Client,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, AuthError> {
    // GoTrue refuses with SAML off before it reads the parameters.
    let key = require_enabled(&state)?;
    let params: SsoParams =
        serde_json::from_value(body).map_err(|e| AuthError::BadJson(e.to_string()))?;
    state.limits.sso(&state.settings, &client, false).await?;
    let provider_id = params.provider_id.filter(|id| !id.is_nil());
    let db = state.ctx.admin.get().await?;
    let provider = match (provider_id, params.domain.is_empty()) {
        (Some(_), false) => return Err(invalid("Only one of provider_id or domain supported")),
        (None, true) => return Err(invalid("A provider_id or domain needs to be provided")),
        (Some(id), true) => Provider::find(&db, id).await?.ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                "sso_provider_not_found",
                "No such SSO provider",
            )
        })?,
        (None, false) => Provider::find_by_domain(&db, params.domain.trim())
            .await?
            .ok_or_else(|| {
                refuse(
                    StatusCode::NOT_FOUND,
                    "sso_provider_not_found",
                    "No SSO provider assigned for this domain",
                )
            })?,
    };
    if !provider.enabled() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "sso_provider_disabled",
            "SSO Provider is currently disabled",
        ));
    }
    let flow = FlowRequest::from_parts(
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    )?;
    let flow_state_id = match flow {
        Some(flow) => Some(flow.save(&db, None, METHOD, METHOD).await?.0),
        None => None,
    };
    let metadata = idp::parse(&provider.metadata_xml)?;
    let destination = metadata.sso_redirect_url.ok_or_else(|| {
        AuthError::Internal(
            "the SAML provider's metadata has no HTTP-Redirect SingleSignOnService".into(),
        )
    })?;
    let request = AuthnRequest::new(&state, &destination, provider.name_id_format.as_deref());
    let redirect_to = redirect::target(&state.settings, params.redirect_to.as_deref());
    let relay_state = Uuid::new_v4();
    db.execute(
        "insert into auth.saml_relay_states (id, sso_provider_id, request_id, redirect_to, \
           created_at, updated_at, flow_state_id) values ($1, $2, $3, $4, now(), now(), $5)",
        &[
            &relay_state,
            &provider.id,
            &request.id,
            &redirect_to,
            &flow_state_id,
        ],
    )
    .await?;
    let url = request.redirect_url(&destination, &relay_state.to_string(), key);
    if params.skip_http_redirect == Some(true) {
        return Ok(Json(json!({ "url": url })).into_response());
    }
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response())
}
