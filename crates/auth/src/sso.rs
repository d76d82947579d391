//! `/sso` and `/sso/saml/*`: craftbase has no SAML 2.0 identity-provider support yet, so these
//! answer as GoTrue does with `GOTRUE_SAML_ENABLED=false` (auth-js's `signInWithSSO` reads it),
//! rather than the router's bare 404.

use crate::error::AuthError;

/// GoTrue's `requireSAMLEnabled` refusal, whatever the method or body.
pub async fn disabled() -> AuthError {
    AuthError::SamlDisabled
}
