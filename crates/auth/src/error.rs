//! Every error auth answers with, and the two JSON shapes auth-js reads them in.
//!
//! Handlers return [`AuthError`]; its response carries an [`ErrorReport`] extension and the
//! legacy body. [`versioned`] then rewrites the body to the `{code, message}` shape when the
//! request sent `X-Supabase-Api-Version`, because only the middleware sees the request.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

const API_VERSION: &str = "x-supabase-api-version";

/// One failure, mapped to exactly one status and error code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Could not parse request body as JSON: {0}")]
    BadJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("Request body is too large")]
    TooLarge,
    #[error("Phone not confirmed")]
    PhoneNotConfirmed,
    #[error("SAML 2.0 is disabled")]
    SamlDisabled,
    /// SAML single sign-on's refusals (crates/auth/src/sso), each with GoTrue's status and code.
    #[error("{message}")]
    Sso {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// `POST /verify` with a code and a malformed address: GoTrue's 422 there, not the 400.
    #[error("Invalid email format")]
    InvalidEmailFormat,
    #[error("Invalid login credentials")]
    InvalidCredentials,
    #[error("Email not confirmed")]
    EmailNotConfirmed,
    #[error("User already registered")]
    UserAlreadyExists,
    #[error("A user with this email address has already been registered")]
    EmailExists,
    #[error("{message}")]
    WeakPassword {
        message: String,
        reasons: Vec<&'static str>,
    },
    #[error("New password should be different from the old password.")]
    SamePassword,
    #[error("Signups not allowed for this instance")]
    SignupDisabled,
    #[error("Email logins are disabled")]
    EmailProviderDisabled,
    /// Phone sign-ups, sign-ins and codes: craftbase has no SMS provider, so GoTrue's answer
    /// with the phone provider off (its status and message differ by endpoint).
    #[error("{message}")]
    PhoneProviderDisabled {
        status: StatusCode,
        message: &'static str,
    },
    #[error("Anonymous sign-ins are disabled")]
    AnonymousProviderDisabled,
    #[error("This endpoint requires a Bearer token")]
    NoAuthorization,
    #[error("{0}")]
    BadJwt(String),
    #[error("User not allowed")]
    NotAdmin,
    #[error("User from sub claim in JWT does not exist")]
    UserGone,
    #[error("User not found")]
    UserNotFound,
    #[error("Session from session_id claim in JWT does not exist")]
    SessionGone,
    #[error("User is banned")]
    UserBanned,
    #[error("Invalid Refresh Token: Refresh Token Not Found")]
    RefreshTokenNotFound,
    #[error("Invalid Refresh Token: Already Used")]
    RefreshTokenAlreadyUsed,
    #[error("Invalid Refresh Token: Session Not Found")]
    RefreshSessionNotFound,
    #[error("Invalid Refresh Token: Session Expired")]
    SessionExpired,
    #[error("{description}")]
    OAuth {
        error: &'static str,
        description: std::borrow::Cow<'static, str>,
    },
    #[error("Token has expired or is invalid")]
    OtpExpired,
    #[error("invalid flow state, no valid flow state found")]
    FlowStateNotFound,
    #[error("invalid flow state, flow state has expired")]
    FlowStateExpired,
    #[error("code challenge does not match previously saved code verifier")]
    BadCodeVerifier,
    #[error("Request rate limit reached")]
    RequestRateLimit,
    #[error("Email rate limit exceeded")]
    EmailRateLimit,
    /// Another mail to the same address within `GOTRUE_SMTP_MAX_FREQUENCY`.
    #[error("For security purposes, you can only request this after {0} seconds.")]
    EmailFrequency(u64),
    #[error("Error sending email")]
    MailFailed,
    #[error("Signups not allowed for otp")]
    OtpDisabled,
    #[error("Not found")]
    NotFound,
    #[error("Manual linking is disabled")]
    ManualLinkingDisabled,
    #[error("Identity is already linked to another user")]
    IdentityAlreadyExists,
    #[error("Identity doesn't exist")]
    IdentityNotFound,
    #[error("User must have at least 1 identity after unlinking")]
    SingleIdentityNotDeletable,
    #[error("Password update requires reauthentication")]
    ReauthenticationNeeded,
    #[error("Requested nonce is invalid")]
    ReauthenticationNotValid,
    #[error("factor_id must be an UUID")]
    FactorIdInvalid,
    #[error("Factor not found")]
    MfaFactorNotFound,
    #[error("MFA factor with the provided challenge ID not found")]
    MfaChallengeNotFound,
    #[error("Challenge and verify IP addresses mismatch.")]
    MfaIpAddressMismatch,
    #[error("MFA challenge {0} has expired, verify against another challenge or create a new challenge.")]
    MfaChallengeExpired(uuid::Uuid),
    #[error("Invalid TOTP code entered")]
    MfaVerificationFailed,
    /// A factor locked after repeated wrong codes: GoTrue's answer when its verification hook
    /// rejects an attempt.
    #[error("Further MFA verification attempts will be rejected.")]
    MfaVerificationRejected,
    #[error("A factor with the friendly name {0:?} for this user already exists")]
    MfaFactorNameConflict(String),
    #[error("Maximum number of verified factors reached, unenroll to continue")]
    TooManyEnrolledFactors,
    #[error("AAL2 required to enroll a new factor")]
    AalRequiredToEnroll,
    #[error("AAL2 required to unenroll verified factor")]
    AalRequiredToUnenroll,
    /// A factor type (or its enrolment or verification) switched off, with GoTrue's code.
    #[error("{message}")]
    MfaDisabled {
        code: &'static str,
        message: &'static str,
    },
    /// A feature GoTrue can switch off (its routes then answer 404).
    #[error("{0}")]
    FeatureDisabled(&'static str),
    #[error("Custom OAuth provider not found")]
    CustomProviderNotFound,
    #[error("A custom OAuth provider with this identifier already exists")]
    CustomProviderConflict,
    #[error("Maximum number of custom OAuth/OIDC providers reached")]
    CustomProviderQuota,
    #[error("Error getting user email from external provider")]
    ProviderEmailMissing,
    #[error("{0}")]
    ProviderDisabled(String),
    #[error("OAuth client not found")]
    OAuthClientNotFound,
    #[error("Dynamic client registration is not enabled")]
    DynamicRegistrationDisabled,
    /// `/oauth/authorize` naming a client that is malformed or unknown.
    #[error("{0}")]
    OAuthClientInvalid(&'static str),
    #[error("authorization not found")]
    OAuthAuthorizationNotFound,
    #[error("No active grant found for this client")]
    OAuthConsentNotFound,
    /// The token endpoint's client authentication failed.
    #[error("{0}")]
    InvalidClientCredentials(String),
    /// The OAuth server's token endpoint, in the OAuth error shape with a composed description.
    #[error("{description}")]
    OAuthServer {
        error: &'static str,
        description: String,
    },
    /// Web3 sign-in, or that chain's, switched off.
    #[error("{0}")]
    Web3Disabled(&'static str),
    #[error("Unsupported chain")]
    Web3UnsupportedChain,
    /// Passkeys and WebAuthn factors, with their own codes.
    #[error(transparent)]
    WebAuthn(#[from] crate::passkey::error::WebAuthnError),
    #[error("Unexpected failure, please check server logs for more information")]
    Internal(String),
}

impl AuthError {
    /// The HTTP status and GoTrue's `error_code`.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use AuthError::*;
        match self {
            BadJson(_) => (StatusCode::BAD_REQUEST, "bad_json"),
            Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large"),
            PhoneNotConfirmed => (StatusCode::BAD_REQUEST, "phone_not_confirmed"),
            SamlDisabled => (StatusCode::NOT_FOUND, "saml_provider_disabled"),
            Sso { status, code, .. } => (*status, code),
            InvalidEmailFormat => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            InvalidCredentials => (StatusCode::BAD_REQUEST, "invalid_credentials"),
            EmailNotConfirmed => (StatusCode::BAD_REQUEST, "email_not_confirmed"),
            UserAlreadyExists => (StatusCode::UNPROCESSABLE_ENTITY, "user_already_exists"),
            EmailExists => (StatusCode::UNPROCESSABLE_ENTITY, "email_exists"),
            WeakPassword { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
            SamePassword => (StatusCode::UNPROCESSABLE_ENTITY, "same_password"),
            SignupDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "signup_disabled"),
            EmailProviderDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "email_provider_disabled"),
            PhoneProviderDisabled { status, .. } => (*status, "phone_provider_disabled"),
            AnonymousProviderDisabled => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "anonymous_provider_disabled",
            ),
            NoAuthorization => (StatusCode::UNAUTHORIZED, "no_authorization"),
            BadJwt(_) => (StatusCode::FORBIDDEN, "bad_jwt"),
            NotAdmin => (StatusCode::FORBIDDEN, "not_admin"),
            UserGone => (StatusCode::FORBIDDEN, "user_not_found"),
            UserNotFound => (StatusCode::NOT_FOUND, "user_not_found"),
            SessionGone => (StatusCode::FORBIDDEN, "session_not_found"),
            UserBanned => (StatusCode::BAD_REQUEST, "user_banned"),
            RefreshTokenNotFound => (StatusCode::BAD_REQUEST, "refresh_token_not_found"),
            RefreshTokenAlreadyUsed => (StatusCode::BAD_REQUEST, "refresh_token_already_used"),
            RefreshSessionNotFound => (StatusCode::BAD_REQUEST, "session_not_found"),
            SessionExpired => (StatusCode::BAD_REQUEST, "session_expired"),
            OAuth { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            OtpExpired => (StatusCode::FORBIDDEN, "otp_expired"),
            FlowStateNotFound => (StatusCode::NOT_FOUND, "flow_state_not_found"),
            FlowStateExpired => (StatusCode::UNPROCESSABLE_ENTITY, "flow_state_expired"),
            BadCodeVerifier => (StatusCode::BAD_REQUEST, "bad_code_verifier"),
            RequestRateLimit => (StatusCode::TOO_MANY_REQUESTS, "over_request_rate_limit"),
            EmailRateLimit | EmailFrequency(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "over_email_send_rate_limit")
            }
            MailFailed => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
            OtpDisabled => (StatusCode::UNPROCESSABLE_ENTITY, "otp_disabled"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ManualLinkingDisabled => (StatusCode::NOT_FOUND, "manual_linking_disabled"),
            IdentityAlreadyExists => (StatusCode::UNPROCESSABLE_ENTITY, "identity_already_exists"),
            IdentityNotFound => (StatusCode::NOT_FOUND, "identity_not_found"),
            SingleIdentityNotDeletable => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "single_identity_not_deletable",
            ),
            ReauthenticationNeeded => (StatusCode::BAD_REQUEST, "reauthentication_needed"),
            ReauthenticationNotValid => (StatusCode::BAD_REQUEST, "reauthentication_not_valid"),
            FactorIdInvalid => (StatusCode::NOT_FOUND, "validation_failed"),
            MfaFactorNotFound => (StatusCode::NOT_FOUND, "mfa_factor_not_found"),
            MfaChallengeNotFound => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_factor_not_found"),
            MfaIpAddressMismatch => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_ip_address_mismatch"),
            MfaChallengeExpired(_) => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_challenge_expired"),
            MfaVerificationFailed => (StatusCode::UNPROCESSABLE_ENTITY, "mfa_verification_failed"),
            MfaVerificationRejected => (StatusCode::FORBIDDEN, "mfa_verification_rejected"),
            MfaFactorNameConflict(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "mfa_factor_name_conflict")
            }
            TooManyEnrolledFactors => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_enrolled_mfa_factors",
            ),
            AalRequiredToEnroll => (StatusCode::FORBIDDEN, "insufficient_aal"),
            AalRequiredToUnenroll => (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_aal"),
            MfaDisabled { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            FeatureDisabled(_) => (StatusCode::NOT_FOUND, "feature_disabled"),
            CustomProviderNotFound => (StatusCode::NOT_FOUND, "custom_provider_not_found"),
            CustomProviderConflict => (StatusCode::BAD_REQUEST, "conflict"),
            CustomProviderQuota => (StatusCode::BAD_REQUEST, "over_custom_provider_quota"),
            ProviderEmailMissing => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
            ProviderDisabled(_) => (StatusCode::BAD_REQUEST, "provider_disabled"),
            OAuthClientNotFound => (StatusCode::NOT_FOUND, "oauth_client_not_found"),
            DynamicRegistrationDisabled => (
                StatusCode::FORBIDDEN,
                "oauth_dynamic_client_registration_disabled",
            ),
            OAuthClientInvalid(_) => (StatusCode::BAD_REQUEST, "oauth_client_not_found"),
            OAuthAuthorizationNotFound => (StatusCode::NOT_FOUND, "oauth_authorization_not_found"),
            OAuthConsentNotFound => (StatusCode::NOT_FOUND, "oauth_consent_not_found"),
            InvalidClientCredentials(_) => (StatusCode::BAD_REQUEST, "invalid_credentials"),
            OAuthServer { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Web3Disabled(_) => (StatusCode::UNPROCESSABLE_ENTITY, "web3_provider_disabled"),
            Web3UnsupportedChain => (StatusCode::BAD_REQUEST, "web3_unsupported_chain"),
            WebAuthn(e) => e.status_and_code(),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "unexpected_failure"),
        }
    }

    /// The HTTP status of this error (for answers that are redirects, not JSON).
    pub fn http_status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// GoTrue's `error_code` of this error.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// What the client is told: internal details stay in the log.
    fn message(&self) -> String {
        self.to_string()
    }
}

impl From<tokio_postgres::Error> for AuthError {
    fn from(e: tokio_postgres::Error) -> Self {
        AuthError::Internal(format!("database: {e}"))
    }
}

impl From<deadpool_postgres::PoolError> for AuthError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        AuthError::Internal(format!("database pool: {e}"))
    }
}

