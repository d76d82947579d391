//! REST broadcast (§3.6): `POST /api/broadcast` (a batch) and
//! `POST /api/broadcast/{topic}/events/{event}` (one message), answered with 202.
//! Private topics need the caller's claims to pass the INSERT policies of `realtime.messages`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::hub;
use crate::private;
use crate::protocol::json_len;
use crate::service::Realtime;
use crate::tenant::Admission;
use crate::token::{self, Grant};

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Supabase's changeset error for a payload over the limit.
fn too_large() -> Value {
    json!({"payload": ["Payload size exceeds tenant limit"]})
}

/// The project-wide limit of events per second (`REALTIME_TENANT_MAX_EVENTS_PER_SECOND`) for
/// `n` messages, all or none: 429 with Supabase's message when the window is spent, or when the
/// batch is larger than what is left of it.
async fn tenant_allows(rt: &Realtime, n: usize) -> Result<(), Box<Response>> {
    let message = match rt.tenant_events.take(n as u64).await {
        Admission::Allowed => return Ok(()),
        Admission::Exhausted => "You have exceeded your rate limit",
        Admission::TooMany => "Too many messages to broadcast, please reduce the batch size",
    };
    let body = Json(json!({ "message": message }));
    Err(Box::new(
        (StatusCode::TOO_MANY_REQUESTS, body).into_response(),
    ))
}

/// The caller's grant: its bearer token, or the apikey.
fn caller(rt: &Realtime, headers: &HeaderMap) -> Result<Grant, Box<Response>> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let key = headers
        .get("x-api-key")
        .or_else(|| headers.get("apikey"))
        .and_then(|v| v.to_str().ok());
    let token = bearer.filter(|t| !t.starts_with("sb_")).or(key);
    let Some(token) = token else {
        return Err(Box::new(error(
            StatusCode::UNAUTHORIZED,
            "API key is missing",
        )));
    };
    token::check(&rt.ctx.jwt, &rt.ctx.roles, token)
        .map_err(|e| Box::new(error(StatusCode::UNAUTHORIZED, &e.to_string())))
}

/// Sends one message to a topic's members, after the private write check.
async fn send(
    rt: &Realtime,
    grant: &Grant,
    topic: &str,
    event: &str,
    payload: Value,
    raw: Option<Arc<[u8]>>,
    private: bool,
) -> Result<(), Box<Response>> {
    if private {
        let allowed = private::may_write(rt, grant, topic, "broadcast")
            .await
            .unwrap_or(false);
        if !allowed {
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                &format!("You do not have permissions to write to this Channel topic: {topic}"),
            )));
        }
    }
    let full = format!("realtime:{topic}");
    rt.hub.broadcast(
        &hub::key(&full, private),
        None,
        &json!({"type": "broadcast", "event": event, "payload": payload}),
        raw.as_ref(),
    );
    Ok(())
}

/// `POST /api/broadcast` with `{"messages":[{topic, event, payload, private}]}`.
pub async fn batch(State(rt): State<Arc<Realtime>>, headers: HeaderMap, body: Bytes) -> Response {
    let grant = match caller(&rt, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "The body is not valid JSON");
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "messages is required");
    };
    // A payload over the limit refuses the whole batch, each message's errors in its place.
    let max = rt.limits.max_payload_bytes;
    let over = |m: &Value| m.get("payload").map_or(0, json_len) > max;
    if messages.iter().any(over) {
        let each: Vec<Value> = messages
            .iter()
            .map(|m| if over(m) { too_large() } else { json!({}) })
            .collect();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"errors": {"messages": each}})),
        )
            .into_response();
    }
    if let Err(r) = tenant_allows(&rt, messages.len()).await {
        return *r;
    }
    for m in messages {
        let topic = m.get("topic").and_then(Value::as_str).unwrap_or("");
        let topic = topic.strip_prefix("realtime:").unwrap_or(topic);
        let event = m.get("event").and_then(Value::as_str).unwrap_or("");
        if topic.is_empty() {
            return error(StatusCode::BAD_REQUEST, "topic is required");
        }
        let private = m.get("private").and_then(Value::as_bool).unwrap_or(false);
        let payload = m.get("payload").cloned().unwrap_or(Value::Null);
        if let Err(r) = send(&rt, &grant, topic, event, payload, None, private).await {
            return *r;
        }
    }
    StatusCode::ACCEPTED.into_response()
}

/// `POST /api/broadcast/{topic}/events/{event}[?private=true]` with the payload as the body.
pub async fn single(
    State(rt): State<Arc<Realtime>>,
    Path((topic, event)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let grant = match caller(&rt, &headers) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    // An octet-stream body (realtime-js `httpSend` of an ArrayBuffer) is a raw payload.
    let octets = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let json = (!octets)
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten();
    let (payload, raw) = match json {
        Some(v) => (v, None),
        None => (Value::Null, Some(Arc::from(&body[..]))),
    };
    let size = raw
        .as_ref()
        .map_or_else(|| json_len(&payload), |r: &Arc<[u8]>| r.len());
    if size > rt.limits.max_payload_bytes {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "errors": too_large() })),
        )
            .into_response();
    }
    if let Err(r) = tenant_allows(&rt, 1).await {
        return *r;
    }
    let private = query.get("private").is_some_and(|p| p == "true");
    match send(&rt, &grant, &topic, &event, payload, raw, private).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(r) => *r,
    }
}
