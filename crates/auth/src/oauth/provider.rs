//! External OAuth 2.0 / OpenID Connect providers, configured from the environment with
//! GoTrue's names: `GOTRUE_EXTERNAL_<NAME>_ENABLED`, `_CLIENT_ID`, `_SECRET`, `_REDIRECT_URI`,
//! `_URL` (a GitHub Enterprise or self-hosted base URL). GitHub and Google are presets; any
//! other name is a generic OIDC provider that also needs `_AUTHORIZE_URL`, `_TOKEN_URL` and
//! `_USERINFO_URL` (and may set `_SCOPES`), listed in `GOTRUE_EXTERNAL_PROVIDERS`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::AuthError;
use crate::linking::ProviderUser;

/// How a provider's user record is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    GitHub,
    Oidc,
}

/// One enabled provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub client_id: String,
    secret: String,
    pub redirect_uri: Option<String>,
    pub authorize_url: String,
    token_url: String,
    userinfo_url: String,
    emails_url: Option<String>,
    pub scopes: String,
    flavor: Flavor,
    /// Issuer and key set of the provider's ID tokens, for `grant_type=id_token`.
    pub id_tokens: Option<IdTokenKeys>,
    /// Further query parameters of the consent URL (a custom provider's `authorization_params`).
    pub authorization_params: Vec<(String, String)>,
    /// A custom provider's `attribute_mapping`: claim ← source claim name, or a literal value.
    attribute_mapping: serde_json::Map<String, Value>,
    /// Send a PKCE challenge to the provider (custom providers' `pkce_enabled`).
    pub pkce: bool,
    /// Accounts without an email may sign in (`_EMAIL_OPTIONAL`, custom providers'
    /// `email_optional`); otherwise GoTrue refuses them.
    pub email_optional: bool,
    /// Userinfo claims copied verbatim into `custom_claims` (custom providers'
    /// `custom_claims_allowlist`).
    pub custom_claims_allowlist: Vec<String>,
}

/// Where a provider's ID tokens come from and the keys they are signed with.
#[derive(Debug, Clone)]
pub struct IdTokenKeys {
    pub issuer: String,
    pub jwks_url: String,
    /// Audiences accepted besides the client id (a custom provider's `acceptable_client_ids`).
    pub extra_audiences: Vec<String>,
    /// Accept tokens without checking their nonce (a custom provider's `skip_nonce_check`).
    pub skip_nonce_check: bool,
}

/// The tokens a provider answered the code exchange with.
pub struct ProviderTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// Every enabled provider, read once from the environment.
pub fn from_env() -> BTreeMap<String, Provider> {
    from_lookup(|name| std::env::var(name).ok())
}