/// What [`versioned`] needs to render an error in the client's preferred shape.
#[derive(Clone, Debug)]
pub struct ErrorReport {
    code: &'static str,
    message: String,
    extra: Option<(&'static str, Value)>,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let AuthError::Internal(detail) = &self {
            tracing::error!(%detail, "auth request failed");
        }
        let (status, code) = self.status_and_code();
        if let AuthError::OAuth { error, description } = self {
            // OAuth endpoints' own shape, whatever version the client speaks.
            let body = json!({"error": error, "error_description": description});
            return (status, Json(body)).into_response();
        }
        if let AuthError::OAuthServer { error, description } = self {
            let body = json!({"error": error, "error_description": description});
            return (status, Json(body)).into_response();
        }
        let extra = match &self {
            AuthError::WeakPassword { reasons, .. } => {
                Some(("weak_password", json!({ "reasons": reasons })))
            }
            _ => None,
        };
        let report = ErrorReport {
            code,
            message: self.message(),
            extra,
        };
        let mut body = json!({
            "code": status.as_u16(),
            "error_code": code,
            "msg": report.message,
        });
        if let Some((key, value)) = &report.extra {
            body[*key] = value.clone();
        }
        let mut response = (status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(code) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-sb-error-code"), v);
        }
        response.extensions_mut().insert(report);
        response
    }
}

/// Renders errors as `{code, message}` and echoes the version header when the client sent one.
pub async fn versioned(request: Request, next: Next) -> Response {
    let version = request.headers().get(API_VERSION).cloned();
    let mut response = next.run(request).await;
    let Some(version) = version else {
        return response;
    };
    response
        .headers_mut()
        .insert(HeaderName::from_static(API_VERSION), version.clone());
    let Some(report) = response.extensions_mut().remove::<ErrorReport>() else {
        return response;
    };
    let mut body = json!({"code": report.code, "message": report.message});
    if let Some((key, value)) = report.extra {
        body[key] = value;
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
