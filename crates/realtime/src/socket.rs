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
use axum::Json;
use futures_util::{SinkExt, StreamExt};

use crate::hub::Outlet;
use crate::protocol::{self, Vsn};
use crate::session::Session;
use crate::token::{self, TokenError};
use crate::Realtime;

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
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(rt, socket, vsn, apikey))
}

fn refuse(text: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({ "error": text })),
    )
        .into_response()
}

async fn serve(rt: Arc<Realtime>, ws: WebSocket, vsn: Vsn, apikey: String) {
    let id = rt.hub.socket_id();
    let (outlet, mut queue, overflow) = Outlet::new(id);
    let mut session = Session::new(rt.clone(), outlet, Some(apikey));
    let (mut sink, mut incoming) = ws.split();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_heard = Instant::now();
    let close = |code: u16, reason: &'static str| {
        WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            frame = incoming.next() => {
                let msg = match frame {
                    Some(Ok(WsMessage::Text(text))) => protocol::decode_text(vsn, text.as_str()),
                    Some(Ok(WsMessage::Binary(bytes))) if vsn == Vsn::V2 => protocol::decode_binary(&bytes),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {
                        last_heard = Instant::now();
                        continue;
                    }
                };
                last_heard = Instant::now();
                match msg {
                    Ok(msg) => session.handle(msg).await,
                    Err(e) => tracing::debug!(error = %e, "unreadable realtime frame ignored"),
                }
            }
            Some(out) = queue.recv() => {
                let frame = match protocol::encode(vsn, &out) {
                    protocol::Frame::Text(t) => WsMessage::Text(t.into()),
                    protocol::Frame::Binary(b) => WsMessage::Binary(b.into()),
                };
                if sink.send(frame).await.is_err() {
                    break;
                }
            }
            () = overflow.notified() => {
                tracing::warn!(socket = id, "realtime socket too slow; closing it");
                let _ = sink.send(close(1013, "too many pending messages")).await;
                break;
            }
            _ = tick.tick() => {
                session.expire(token::now());
                if last_heard.elapsed() > SILENCE_LIMIT {
                    let _ = sink.send(close(1000, "heartbeat timeout")).await;
                    break;
                }
            }
        }
    }
    session.close();
}