/// As [`from_env`], reading variables through `get`.
pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> BTreeMap<String, Provider> {
    let var = |name: &str, key: &str| {
        get(&format!(
            "GOTRUE_EXTERNAL_{}_{key}",
            name.to_ascii_uppercase()
        ))
        .filter(|v| !v.is_empty())
    };
    let mut names = vec!["github".to_owned(), "google".to_owned()];
    if let Some(extra) = get("GOTRUE_EXTERNAL_PROVIDERS") {
        names.extend(
            extra
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty()),
        );
    }
    let mut out = BTreeMap::new();
    for name in names {
        let enabled =
            var(&name, "ENABLED").is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
        let (Some(client_id), Some(secret)) = (var(&name, "CLIENT_ID"), var(&name, "SECRET"))
        else {
            continue;
        };
        if !enabled {
            continue;
        }
        let base = var(&name, "URL").map(|u| u.trim_end_matches('/').to_owned());
        let email_optional = var(&name, "EMAIL_OPTIONAL")
            .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
        // ID tokens without a nonce check (`_SKIP_NONCE_CHECK`, config.toml's `skip_nonce_check`).
        let skip_nonce_check = var(&name, "SKIP_NONCE_CHECK")
            .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "yes"));
        let provider = match name.as_str() {
            "github" => {
                let (auth, api) = match &base {
                    Some(b) => (b.clone(), format!("{b}/api/v3")),
                    None => (
                        "https://github.com".to_owned(),
                        "https://api.github.com".to_owned(),
                    ),
                };
                Provider {
                    authorize_url: format!("{auth}/login/oauth/authorize"),
                    token_url: format!("{auth}/login/oauth/access_token"),
                    userinfo_url: format!("{api}/user"),
                    emails_url: Some(format!("{api}/user/emails")),
                    scopes: "user:email".into(),
                    flavor: Flavor::GitHub,
                    id_tokens: None,
                    client_id,
                    secret,
                    redirect_uri: var(&name, "REDIRECT_URI"),
                    authorization_params: Vec::new(),
                    attribute_mapping: Default::default(),
                    pkce: false,
                    email_optional,
                    custom_claims_allowlist: Vec::new(),
                }
            }
            "google" => {
                let (auth, token, userinfo) = match &base {
                    Some(b) => (
                        format!("{b}/o/oauth2/v2/auth"),
                        format!("{b}/token"),
                        format!("{b}/v1/userinfo"),
                    ),
                    None => (
                        "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
                        "https://oauth2.googleapis.com/token".to_owned(),
                        "https://openidconnect.googleapis.com/v1/userinfo".to_owned(),
                    ),
                };
                Provider {
                    authorize_url: auth,
                    token_url: token,
                    userinfo_url: userinfo,
                    emails_url: None,
                    scopes: "openid email profile".into(),
                    flavor: Flavor::Oidc,
                    id_tokens: Some(match &base {
                        Some(b) => IdTokenKeys {
                            issuer: b.clone(),
                            jwks_url: format!("{b}/oauth2/v3/certs"),
                            extra_audiences: Vec::new(),
                            skip_nonce_check,
                        },
                        None => IdTokenKeys {
                            issuer: "https://accounts.google.com".into(),
                            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
                            extra_audiences: Vec::new(),
                            skip_nonce_check,
                        },
                    }),
                    client_id,
                    secret,
                    redirect_uri: var(&name, "REDIRECT_URI"),
                    authorization_params: Vec::new(),
                    attribute_mapping: Default::default(),
                    pkce: false,
                    email_optional,
                    custom_claims_allowlist: Vec::new(),
                }
            }
            _ => {
                let (Some(authorize_url), Some(token_url), Some(userinfo_url)) = (
                    var(&name, "AUTHORIZE_URL"),
                    var(&name, "TOKEN_URL"),
                    var(&name, "USERINFO_URL"),
                ) else {
                    tracing::warn!(provider = %name, "OIDC provider lacks AUTHORIZE_URL, TOKEN_URL or USERINFO_URL; disabled");
                    continue;
                };
                Provider {
                    authorize_url,
                    token_url,
                    userinfo_url,
                    emails_url: None,
                    scopes: var(&name, "SCOPES").unwrap_or_else(|| "openid email profile".into()),
                    flavor: Flavor::Oidc,
                    id_tokens: match (var(&name, "ISSUER"), var(&name, "JWKS_URL")) {
                        (Some(issuer), Some(jwks_url)) => Some(IdTokenKeys {
                            issuer,
                            jwks_url,
                            extra_audiences: Vec::new(),
                            skip_nonce_check,
                        }),
                        _ => None,
                    },
                    client_id,
                    secret,
                    redirect_uri: var(&name, "REDIRECT_URI"),
                    authorization_params: Vec::new(),
                    attribute_mapping: Default::default(),
                    pkce: false,
                    email_optional,
                    custom_claims_allowlist: Vec::new(),
                }
            }
        };
        out.insert(name, provider);
    }
    out
}

/// The endpoints and credentials of a provider registered through the admin API.
pub struct CustomEndpoints {
    pub client_id: String,
    pub secret: String,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub scopes: String,
    pub id_tokens: Option<IdTokenKeys>,
    pub authorization_params: Vec<(String, String)>,
    pub attribute_mapping: serde_json::Map<String, Value>,
    pub pkce: bool,
    pub email_optional: bool,
    pub custom_claims_allowlist: Vec<String>,
}

impl Provider {
    /// A custom provider: read like an OpenID Connect provider, its userinfo first remapped.
    pub fn custom(e: CustomEndpoints) -> Provider {
        Provider {
            client_id: e.client_id,
            secret: e.secret,
            redirect_uri: None,
            authorize_url: e.authorize_url,
            token_url: e.token_url,
            userinfo_url: e.userinfo_url,
            emails_url: None,
            scopes: e.scopes,
            flavor: Flavor::Oidc,
            id_tokens: e.id_tokens,
            authorization_params: e.authorization_params,
            attribute_mapping: e.attribute_mapping,
            pkce: e.pkce,
            email_optional: e.email_optional,
            custom_claims_allowlist: e.custom_claims_allowlist,
        }
    }
}

/// Applies an attribute mapping: a string names the claim to copy, anything else is a literal.
fn remap(info: Value, mapping: &serde_json::Map<String, Value>) -> Value {
    let Value::Object(mut claims) = info else {
        return info;
    };
    let source = claims.clone();
    for (target, from) in mapping {
        match from {
            Value::String(name) => {
                if let Some(v) = source.get(name) {
                    // A numeric id is a subject too; OpenID's `sub` is a string.
                    let v = match (target.as_str(), v) {
                        ("sub", Value::Number(n)) => Value::String(n.to_string()),
                        _ => v.clone(),
                    };
                    claims.insert(target.clone(), v);
                }
            }
            literal => {
                claims.insert(target.clone(), literal.clone());
            }
        }
    }
    Value::Object(claims)
}

