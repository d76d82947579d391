//! The error every service answers with before it has a more specific one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Errors shared by all services; each maps to one exact HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service behind this prefix is not built yet.
    #[error("{service} is not implemented yet in craftbase")]
    NotImplemented { service: &'static str },
    /// The database could not be reached; details go to the log, never to the client.
    #[error("database unavailable")]
    Database(#[from] deadpool_postgres::PoolError),
}

impl ServiceError {
    fn status(&self) -> StatusCode {
        match self {
            ServiceError::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            ServiceError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        if let ServiceError::Database(e) = &self {
            tracing::error!(error = %e, "database pool error");
        }
        let body = serde_json::json!({
            "code": self.status().as_u16(),
            "error": self.status().canonical_reason().unwrap_or("error"),
            "message": self.to_string(),
        });
        (self.status(), Json(body)).into_response()
    }
}
