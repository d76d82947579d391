//! The HTTP/1.1 server every craftbase binary listens with: hyper with the limits `axum::serve`
//! leaves unset, so a slow or broken client costs a bounded time, and a client whose upload is
//! refused still reads the answer instead of a reset connection.

mod body;
mod socket;
mod timer;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use body::{Failure, GuardedBody, Outcome};
use socket::{Activity, Watched};
use timer::HeadTimer;

/// How long a graceful stop waits for requests in flight before closing their connections.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Bounds on each connection and request body. Every one is a time or a size a client can
/// otherwise stretch at will.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// A request's line and headers must arrive within this: counted from the accept on a new
    /// connection, from the first byte of the next request on a kept-alive one.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request started is closed after this.
    pub keep_alive_timeout: Duration,
    /// The longest wait for the next piece of a request body: 408 and the connection closed.
    pub body_timeout: Duration,
    /// What a service refused without reading (401, 413, 415...) is still read and discarded
    /// up to this many bytes, so the client reads the answer rather than a reset.
    pub drain_limit: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            drain_limit: 16 * 1024 * 1024,
        }
    }
}

impl HttpLimits {
    /// The limits from the variables `craftbase start` reads too (`CRAFTBASE_HEADER_TIMEOUT`,
    /// `CRAFTBASE_KEEP_ALIVE_TIMEOUT`, `CRAFTBASE_BODY_TIMEOUT` in seconds, `CRAFTBASE_DRAIN_LIMIT`
    /// in bytes), for the services' standalone binaries; unset means the default.
    pub fn from_env() -> anyhow::Result<Self> {
        let read = |name: &str, default: u64| -> anyhow::Result<u64> {
            match std::env::var(name) {
                Ok(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => anyhow::bail!("{name} must be a positive whole number, not {v:?}"),
                },
                Err(_) => Ok(default),
            }
        };
        let d = Self::default();
        let secs = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            read(name, default.as_secs()).map(Duration::from_secs)
        };
        Ok(Self {
            header_timeout: secs("CRAFTBASE_HEADER_TIMEOUT", d.header_timeout)?,
            keep_alive_timeout: secs("CRAFTBASE_KEEP_ALIVE_TIMEOUT", d.keep_alive_timeout)?,
            body_timeout: secs("CRAFTBASE_BODY_TIMEOUT", d.body_timeout)?,
            drain_limit: read("CRAFTBASE_DRAIN_LIMIT", d.drain_limit)?,
        })
    }
}

/// Serves `router` on `listener` until `stop` resolves, then lets requests in flight finish
/// (for at most [`STOP_GRACE`]). Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()>,
) {
    let (stopping, watcher) = watch::channel(());
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits,
            watcher.clone(),
        ));
    }
    drop(listener);
    drop(watcher);
    stopping.send_replace(());
    if tokio::time::timeout(STOP_GRACE, stopping.closed())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {STOP_GRACE:?}; closing their connections");
    }
}

/// One connection, until the client leaves, a limit ends it, or a stop is asked for.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpLimits,
    mut stopping: watch::Receiver<()>,
) {
    no_delay(&stream);
    let activity = Activity::shared();
    let io = TokioIo::new(Watched::new(stream, activity.clone()));
    let timer = HeadTimer::new(activity.clone(), limits.keep_alive_timeout);
    let service =
        service_fn(move |req| request(router.clone(), req, peer, limits, activity.clone()));
    let conn = http1::Builder::new()
        .timer(timer)
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = stopping.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// One request: its body guarded, then the router; a body that broke or stalled turns the
/// answer into 400 or 408, whatever the service made of the failed read.
async fn request(
    router: Router,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    limits: HttpLimits,
    activity: Arc<Activity>,
) -> Result<Response, Infallible> {
    req.extensions_mut().insert(ConnectInfo(peer));
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let outcome = Outcome::shared();
    let req = req.map(|body| {
        axum::body::Body::new(GuardedBody::new(
            body,
            limits,
            outcome.clone(),
            activity.clone(),
            expects_continue,
        ))
    });
    let response = router.oneshot(req).await?;
    Ok(match outcome.failure() {
        None => response,
        Some(failure) => refused(failure, response),
    })
}

/// Kong's answers when nginx refuses a body, keeping the request id and CORS headers the edge
/// added; the connection is closed after it, as what follows on it cannot be trusted.
fn refused(failure: Failure, original: Response) -> Response {
    let (status, message) = match failure {
        Failure::Malformed => (StatusCode::BAD_REQUEST, "Bad request"),
        Failure::TimedOut => (StatusCode::REQUEST_TIMEOUT, "Request timeout"),
    };
    let mut response = (status, Json(serde_json::json!({ "message": message }))).into_response();
    let headers = response.headers_mut();
    for (name, value) in original.headers() {
        let name_str = name.as_str();
        if name_str == "x-request-id" || name_str.starts_with("access-control-") {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Replies go out as soon as they are written: a small response must not wait for the
/// client's delayed ACK (Nagle's algorithm).
fn no_delay(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
}