/// An OpenID Connect account from userinfo or ID-token claims; `None` without a `sub`.
pub fn oidc_account(info: &Value) -> Option<ProviderUser> {
    let id = info["sub"].as_str()?.to_owned();
    let email = info["email"].as_str().map(str::to_lowercase);
    let verified = info["email_verified"] == true || info["email_verified"] == "true";
    let mut data = info.as_object().cloned().unwrap_or_default();
    for claim in [
        "aud",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "at_hash",
        "azp",
        "auth_time",
    ] {
        data.remove(claim);
    }
    data.insert("provider_id".into(), json!(id));
    data.insert("email_verified".into(), json!(verified));
    data.insert("phone_verified".into(), json!(false));
    if let Some(name) = info["name"].as_str() {
        data.insert("full_name".into(), json!(name));
    }
    if let Some(picture) = info["picture"].as_str() {
        data.insert("avatar_url".into(), json!(picture));
    }
    Some(ProviderUser {
        id,
        email,
        email_verified: verified,
        data: Value::Object(data),
    })
}

fn upstream(e: impl std::fmt::Display) -> AuthError {
    AuthError::Internal(format!("OAuth provider: {e}"))
}

impl Provider {
    /// Trades the authorization code (and the PKCE verifier, when one was sent) for the
    /// provider's tokens.
    pub async fn exchange(
        &self,
        http: &reqwest::Client,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<ProviderTokens, AuthError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &self.client_id),
            ("client_secret", &self.secret),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .extend_pairs(code_verifier.map(|v| ("code_verifier", v)))
            .finish();
        let res = http
            .post(&self.token_url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(upstream)?;
        let status = res.status();
        let json: Value = res.json().await.map_err(upstream)?;
        let access_token = json["access_token"]
            .as_str()
            .filter(|_| status.is_success());
        let Some(access_token) = access_token else {
            return Err(upstream(format!("token endpoint answered {status}")));
        };
        Ok(ProviderTokens {
            access_token: access_token.to_owned(),
            refresh_token: json["refresh_token"].as_str().map(str::to_owned),
        })
    }

    /// Reads the signed-in account from the provider.
    pub async fn user(
        &self,
        http: &reqwest::Client,
        token: &str,
    ) -> Result<ProviderUser, AuthError> {
        let get = |url: String| {
            http.get(url)
                .bearer_auth(token)
                .header("accept", "application/json")
                .header("user-agent", "craftbase-auth")
                .send()
        };
        let info: Value = get(self.userinfo_url.clone())
            .await
            .map_err(upstream)?
            .error_for_status()
            .map_err(upstream)?
            .json()
            .await
            .map_err(upstream)?;
        match self.flavor {
            Flavor::GitHub => {
                let id = match &info["id"] {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.clone(),
                    _ => return Err(upstream("the user has no id")),
                };
                let (mut email, mut verified) = (info["email"].as_str().map(str::to_owned), false);
                if let Some(url) = &self.emails_url {
                    let emails: Value = get(url.clone())
                        .await
                        .map_err(upstream)?
                        .json()
                        .await
                        .unwrap_or(Value::Null);
                    if let Some(primary) = emails.as_array().and_then(|list| {
                        list.iter()
                            .find(|e| e["primary"] == true && e["verified"] == true)
                    }) {
                        email = primary["email"].as_str().map(str::to_owned);
                        verified = true;
                    }
                }
                let email = email.map(|e| e.to_lowercase());
                let data = json!({
                    "iss": self.userinfo_url.trim_end_matches("/user"),
                    "sub": id,
                    "provider_id": id,
                    "email": email,
                    "email_verified": verified,
                    "phone_verified": false,
                    "name": info["name"],
                    "full_name": info["name"],
                    "user_name": info["login"],
                    "preferred_username": info["login"],
                    "avatar_url": info["avatar_url"],
                });
                Ok(ProviderUser {
                    id,
                    email,
                    email_verified: verified,
                    data,
                })
            }
            Flavor::Oidc => {
                let custom: serde_json::Map<String, Value> = self
                    .custom_claims_allowlist
                    .iter()
                    .filter_map(|k| Some((k.clone(), info.get(k)?.clone())))
                    .collect();
                let mut account = oidc_account(&remap(info, &self.attribute_mapping))
                    .ok_or_else(|| upstream("userinfo has no sub"))?;
                if !custom.is_empty() {
                    account.data["custom_claims"] = Value::Object(custom);
                }
                Ok(account)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(vars: &[(&str, &str)]) -> BTreeMap<String, Provider> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn skip_nonce_check_is_read_for_providers_with_id_tokens() {
        let google = [
            ("GOTRUE_EXTERNAL_GOOGLE_ENABLED", "true"),
            ("GOTRUE_EXTERNAL_GOOGLE_CLIENT_ID", "id"),
            ("GOTRUE_EXTERNAL_GOOGLE_SECRET", "secret"),
        ];
        let checked = providers(&google);
        assert!(
            !checked["google"]
                .id_tokens
                .as_ref()
                .unwrap()
                .skip_nonce_check
        );
        let mut skipped = google.to_vec();
        skipped.push(("GOTRUE_EXTERNAL_GOOGLE_SKIP_NONCE_CHECK", "true"));
        let skipped = providers(&skipped);
        assert!(
            skipped["google"]
                .id_tokens
                .as_ref()
                .unwrap()
                .skip_nonce_check
        );
    }
}
