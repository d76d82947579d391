//! The websocket endpoint (`/realtime/v1/websocket`): the connect-time apikey check (§3.1), then
//! one task per socket that feeds frames to its session and writes its outlet's queue, closing
//! the socket when the queue overflows (a slow consumer) or the client goes silent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use craftbase_shared::key_lease::KeyLease;
use futures_util::{SinkExt, StreamExt};

use crate::outlet::Outlet;
use crate::protocol::{self, Message, Vsn};
use crate::service::Realtime;
use crate::session::Session;
use crate::token::{self, TokenError};

/// Phoenix closes sockets that send nothing for this long (clients heartbeat every 25 s).
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// Each socket's read buffer. The websocket library's default (128 KiB, allocated up front)
/// made an idle connection cost about 140 KiB; client frames are small, and a larger one is
/// still read, in more steps.
const READ_BUFFER: usize = 4 * 1024;

/// `GET /websocket?apikey=…&vsn=…`.
pub async fn upgrade(
    State(rt): State<Arc<Realtime>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    lease: Option<Extension<KeyLease>>,
    ws: WebSocketUpgrade,
) -> Response {
    let apikey = headers
        .get("x-api-key")
        .or_else(|| headers.get("apikey"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("apikey").cloned());
    let Some(apikey) = apikey.filter(|k| !k.is_empty()) else {
        return refuse("API key is missing");
    };
    if let Err(e) = token::check(&rt.ctx.jwt, &rt.ctx.roles, &apikey) {
        let text = match e {
            TokenError::Expired(_) => "Token has expired".to_owned(),
            other => other.to_string(),
        };
        return refuse(&text);
    }
    let Some(vsn) = Vsn::parse(params.get("vsn").map(String::as_str)) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "Unsupported vsn"})),
        )
            .into_response();
    };
    let max = rt.limits.max_frame_bytes();
    ws.read_buffer_size(READ_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(rt, socket, vsn, apikey, lease.map(|l| l.0)))
}

fn refuse(text: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": text })),
    )
        .into_response()
}

async fn serve(
    rt: Arc<Realtime>,
    ws: WebSocket,
    vsn: Vsn,
    apikey: String,
    lease: Option<KeyLease>,
) {
    let _open = crate::stats::OpenSocket::new();
    let id = rt.hub.socket_id();
    let (outlet, mut queue, overflow) = Outlet::bounded(id, rt.limits.queue_bytes);
    let send_timeout = rt.limits.send_timeout;
    let mut session = Session::new(rt.clone(), outlet.clone(), Some(apikey));
    let (mut sink, mut incoming) = ws.split();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_heard = Instant::now();
    // The close frame to send, if any, once the loop ends.
    let closing: Option<WsMessage> = loop {
        tokio::select! {
            frame = incoming.next() => {
                last_heard = Instant::now();
                let envelope = match &frame {
                    Some(Ok(WsMessage::Text(text))) => protocol::envelope_text(vsn, text.as_str()),
                    Some(Ok(WsMessage::Binary(bytes))) if vsn == Vsn::V2 => protocol::envelope_binary(bytes),
                    // The library answers a Close with a Close; it is written by the flush below.
                    Some(Ok(WsMessage::Close(_))) | None => break None,
                    Some(Err(e)) => break refusal(e),
                    Some(Ok(_)) => continue,
                };
                match envelope.and_then(|e| session.admit(e)) {
                    Ok(msg) => session.handle(msg).await,
                    Err(e) => tracing::debug!(error = %e, "unreadable realtime frame ignored"),
                }
                if session.wants_disconnect() {
                    // Replies already queued go out first.
                    while let Ok(out) = queue.try_recv() {
                        outlet.taken(&out);
                        if write(&mut sink, vsn, &out, send_timeout).await.is_err() {
                            break;
                        }
                    }
                    break Some(close(1000, "ClientJoinRateLimitReached"));
                }
            }
            Some(out) = queue.recv() => {
                outlet.taken(&out);
                if write(&mut sink, vsn, &out, send_timeout).await.is_err() {
                    tracing::debug!(socket = id, "realtime socket write failed or timed out; dropping it");
                    break None;
                }
            }
            () = overflow.notified() => {
                tracing::warn!(socket = id, "realtime socket too slow; closing it");
                break Some(close(1013, "too many pending messages"));
            }
            _ = tick.tick() => {
                if lease.as_ref().is_some_and(KeyLease::revoked) {
                    break Some(close(1008, "API key revoked"));
                }
                session.expire(token::now());
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break Some(close(1000, "heartbeat timeout"));
                }
            }
        }
    };
    session.close();
    drop(queue);
    let bye = async {
        if let Some(frame) = closing {
            sink.send(frame).await?;
            // The closing handshake: read (and drop) what the client still sends until its Close.
            // A socket closed with unread data makes the kernel answer with a reset, which can
            // destroy the replies and the Close still on their way to the client.
            while let Some(Ok(frame)) = incoming.next().await {
                if matches!(frame, WsMessage::Close(_)) {
                    break;
                }
            }
        }
        sink.close().await
    };
    let _ = tokio::time::timeout(send_timeout, bye).await;
}

fn close(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The close frame a read error calls for: 1009 for a message over the size limit, 1007 for a
/// text frame that is not UTF-8, 1002 for other protocol violations; none when the connection
/// itself failed.
fn refusal(e: &axum::Error) -> Option<WsMessage> {
    use tungstenite::Error;
    let inner = std::error::Error::source(e)?;
    match inner.downcast_ref::<Error>()? {
        Error::Capacity(_) => Some(close(1009, "Payload too large")),
        Error::Utf8(_) => Some(close(1007, "Invalid UTF-8")),
        Error::Protocol(_) => Some(close(1002, "Protocol error")),
        _ => None,
    }
}

/// Writes one queued message, giving up after `limit` (a client that stopped reading).
/// A raw binary broadcast cannot be written as JSON and is skipped, as Supabase skips it for
/// vsn-1 sockets.
async fn write<S>(sink: &mut S, vsn: Vsn, out: &Message, limit: Duration) -> Result<(), ()>
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    let frame = match protocol::encode(vsn, out) {
        protocol::Frame::Text(_) if out.raw.is_some() => return Ok(()),
        protocol::Frame::Text(t) => WsMessage::Text(t.into()),
        protocol::Frame::Binary(b) => WsMessage::Binary(b.into()),
    };
    match tokio::time::timeout(limit, sink.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}
