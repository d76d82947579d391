//! `/admin/sso/providers`: list, create, get, update and delete SAML identity providers, with
//! GoTrue's validation messages and error codes (the dashboard and the Supabase CLI call these).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use deadpool_postgres::GenericClient;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::idp::{self, IdpMetadata};
use super::model::Provider;
use super::{invalid, refuse, require_enabled};
use crate::bearer::Admin;
use crate::error::AuthError;
use crate::AuthState;

const NAME_ID_FORMATS: [&str; 4] = [
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
];
/// Bounds on what one provider may carry.
const MAX_DOMAINS: usize = 100;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_MAPPING_BYTES: usize = 16 * 1024;

/// A provider's JSON body: larger than other bodies (64 KiB), since it may carry the IdP's
/// metadata XML (at most [`idp::MAX_METADATA_BYTES`]).
pub struct ProviderBody(ProviderParams);

const MAX_PROVIDER_BODY_BYTES: usize = idp::MAX_METADATA_BYTES + 64 * 1024;

impl<S: Send + Sync> axum::extract::FromRequest<S> for ProviderBody {
    type Rejection = AuthError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, AuthError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_PROVIDER_BODY_BYTES)
            .await
            .map_err(|_| AuthError::TooLarge)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AuthError::BadJson("the body is empty".into()));
        }
        serde_json::from_slice(&bytes)
            .map(ProviderBody)
            .map_err(|e| AuthError::BadJson(e.to_string()))
    }
}

/// The body of create and update.
#[derive(Deserialize, Default)]
pub struct ProviderParams {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    metadata_url: String,
    #[serde(default)]
    metadata_xml: String,
    domains: Option<Vec<String>>,
    attribute_mapping: Option<Value>,
    #[serde(default)]
    name_id_format: String,
    resource_id: Option<String>,
    disabled: Option<bool>,
}

impl ProviderParams {
    fn validate(&self, for_update: bool) -> Result<(), AuthError> {
        if !for_update && self.kind != "saml" {
            return Err(invalid("Only 'saml' supported for SSO provider type"));
        }
        if !self.metadata_url.is_empty() && !self.metadata_xml.is_empty() {
            return Err(invalid(
                "Only one of metadata_xml or metadata_url needs to be set",
            ));
        }
        if !for_update && self.metadata_url.is_empty() && self.metadata_xml.is_empty() {
            return Err(invalid("Either metadata_xml or metadata_url must be set"));
        }
        if !self.metadata_url.is_empty() {
            let parsed = url::Url::parse(&self.metadata_url)
                .map_err(|_| invalid("metadata_url is not a valid URL"))?;
            if parsed.scheme() != "https" && parsed.scheme() != "http" {
                return Err(invalid("metadata_url is not a HTTPS URL"));
            }
        }
        if !self.name_id_format.is_empty()
            && !NAME_ID_FORMATS.contains(&self.name_id_format.as_str())
        {
            return Err(invalid(format!(
                "name_id_format must be unspecified or one of {}",
                NAME_ID_FORMATS.join(", ")
            )));
        }
        if let Some(domains) = &self.domains {
            if domains.len() > MAX_DOMAINS {
                return Err(invalid(format!(
                    "At most {MAX_DOMAINS} domains per SSO provider"
                )));
            }
            if domains
                .iter()
                .any(|d| d.trim().is_empty() || d.len() > MAX_DOMAIN_LEN)
            {
                return Err(invalid("SSO domains must be non-empty host names"));
            }
        }
        if let Some(mapping) = &self.attribute_mapping {
            if !mapping.is_object() || mapping.to_string().len() > MAX_MAPPING_BYTES {
                return Err(invalid(
                    "attribute_mapping must be an object with a keys map",
                ));
            }
        }
        Ok(())
    }

    /// The metadata given inline or by URL, parsed; `None` when neither was given.
    async fn metadata(
        &self,
        state: &AuthState,
    ) -> Result<Option<(String, IdpMetadata)>, AuthError> {
        let raw = if !self.metadata_xml.is_empty() {
            self.metadata_xml.clone()
        } else if !self.metadata_url.is_empty() {
            idp::fetch(state, &self.metadata_url).await?
        } else {
            return Ok(None);
        };
        let parsed = idp::parse(&raw)?;
        Ok(Some((raw, parsed)))
    }
}

