//! `GET /ready`: whether this instance should get traffic. The database must answer (checked
//! with one trivial query at most once a second, whatever the request rate), start-up migrations
//! must be done and realtime's replication stream connected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use craftbase_realtime::Realtime;
use serde::Serialize;

/// How long a database check's answer is reused.
const CACHE_FOR: Duration = Duration::from_secs(1);
/// A check that takes longer counts as the database being down.
const CHECK_LIMIT: Duration = Duration::from_secs(2);

/// The readiness of the parts `/ready` names.
pub struct Readiness {
    db: deadpool_postgres::Pool,
    migrated: Arc<AtomicBool>,
    /// None when realtime is switched off.
    realtime: Option<Arc<Realtime>>,
    /// The last database check, shared: concurrent requests wait for one query.
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// The body of `/ready`, the same shape whether ready or not.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Report {
    pub database: &'static str,
    pub migrations: &'static str,
    pub replication: &'static str,
    /// Cluster mode only: `decoding` on the node that streams the slot for every node, else
    /// `reading` (this node delivers from the change log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<&'static str>,
}

impl Report {
    pub fn is_ready(&self) -> bool {
        self.database == "up"
            && self.migrations == "applied"
            && matches!(self.replication, "streaming" | "off")
    }
}

impl Readiness {
    pub fn new(
        db: deadpool_postgres::Pool,
        migrated: Arc<AtomicBool>,
        realtime: Option<Arc<Realtime>>,
    ) -> Readiness {
        Readiness {
            db,
            migrated,
            realtime,
            last: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn report(&self) -> Report {
        Report {
            database: if self.database_up().await {
                "up"
            } else {
                "down"
            },
            migrations: if self.migrated.load(Ordering::Acquire) {
                "applied"
            } else {
                "pending"
            },
            // Realtime switched off (`[realtime] enabled = false`) streams nothing, by design.
            replication: match &self.realtime {
                None => "off",
                Some(rt) if rt.is_streaming() => "streaming",
                Some(_) => "disconnected",
            },
            cluster: self
                .realtime
                .as_ref()
                .and_then(|rt| rt.cluster.as_ref())
                .map(|c| {
                    if c.is_decoding() {
                        "decoding"
                    } else {
                        "reading"
                    }
                }),
        }
    }

    async fn database_up(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, up)) = *last {
            if at.elapsed() < CACHE_FOR {
                return up;
            }
        }
        let up = tokio::time::timeout(CHECK_LIMIT, async {
            match self.db.get().await {
                Ok(client) => client.simple_query("select 1").await.is_ok(),
                Err(_) => false,
            }
        })
        .await
        .unwrap_or(false);
        *last = Some((Instant::now(), up));
        up
    }

    /// The `/ready` answer: 200 when every part is ready, 503 otherwise.
    pub async fn respond(&self) -> Response {
        let report = self.report().await;
        let status = if report.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(report)).into_response()
    }
}
