//! `/admin/custom-providers`: registering, listing, changing and removing custom OAuth 2.0 and
//! OpenID Connect providers (auth-js `auth.admin.customProviders`), with GoTrue's checks: the
//! `custom:` identifier prefix, https endpoints that do not point inside the network, reserved
//! authorization parameters and protected mapping targets, and an OIDC discovery document whose
//! issuer matches.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::bearer::Admin;
use crate::body::Body;
use crate::error::AuthError;
use crate::oauth::custom::{CustomProvider, COLUMNS};
use crate::AuthState;
use discovery::{discover, with_openid};
use rules::{check_identifier, check_maps, check_url};

mod discovery;
mod rules;

/// The create and update body; on update every field is optional.
#[derive(Deserialize, Default)]
pub struct Params {
    provider_type: Option<String>,
    identifier: Option<String>,
    name: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    acceptable_client_ids: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    pkce_enabled: Option<bool>,
    attribute_mapping: Option<Map<String, Value>>,
    custom_claims_allowlist: Option<Vec<String>>,
    authorization_params: Option<Map<String, Value>>,
    enabled: Option<bool>,
    email_optional: Option<bool>,
    issuer: Option<String>,
    discovery_url: Option<String>,
    skip_nonce_check: Option<bool>,
    authorization_url: Option<String>,
    token_url: Option<String>,
    userinfo_url: Option<String>,
    jwks_uri: Option<String>,
}

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::Validation(msg.into())
}

