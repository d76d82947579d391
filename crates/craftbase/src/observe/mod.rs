//! What an operator watches: `GET /metrics` (Prometheus text), `GET /ready`, and the log format
//! (`--log-format`, in `config::Cli`). See the README's "Observability" section for every metric.

pub mod ready;
pub mod registry;
pub mod requests;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use craftbase_realtime::Realtime;
use craftbase_shared::ServiceContext;

use crate::services::Services;

/// Where metrics are served besides the API port.
#[derive(Args, Debug, Clone, Default)]
pub struct ObserveArgs {
    /// Also serve `/metrics`, without a key, on this address (e.g. 127.0.0.1:9100); keep it
    /// off public interfaces. On the API port `/metrics` needs the service_role key.
    #[arg(long, env = "CRAFTBASE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
}

/// The state `/metrics` and `/ready` read, shared by the API port and the metrics listener.
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only if another recorder was installed in this process first.
    handle: Option<&'static metrics_exporter_prometheus::PrometheusHandle>,
    sampled: registry::Sampled,
    ready: ready::Readiness,
    realtime: Arc<Realtime>,
}

impl Observer {
    /// Installs the recorder and builds realtime's state (whose routes `edge::app` serves) so
    /// that its sockets and replication stream can be read. `migrated`: whether start-up's
    /// migrations are done (craftbase serves only after they are).
    /// `cluster`: this node's NATS connection in cluster mode.
    pub fn new(
        services: &Services,
        migrated: bool,
        realtime_enabled: bool,
        cluster: Option<craftbase_scaleout::Node>,
    ) -> Observer {
        let realtime = Realtime::clustered(services.realtime.clone(), cluster);
        let pool = |service, role, pool: &deadpool_postgres::Pool| registry::Pool {
            service,
            role,
            pool: pool.clone(),
        };
        let pools = vec![
            pool("rest", "authenticator", &services.rest.db),
            pool("auth", "owner", &services.auth.admin),
            pool("realtime", "authenticator", &services.realtime.db),
            pool("realtime", "owner", &services.realtime.admin),
            pool("storage", "authenticator", &services.storage.ctx.db),
            pool("storage", "owner", &services.storage.ctx.admin),
        ];
        Observer {
            inner: Arc::new(Inner {
                handle: registry::handle(),
                sampled: registry::Sampled {
                    pools,
                    realtime: realtime.clone(),
                },
                ready: ready::Readiness::new(
                    services.rest.db.clone(),
                    Arc::new(AtomicBool::new(migrated)),
                    realtime_enabled.then(|| realtime.clone()),
                ),
                realtime,
            }),
        }
    }

    /// Realtime's state, to serve its routes over.
    pub fn realtime(&self) -> Arc<Realtime> {
        self.inner.realtime.clone()
    }

    /// `/ready`, and `/metrics` behind the service_role key, for the API port. `ctx` verifies
    /// keys.
    pub fn routes(&self, ctx: ServiceContext) -> Router {
        let metrics = Router::new()
            .route("/metrics", get(metrics_text))
            .layer(middleware::from_fn_with_state(ctx, require_service_role))
            .with_state(self.clone());
        Router::new()
            .route("/ready", get(ready))
            .with_state(self.clone())
            .merge(metrics)
    }

    /// Binds `addr` now (a busy port fails start-up) and serves `/metrics` there without a key.
    pub async fn listen(&self, addr: SocketAddr) -> anyhow::Result<()> {
        use anyhow::Context;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!(%addr, "serving /metrics");
        let router = Router::new()
            .route("/metrics", get(metrics_text))
            .route("/ready", get(ready))
            .with_state(self.clone());
        tokio::spawn(craftbase_shared::server::serve(
            listener,
            router,
            craftbase_shared::server::HttpLimits::default(),
            // It ends with the process (the API port's server handles the signals).
            std::future::pending::<()>(),
        ));
        Ok(())
    }
}

async fn metrics_text(State(observer): State<Observer>) -> Response {
    let Some(handle) = observer.inner.handle else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let body = observer.inner.sampled.render(handle).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn ready(State(observer): State<Observer>) -> Response {
    observer.inner.ready.respond().await
}

/// `/metrics` on the API port: the service_role key (or another unexpired service_role token
/// signed with the project's secret) as `apikey` or `Authorization: Bearer`; 401 as the edge
/// answers otherwise.
async fn require_service_role(
    State(ctx): State<ServiceContext>,
    req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let apikey = headers.get("apikey").and_then(|v| v.to_str().ok());
    let presented: Vec<&str> = apikey.into_iter().chain(bearer).collect();
    if presented.is_empty() {
        return unauthorized("No API key found in request");
    }
    if !presented.iter().any(|k| is_service_role(&ctx, k)) {
        return unauthorized("Invalid authentication credentials");
    }
    next.run(req).await
}

fn is_service_role(ctx: &ServiceContext, key: &str) -> bool {
    key == ctx.keys.service_role_key
        || ctx
            .jwt
            .verify_api_key(key)
            .is_ok_and(|claims| claims.get("role").and_then(|r| r.as_str()) == Some("service_role"))
}

fn unauthorized(message: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "message": message })),
    )
        .into_response()
}
