//! Storage's errors, answered as the Storage API answers them: the body names the real status in
//! `statusCode` (a string), with `error` and `message`, while the HTTP status is 400 for every
//! client error and 500 for a server one (storage-api's backwards-compatible rendering).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Every way a storage request fails, each with its exact answer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("Bucket not found")]
    NoSuchBucket,
    #[error("Object not found")]
    NoSuchKey,
    #[error("The resource already exists")]
    AlreadyExists,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("Bucket name invalid")]
    InvalidBucketName,
    #[error("Invalid key: {0}")]
    InvalidKey(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidJwt(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("The object exceeded the maximum allowed size")]
    EntityTooLarge,
    #[error("mime type {0} is not supported")]
    InvalidMimeType(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid range provided")]
    InvalidRange,
    #[error("No content provided")]
    NoContent,
    #[error("Missing Required Parameter {0}")]
    MissingParameter(&'static str),
    #[error("The connection to the database timed out")]
    DatabaseTimeout,
    #[error("Internal server error")]
    Internal(String),
}

impl StorageError {
    /// The status the Storage API names in the body, its `code` and its `error`.
    fn parts(&self) -> (u16, &'static str, &'static str) {
        match self {
            Self::NoSuchBucket => (404, "NoSuchBucket", "Bucket not found"),
            Self::NoSuchKey => (404, "NoSuchKey", "not_found"),
            Self::AlreadyExists => (409, "ResourceAlreadyExists", "Duplicate"),
            Self::BucketNotEmpty => (409, "ResourceNotEmpty", "ResourceNotEmpty"),
            Self::InvalidBucketName => (400, "InvalidBucketName", "Invalid Input"),
            Self::InvalidKey(_) => (400, "InvalidKey", "InvalidKey"),
            Self::AccessDenied(_) => (403, "AccessDenied", "Unauthorized"),
            Self::InvalidJwt(_) => (400, "InvalidJWT", "InvalidJWT"),
            Self::InvalidSignature(_) => (400, "InvalidSignature", "InvalidSignature"),
            Self::EntityTooLarge => (413, "EntityTooLarge", "Payload too large"),
            Self::InvalidMimeType(_) => (415, "InvalidMimeType", "invalid_mime_type"),
            Self::InvalidRequest(_) | Self::NoContent => (400, "InvalidRequest", "InvalidRequest"),
            Self::InvalidRange => (400, "InvalidRange", "InvalidRange"),
            Self::MissingParameter(_) => (400, "MissingParameter", "MissingParameter"),
            Self::DatabaseTimeout => (544, "DatabaseTimeout", "DatabaseTimeout"),
            Self::Internal(_) => (500, "InternalError", "Internal"),
        }
    }

    /// A database error as the Storage API maps it: RLS and privileges refuse, duplicates
    /// conflict, a cancelled statement timed out; anything else is internal (logged, not shown).
    pub fn from_db(e: &tokio_postgres::Error) -> Self {
        let Some(db) = e.as_db_error() else {
            return Self::Internal(e.to_string());
        };
        match db.code().code() {
            "42501" if db.message().contains("row-level security") => {
                Self::AccessDenied("new row violates row-level security policy".into())
            }
            "42501" => Self::AccessDenied(db.message().to_owned()),
            "23505" => Self::AlreadyExists,
            "57014" => Self::DatabaseTimeout,
            _ => Self::Internal(format!("database error, code: {}", db.code().code())),
        }
    }
}

impl From<tokio_postgres::Error> for StorageError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::from_db(&e)
    }
}

impl From<deadpool_postgres::PoolError> for StorageError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Internal(format!("database unavailable: {e}"))
    }
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NoSuchKey,
            other => Self::Internal(format!("object store: {other}")),
        }
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let (status, code, error) = self.parts();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(detail, "storage request failed");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let http = if status == 500 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = serde_json::json!({
            "statusCode": status.to_string(),
            "code": code,
            "error": error,
            "message": message,
        });
        (http, Json(body)).into_response()
    }
}