fn enabled(state: &AuthState) -> Result<(), AuthError> {
    if state.settings.custom_oauth_enabled {
        Ok(())
    } else {
        Err(AuthError::FeatureDisabled(
            "Custom OAuth providers are disabled",
        ))
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `GET /admin/custom-providers[?type=oauth2|oidc]`: `{providers: [...]}`, oldest first.
pub async fn list(
    State(state): State<AuthState>,
    _admin: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    let kind = q.kind.filter(|k| !k.is_empty());
    if kind
        .as_deref()
        .is_some_and(|k| k != "oauth2" && k != "oidc")
    {
        return Err(invalid("type must be either 'oauth2' or 'oidc'"));
    }
    let db = state.ctx.admin.get().await?;
    let sql = format!(
        "select {COLUMNS} from auth.custom_oauth_providers \
         where $1::text is null or provider_type = $1 order by created_at, identifier"
    );
    let rows = db.query(&sql, &[&kind]).await?;
    let providers: Vec<Value> = rows
        .iter()
        .map(|r| CustomProvider::from_row(r).to_json())
        .collect();
    Ok(Json(json!({ "providers": providers })))
}

/// `GET /admin/custom-providers/{identifier}`.
pub async fn get(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(identifier): Path<String>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    check_identifier(&identifier)?;
    let db = state.ctx.admin.get().await?;
    let provider = CustomProvider::find(&db, &identifier)
        .await?
        .ok_or(AuthError::CustomProviderNotFound)?;
    Ok(Json(provider.to_json()))
}

/// `POST /admin/custom-providers`: 201 and the provider.
pub async fn create(
    State(state): State<AuthState>,
    _admin: Admin,
    Body(p): Body<Params>,
) -> Result<Response, AuthError> {
    enabled(&state)?;
    let kind = p.provider_type.clone().unwrap_or_default();
    if kind != "oauth2" && kind != "oidc" {
        return Err(invalid("provider_type must be either 'oauth2' or 'oidc'"));
    }
    let oidc = kind == "oidc";
    let identifier = p.identifier.clone().unwrap_or_default();
    check_identifier(&identifier)?;
    let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let name = text(&p.name).ok_or_else(|| invalid("name is required"))?;
    let client_id = text(&p.client_id).ok_or_else(|| invalid("client_id is required"))?;
    let secret = text(&p.client_secret).ok_or_else(|| invalid("client_secret is required"))?;
    if oidc && text(&p.issuer).is_none() {
        return Err(invalid("issuer is required for OIDC providers"));
    }
    if !oidc {
        for (field, value) in [
            ("authorization_url", &p.authorization_url),
            ("token_url", &p.token_url),
            ("userinfo_url", &p.userinfo_url),
        ] {
            if text(value).is_none() {
                return Err(invalid(format!("{field} is required for OAuth2 providers")));
            }
        }
    }
    check_maps(&p)?;
    let db = state.ctx.admin.get().await?;
    let max = state.settings.custom_oauth_max_providers;
    if max > 0 {
        let n: i64 = db
            .query_one("select count(*) from auth.custom_oauth_providers", &[])
            .await?
            .get(0);
        if n >= max {
            return Err(AuthError::CustomProviderQuota);
        }
    }
    let urls: Vec<&String> = if oidc {
        [&p.issuer, &p.discovery_url]
            .into_iter()
            .flatten()
            .collect()
    } else {
        [
            &p.authorization_url,
            &p.token_url,
            &p.userinfo_url,
            &p.jwks_uri,
        ]
        .into_iter()
        .flatten()
        .collect()
    };
    for u in urls.into_iter().filter(|u| !u.is_empty()) {
        check_url(&state, u).await?;
    }
    if CustomProvider::find(&db, &identifier).await?.is_some() {
        return Err(AuthError::CustomProviderConflict);
    }
    let scopes = p.scopes.clone().unwrap_or_default();
    let mut row = CustomProvider {
        id: uuid::Uuid::new_v4(),
        provider_type: kind,
        identifier,
        name,
        client_id,
        client_secret: secret,
        acceptable_client_ids: p.acceptable_client_ids.clone().unwrap_or_default(),
        scopes: if oidc { with_openid(scopes) } else { scopes },
        pkce_enabled: p.pkce_enabled.unwrap_or(true),
        attribute_mapping: Value::Object(p.attribute_mapping.clone().unwrap_or_default()),
        authorization_params: Value::Object(p.authorization_params.clone().unwrap_or_default()),
        enabled: p.enabled.unwrap_or(true),
        email_optional: p.email_optional.unwrap_or(false),
        issuer: if oidc { text(&p.issuer) } else { None },
        discovery_url: if oidc { text(&p.discovery_url) } else { None },
        skip_nonce_check: oidc && p.skip_nonce_check.unwrap_or(false),
        discovery: None,
        authorization_url: if oidc {
            None
        } else {
            text(&p.authorization_url)
        },
        token_url: if oidc { None } else { text(&p.token_url) },
        userinfo_url: if oidc { None } else { text(&p.userinfo_url) },
        jwks_uri: if oidc { None } else { text(&p.jwks_uri) },
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        custom_claims_allowlist: p.custom_claims_allowlist.clone().unwrap_or_default(),
    };
    if oidc {
        let issuer = row.issuer.clone().unwrap_or_default();
        row.discovery = Some(discover(&state, &row.discovery_url(), &issuer).await?);
    }
    let saved = save(&db, &row, true).await?;
    tracing::info!(identifier = %saved.identifier, "custom OAuth provider created");
    Ok((StatusCode::CREATED, Json(saved.to_json())).into_response())
}

/// `PUT /admin/custom-providers/{identifier}`: changes what the body names.
pub async fn update(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(identifier): Path<String>,
    Body(p): Body<Params>,
) -> Result<Json<Value>, AuthError> {
    enabled(&state)?;
    check_identifier(&identifier)?;
    check_maps(&p)?;
    let db = state.ctx.admin.get().await?;
    let mut row = CustomProvider::find(&db, &identifier)
        .await?
        .ok_or(AuthError::CustomProviderNotFound)?;
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    if let Some(v) = set(&p.name) {
        row.name = v;
    }
    if let Some(v) = set(&p.client_id) {
        row.client_id = v;
    }
    if let Some(v) = set(&p.client_secret) {
        row.client_secret = v;
    }
    if let Some(v) = &p.acceptable_client_ids {
        row.acceptable_client_ids = v.clone();
    }
    if let Some(v) = &p.scopes {
        row.scopes = if row.is_oidc() {
            with_openid(v.clone())
        } else {
            v.clone()
        };
    }
    if let Some(v) = p.pkce_enabled {
        row.pkce_enabled = v;
    }
    if let Some(v) = &p.attribute_mapping {
        row.attribute_mapping = Value::Object(v.clone());
    }
    if let Some(v) = &p.custom_claims_allowlist {
        row.custom_claims_allowlist = v.clone();
    }
    if let Some(v) = &p.authorization_params {
        row.authorization_params = Value::Object(v.clone());
    }
    if let Some(v) = p.enabled {
        row.enabled = v;
    }
    if let Some(v) = p.email_optional {
        row.email_optional = v;
    }
    let rediscover = row.is_oidc() && (set(&p.issuer).is_some() || set(&p.discovery_url).is_some());
    if row.is_oidc() {
        for (value, slot) in [
            (set(&p.issuer), &mut row.issuer),
            (set(&p.discovery_url), &mut row.discovery_url),
        ] {
            if let Some(v) = value {
                check_url(&state, &v).await?;
                *slot = Some(v);
            }
        }
        if let Some(v) = p.skip_nonce_check {
            row.skip_nonce_check = v;
        }
    } else {
        for (value, slot) in [
            (set(&p.authorization_url), &mut row.authorization_url),
            (set(&p.token_url), &mut row.token_url),
            (set(&p.userinfo_url), &mut row.userinfo_url),
            (set(&p.jwks_uri), &mut row.jwks_uri),
        ] {
            if let Some(v) = value {
                check_url(&state, &v).await?;
                *slot = Some(v);
            }
        }
    }
    if rediscover {
        let issuer = row.issuer.clone().unwrap_or_default();
        row.discovery = Some(discover(&state, &row.discovery_url(), &issuer).await?);
    }
    Ok(Json(save(&db, &row, false).await?.to_json()))
}

/// `DELETE /admin/custom-providers/{identifier}`: 204.
pub async fn delete(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(identifier): Path<String>,
) -> Result<StatusCode, AuthError> {
    enabled(&state)?;
    check_identifier(&identifier)?;
    let db = state.ctx.admin.get().await?;
    let n = db
        .execute(
            "delete from auth.custom_oauth_providers where identifier = $1",
            &[&identifier],
        )
        .await?;
    if n == 0 {
        return Err(AuthError::CustomProviderNotFound);
    }
    tracing::info!(%identifier, "custom OAuth provider deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Inserts (`new`) or updates the row; answers it as stored.
async fn save(
    db: &deadpool_postgres::Object,
    p: &CustomProvider,
    new: bool,
) -> Result<CustomProvider, AuthError> {
    let values = "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
        $18, $19, $20, $21, $22)";
    let sql = if new {
        format!(
            "insert into auth.custom_oauth_providers (id, provider_type, identifier, name, \
               client_id, client_secret, acceptable_client_ids, scopes, pkce_enabled, \
               attribute_mapping, authorization_params, enabled, email_optional, issuer, \
               discovery_url, skip_nonce_check, cached_discovery, authorization_url, token_url, \
               userinfo_url, jwks_uri, custom_claims_allowlist, discovery_cached_at) \
             values {}, case when $17::jsonb is null then null else now() end) returning {COLUMNS}",
            values.trim_end_matches(')')
        )
    } else {
        format!(
            "update auth.custom_oauth_providers set provider_type = $2, identifier = $3, \
               name = $4, client_id = $5, client_secret = $6, acceptable_client_ids = $7, \
               scopes = $8, pkce_enabled = $9, attribute_mapping = $10, \
               authorization_params = $11, enabled = $12, email_optional = $13, issuer = $14, \
               discovery_url = $15, skip_nonce_check = $16, cached_discovery = $17, \
               authorization_url = $18, token_url = $19, userinfo_url = $20, jwks_uri = $21, \
               custom_claims_allowlist = $22, updated_at = now(), \
               discovery_cached_at = case when $17::jsonb is distinct from cached_discovery \
                 then now() else discovery_cached_at end \
             where id = $1 returning {COLUMNS}"
        )
    };
    let row = db
        .query_one(
            &sql,
            &[
                &p.id,
                &p.provider_type,
                &p.identifier,
                &p.name,
                &p.client_id,
                &p.client_secret,
                &p.acceptable_client_ids,
                &p.scopes,
                &p.pkce_enabled,
                &p.attribute_mapping,
                &p.authorization_params,
                &p.enabled,
                &p.email_optional,
                &p.issuer,
                &p.discovery_url,
                &p.skip_nonce_check,
                &p.discovery,
                &p.authorization_url,
                &p.token_url,
                &p.userinfo_url,
                &p.jwks_uri,
                &p.custom_claims_allowlist,
            ],
        )
        .await
        .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
            Some("23505") => AuthError::CustomProviderConflict,
            Some("23514") => invalid("provider fields do not satisfy the provider's constraints"),
            _ => e.into(),
        })?;
    Ok(CustomProvider::from_row(&row))
}
