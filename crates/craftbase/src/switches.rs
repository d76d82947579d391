//! Which services the API port serves (`[api]`, `[auth]`, `[realtime]`, `[storage]` `enabled` in
//! config.toml). A service switched off is not started at all, and its prefix answers 404 as
//! Supabase's gateway does for a route it does not have.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use clap::builder::BoolishValueParser;

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "craftbase", no_binary_name = true)]
pub struct ServiceSwitches {
    /// Serve REST at /rest/v1.
    #[arg(long, env = "CRAFTBASE_REST_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub rest_enabled: bool,
    /// Serve auth at /auth/v1.
    #[arg(long, env = "CRAFTBASE_AUTH_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub auth_enabled: bool,
    /// Serve realtime at /realtime/v1 (and read the replication stream).
    #[arg(long, env = "CRAFTBASE_REALTIME_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub realtime_enabled: bool,
    /// Serve storage at /storage/v1.
    #[arg(long, env = "CRAFTBASE_STORAGE_ENABLED", default_value = "true", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub storage_enabled: bool,
}

impl Default for ServiceSwitches {
    fn default() -> Self {
        Self {
            rest_enabled: true,
            auth_enabled: true,
            realtime_enabled: true,
            storage_enabled: true,
        }
    }
}

impl ServiceSwitches {
    /// From the environment (config.toml's values are laid there by `main`).
    pub fn from_env() -> anyhow::Result<Self> {
        use clap::Parser;
        Self::try_parse_from(std::iter::empty::<String>())
            .map_err(|e| anyhow::anyhow!("invalid CRAFTBASE_*_ENABLED setting: {e}"))
    }
}

/// `prefix` and everything under it answer Kong's 404 for a route it has not got.
pub fn switched_off(prefix: &str) -> Router {
    Router::new()
        .route(prefix, any(no_route))
        .route(&format!("{prefix}/{{*rest}}"), any(no_route))
}

async fn no_route() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({ "message": "no Route matched with those values" })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_switched_off_prefix_answers_kongs_404_everywhere_under_it() {
        for path in ["/auth/v1", "/auth/v1/signup", "/auth/v1/admin/users/x"] {
            let res = switched_off("/auth/v1")
                .oneshot(Request::post(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
            let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
            assert_eq!(
                &body[..],
                br#"{"message":"no Route matched with those values"}"#
            );
        }
    }

    #[test]
    fn every_service_is_on_unless_switched_off() {
        use clap::Parser;
        let on = ServiceSwitches::try_parse_from(std::iter::empty::<String>()).unwrap();
        assert!(on.rest_enabled && on.auth_enabled && on.realtime_enabled);
        let off = ServiceSwitches::try_parse_from(["--rest-enabled", "false"]).unwrap();
        assert!(!off.rest_enabled && off.auth_enabled);
        assert!(ServiceSwitches::try_parse_from(["--auth-enabled", "maybe"]).is_err());
    }
}