/// `?resource_id=`/`?resource_id_like=` of the list.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    resource_id_like: Option<String>,
}

/// `GET /admin/sso/providers`.
pub async fn list(
    State(state): State<AuthState>,
    _admin: Admin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let providers = Provider::all(&db, q.resource_id_like.as_deref()).await?;
    let items: Vec<Value> = providers.iter().map(|p| p.to_json(false)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /admin/sso/providers`.
pub async fn create(
    State(state): State<AuthState>,
    _admin: Admin,
    ProviderBody(params): ProviderBody,
) -> Result<Response, AuthError> {
    require_enabled(&state)?;
    params.validate(false)?;
    if !params.metadata_url.is_empty() {
        idp::check_url(&state, &params.metadata_url)?;
    }
    let (raw, metadata) = params
        .metadata(&state)
        .await?
        .ok_or_else(|| invalid("Either metadata_xml or metadata_url must be set"))?;
    let mut db = state.ctx.admin.get().await?;
    if Provider::find_by_entity_id(&db, &metadata.entity_id)
        .await?
        .is_some()
    {
        return Err(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "saml_idp_already_exists",
            format!(
                "SAML Identity Provider with this EntityID ({}) already exists",
                metadata.entity_id
            ),
        ));
    }
    let domains = params.domains.clone().unwrap_or_default();
    for domain in &domains {
        if let Some(existing) = Provider::find_by_domain(&db, domain).await? {
            return Err(domain_taken(format!(
                "SSO Domain '{domain}' is already assigned to an SSO identity provider ({})",
                existing.id
            )));
        }
    }
    let id = Uuid::new_v4();
    let tx = db.transaction().await?;
    tx.execute(
        "insert into auth.sso_providers (id, resource_id, disabled, created_at, updated_at) \
         values ($1, $2, $3, now(), now())",
        &[
            &id,
            &params.resource_id.as_deref().filter(|r| !r.is_empty()),
            &params.disabled,
        ],
    )
    .await?;
    let mapping = params
        .attribute_mapping
        .clone()
        .unwrap_or_else(|| json!({}));
    tx.execute(
        "insert into auth.saml_providers (id, sso_provider_id, entity_id, metadata_xml, \
           metadata_url, attribute_mapping, name_id_format, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, now(), now())",
        &[
            &Uuid::new_v4(),
            &id,
            &metadata.entity_id,
            &raw,
            &Some(params.metadata_url.as_str()).filter(|u| !u.is_empty()),
            &mapping,
            &Some(params.name_id_format.as_str()).filter(|f| !f.is_empty()),
        ],
    )
    .await?;
    insert_domains(&tx, id, &domains).await?;
    tx.commit().await?;
    let provider = Provider::find(&db, id).await?.ok_or_else(not_found)?;
    Ok((StatusCode::CREATED, Json(provider.to_json(true))).into_response())
}

/// `GET /admin/sso/providers/{idp_id}`.
pub async fn get(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(idp_id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    Ok(Json(load(&db, &idp_id).await?.to_json(true)))
}

/// `PUT /admin/sso/providers/{idp_id}`.
pub async fn update(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(idp_id): Path<String>,
    ProviderBody(params): ProviderBody,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    params.validate(true)?;
    if !params.metadata_url.is_empty() {
        idp::check_url(&state, &params.metadata_url)?;
    }
    let mut db = state.ctx.admin.get().await?;
    let provider = load(&db, &idp_id).await?;
    let metadata = params.metadata(&state).await?;
    if let Some((_, m)) = &metadata {
        if m.entity_id != provider.entity_id {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "saml_entity_id_mismatch",
                format!(
                    "SAML Metadata can be updated only if the EntityID matches for the provider; expected '{}' but got '{}'",
                    provider.entity_id, m.entity_id
                ),
            ));
        }
    }
    if let Some(domains) = &params.domains {
        for domain in domains {
            if let Some(existing) = Provider::find_by_domain(&db, domain).await? {
                if existing.id != provider.id {
                    return Err(domain_taken(format!(
                        "SSO domain '{domain}' already assigned to another provider ({})",
                        existing.id
                    )));
                }
            }
        }
    }
    let tx = db.transaction().await?;
    if let Some((raw, _)) = &metadata {
        tx.execute(
            "update auth.saml_providers set metadata_xml = $2, \
               metadata_url = coalesce($3, metadata_url), updated_at = now() \
             where sso_provider_id = $1",
            &[
                &provider.id,
                raw,
                &Some(params.metadata_url.as_str()).filter(|u| !u.is_empty()),
            ],
        )
        .await?;
    }
    if let Some(mapping) = &params.attribute_mapping {
        tx.execute(
            "update auth.saml_providers set attribute_mapping = $2, updated_at = now() \
             where sso_provider_id = $1",
            &[&provider.id, mapping],
        )
        .await?;
    }
    // As GoTrue: an absent or empty name_id_format clears it.
    tx.execute(
        "update auth.saml_providers set name_id_format = $2 where sso_provider_id = $1",
        &[
            &provider.id,
            &Some(params.name_id_format.as_str()).filter(|f| !f.is_empty()),
        ],
    )
    .await?;
    if let Some(domains) = &params.domains {
        tx.execute(
            "delete from auth.sso_domains where sso_provider_id = $1 and not (lower(domain) = any($2))",
            &[
                &provider.id,
                &domains.iter().map(|d| d.to_lowercase()).collect::<Vec<_>>(),
            ],
        )
        .await?;
        let new: Vec<String> = domains
            .iter()
            .filter(|d| !provider.domains.iter().any(|e| e.eq_ignore_ascii_case(d)))
            .cloned()
            .collect();
        insert_domains(&tx, provider.id, &new).await?;
    }
    if let Some(resource_id) = &params.resource_id {
        tx.execute(
            "update auth.sso_providers set resource_id = $2 where id = $1",
            &[
                &provider.id,
                &Some(resource_id.as_str()).filter(|r| !r.is_empty()),
            ],
        )
        .await?;
    }
    if let Some(disabled) = params.disabled {
        tx.execute(
            "update auth.sso_providers set disabled = $2 where id = $1",
            &[&provider.id, &disabled],
        )
        .await?;
    }
    tx.execute(
        "update auth.sso_providers set updated_at = now() where id = $1",
        &[&provider.id],
    )
    .await?;
    tx.commit().await?;
    let provider = Provider::find(&db, provider.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(provider.to_json(true)))
}

/// `DELETE /admin/sso/providers/{idp_id}`: answers with the deleted provider, as GoTrue.
pub async fn delete(
    State(state): State<AuthState>,
    _admin: Admin,
    Path(idp_id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    require_enabled(&state)?;
    let db = state.ctx.admin.get().await?;
    let provider = load(&db, &idp_id).await?;
    db.execute(
        "delete from auth.sso_providers where id = $1",
        &[&provider.id],
    )
    .await?;
    Ok(Json(provider.to_json(true)))
}

/// A provider by UUID or `resource_<id>`, as GoTrue's `loadSSOProvider`.
async fn load(db: &impl GenericClient, idp_id: &str) -> Result<Provider, AuthError> {
    let found = match idp_id.strip_prefix("resource_") {
        Some(resource) => Provider::find_by_resource_id(db, resource).await?,
        None => match Uuid::parse_str(idp_id) {
            Ok(id) => Provider::find(db, id).await?,
            Err(_) => None,
        },
    };
    found.ok_or_else(not_found)
}

async fn insert_domains(
    db: &impl GenericClient,
    id: Uuid,
    domains: &[String],
) -> Result<(), AuthError> {
    for domain in domains {
        db.execute(
            "insert into auth.sso_domains (id, sso_provider_id, domain, created_at, updated_at) \
             values ($1, $2, $3, now(), now())",
            &[&Uuid::new_v4(), &id, &domain.trim()],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => domain_taken(format!(
                "SSO Domain '{domain}' is already assigned to an SSO identity provider"
            )),
            _ => e.into(),
        })?;
    }
    Ok(())
}

fn not_found() -> AuthError {
    refuse(
        StatusCode::NOT_FOUND,
        "sso_provider_not_found",
        "SSO Identity Provider not found",
    )
}

fn domain_taken(message: String) -> AuthError {
    refuse(
        StatusCode::BAD_REQUEST,
        "sso_domain_already_exists",
        message,
    )
}
