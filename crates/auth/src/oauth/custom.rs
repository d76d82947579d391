//! Custom OAuth 2.0 / OpenID Connect providers kept in `auth.custom_oauth_providers`: the row,
//! its admin JSON (never the secret), and the [`Provider`] sign-ins use. An OIDC provider's
//! endpoints come from its discovery document, fetched and checked when it is registered.

use deadpool_postgres::GenericClient;
use serde_json::{json, Map, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use super::provider::{CustomEndpoints, IdTokenKeys, Provider};
use crate::error::AuthError;

/// Every column the service reads, in [`CustomProvider::from_row`]'s order.
pub const COLUMNS: &str = "id, provider_type, identifier, name, client_id, client_secret, \
    acceptable_client_ids, scopes, pkce_enabled, attribute_mapping, authorization_params, \
    enabled, email_optional, issuer, discovery_url, skip_nonce_check, cached_discovery, \
    authorization_url, token_url, userinfo_url, jwks_uri, created_at, updated_at, \
    custom_claims_allowlist";

/// One registered provider.
#[derive(Debug, Clone)]
pub struct CustomProvider {
    pub id: Uuid,
    pub provider_type: String,
    pub identifier: String,
    pub name: String,
    pub client_id: String,
    pub client_secret: String,
    pub acceptable_client_ids: Vec<String>,
    pub scopes: Vec<String>,
    pub pkce_enabled: bool,
    pub attribute_mapping: Value,
    pub authorization_params: Value,
    pub enabled: bool,
    pub email_optional: bool,
    pub issuer: Option<String>,
    pub discovery_url: Option<String>,
    pub skip_nonce_check: bool,
    pub discovery: Option<Value>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub jwks_uri: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub custom_claims_allowlist: Vec<String>,
}

impl CustomProvider {
    pub fn from_row(r: &Row) -> CustomProvider {
        CustomProvider {
            id: r.get(0),
            provider_type: r.get(1),
            identifier: r.get(2),
            name: r.get(3),
            client_id: r.get(4),
            client_secret: r.get(5),
            acceptable_client_ids: r.get(6),
            scopes: r.get(7),
            pkce_enabled: r.get(8),
            attribute_mapping: r.get(9),
            authorization_params: r.get(10),
            enabled: r.get(11),
            email_optional: r.get(12),
            issuer: r.get(13),
            discovery_url: r.get(14),
            skip_nonce_check: r.get(15),
            discovery: r.get(16),
            authorization_url: r.get(17),
            token_url: r.get(18),
            userinfo_url: r.get(19),
            jwks_uri: r.get(20),
            created_at: r.get(21),
            updated_at: r.get(22),
            custom_claims_allowlist: r.get(23),
        }
    }

    pub async fn find(
        db: &impl GenericClient,
        identifier: &str,
    ) -> Result<Option<CustomProvider>, AuthError> {
        let sql =
            format!("select {COLUMNS} from auth.custom_oauth_providers where identifier = $1");
        Ok(db
            .query_opt(&sql, &[&identifier])
            .await?
            .map(|r| Self::from_row(&r)))
    }

    pub fn is_oidc(&self) -> bool {
        self.provider_type == "oidc"
    }

    /// Where the discovery document is: `discovery_url`, else the issuer's well-known path.
    pub fn discovery_url(&self) -> String {
        match &self.discovery_url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => format!(
                "{}/.well-known/openid-configuration",
                self.issuer.as_deref().unwrap_or("").trim_end_matches('/')
            ),
        }
    }

    /// The admin API's JSON: GoTrue's fields, type-specific ones only when set.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "provider_type": self.provider_type,
            "identifier": self.identifier,
            "name": self.name,
            "client_id": self.client_id,
            "acceptable_client_ids": self.acceptable_client_ids,
            "scopes": self.scopes,
            "pkce_enabled": self.pkce_enabled,
            "attribute_mapping": self.attribute_mapping,
            "custom_claims_allowlist": self.custom_claims_allowlist,
            "authorization_params": self.authorization_params,
            "enabled": self.enabled,
            "email_optional": self.email_optional,
            "skip_nonce_check": self.skip_nonce_check,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        let optional = [
            ("issuer", self.issuer.as_ref().map(|v| json!(v))),
            (
                "discovery_url",
                self.discovery_url.as_ref().map(|v| json!(v)),
            ),
            ("discovery_document", self.discovery.clone()),
            (
                "authorization_url",
                self.authorization_url.as_ref().map(|v| json!(v)),
            ),
            ("token_url", self.token_url.as_ref().map(|v| json!(v))),
            ("userinfo_url", self.userinfo_url.as_ref().map(|v| json!(v))),
            ("jwks_uri", self.jwks_uri.as_ref().map(|v| json!(v))),
        ];
        for (key, value) in optional {
            if let Some(v) = value.filter(|v| !v.is_null()) {
                out[key] = v;
            }
        }
        out
    }

    /// The provider sign-ins talk to.
    pub fn to_provider(&self) -> Provider {
        let doc = self.discovery.clone().unwrap_or(Value::Null);
        let from_doc = |key: &str| doc[key].as_str().unwrap_or("").to_owned();
        let (authorize_url, token_url, userinfo_url, jwks) = if self.is_oidc() {
            (
                from_doc("authorization_endpoint"),
                from_doc("token_endpoint"),
                from_doc("userinfo_endpoint"),
                Some(from_doc("jwks_uri")).filter(|j| !j.is_empty()),
            )
        } else {
            (
                self.authorization_url.clone().unwrap_or_default(),
                self.token_url.clone().unwrap_or_default(),
                self.userinfo_url.clone().unwrap_or_default(),
                self.jwks_uri.clone(),
            )
        };
        let issuer = self
            .issuer
            .clone()
            .or_else(|| doc["issuer"].as_str().map(str::to_owned));
        let params = self
            .authorization_params
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        Provider::custom(CustomEndpoints {
            client_id: self.client_id.clone(),
            secret: self.client_secret.clone(),
            authorize_url,
            token_url,
            userinfo_url,
            scopes: self.scopes.join(" "),
            id_tokens: match (issuer, jwks) {
                (Some(issuer), Some(jwks_url)) => Some(IdTokenKeys {
                    issuer,
                    jwks_url,
                    extra_audiences: self.acceptable_client_ids.clone(),
                    skip_nonce_check: self.skip_nonce_check,
                }),
                _ => None,
            },
            authorization_params: params,
            attribute_mapping: self
                .attribute_mapping
                .as_object()
                .cloned()
                .unwrap_or_else(Map::new),
            pkce: self.pkce_enabled,
            email_optional: self.email_optional,
            custom_claims_allowlist: self.custom_claims_allowlist.clone(),
        })
    }
}
