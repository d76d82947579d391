//! Phoenix channel framing (§3.2): vsn 1.0.0 JSON objects, vsn 2.0.0 JSON arrays and the
//! binary user-broadcast frames (kind 3 from clients, kind 4 to clients).

use std::sync::Arc;

use serde_json::{json, Value};

/// The serializer a socket negotiated with `?vsn=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vsn {
    /// JSON objects `{"topic","event","payload","ref","join_ref"}`.
    V1,
    /// JSON arrays `[join_ref, ref, topic, event, payload]` plus binary broadcast frames.
    V2,
}

impl Vsn {
    /// Parses the `vsn` query value; Phoenix defaults to 1.0.0 when it is absent.
    pub fn parse(value: Option<&str>) -> Option<Vsn> {
        match value {
            None | Some("1.0.0") => Some(Vsn::V1),
            Some("2.0.0") => Some(Vsn::V2),
            Some(_) => None,
        }
    }
}

/// One Phoenix message, in either direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Value,
    /// A broadcast's user payload when it was sent as raw bytes (kind 3, encoding 0; or a REST
    /// octet-stream body): vsn-2 clients get these bytes back (kind 4, encoding 0) as an
    /// ArrayBuffer; `payload.payload` holds them as an array of numbers for JSON frames.
    pub raw: Option<Arc<[u8]>>,
    /// The payload as JSON text, written instead of `payload` when set: a `postgres_changes`
    /// payload whose numeric values keep PostgreSQL's digits (`1.50`), which a `Value` cannot
    /// hold without serde_json's `arbitrary_precision`.
    pub payload_text: Option<Arc<str>>,
}

impl Message {
    /// A message without refs (pushes from the server).
    pub fn push(topic: &str, event: &str, payload: Value) -> Message {
        Message {
            join_ref: None,
            msg_ref: None,
            topic: topic.to_owned(),
            event: event.to_owned(),
            payload,
            raw: None,
            payload_text: None,
        }
    }

    /// Estimated bytes this message holds: what a socket's queue is bounded by. Counted the
    /// same when queued and when taken, so it must not change in between.
    pub fn weight(&self) -> usize {
        64 + self.topic.len()
            + self.event.len()
            + self.join_ref.as_ref().map_or(0, String::len)
            + self.msg_ref.as_ref().map_or(0, String::len)
            + self.raw.as_ref().map_or(0, |r| r.len())
            + self.payload_text.as_ref().map_or(0, |t| t.len())
            + value_weight(&self.payload)
    }

    /// The `phx_reply` to this message with `status` and `response`.
    pub fn reply(&self, status: &str, response: Value) -> Message {
        Message {
            join_ref: self.join_ref.clone(),
            msg_ref: self.msg_ref.clone(),
            topic: self.topic.clone(),
            event: "phx_reply".into(),
            payload: json!({ "status": status, "response": response }),
            raw: None,
            payload_text: None,
        }
    }
}

/// Roughly the heap a value holds: string and key bytes plus a word or so per node.
fn value_weight(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => 24 + s.len(),
        Value::Array(items) => 24 + items.iter().map(value_weight).sum::<usize>(),
        Value::Object(map) => {
            24 + map
                .iter()
                .map(|(k, v)| 24 + k.len() + value_weight(v))
                .sum::<usize>()
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame is not valid JSON")]
    Json,
    #[error("frame does not have the Phoenix message shape")]
    Shape,
    #[error("binary frame is truncated or of an unknown kind")]
    Binary,
}

/// Reads a text frame.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Message, FrameError> {
    let value: Value = serde_json::from_str(text).map_err(|_| FrameError::Json)?;
    let string = |v: Option<&Value>| -> Result<String, FrameError> {
        v.and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(FrameError::Shape)
    };
    match (vsn, value) {
        (Vsn::V2, Value::Array(items)) if items.len() == 5 => Ok(Message {
            join_ref: refstr(items.first())?,
            msg_ref: refstr(items.get(1))?,
            topic: string(items.get(2))?,
            event: string(items.get(3))?,
            payload: items[4].clone(),
            raw: None,
            payload_text: None,
        }),
        (Vsn::V1, Value::Object(map)) => Ok(Message {
            join_ref: refstr(map.get("join_ref"))?,
            msg_ref: refstr(map.get("ref"))?,
            topic: string(map.get("topic"))?,
            event: string(map.get("event"))?,
            payload: map.get("payload").cloned().unwrap_or(Value::Null),
            raw: None,
            payload_text: None,
        }),
        _ => Err(FrameError::Shape),
    }
}

/// Reads a kind-3 "user broadcast push" binary frame into an ordinary `broadcast` message whose
/// payload is `{"type":"broadcast","event":…,"payload":…}`. Raw bytes (encoding 0) stay in
/// `raw`, with a null `payload.payload`: they go to vsn-2 sockets as bytes and to no one else.
pub fn decode_binary(frame: &[u8]) -> Result<Message, FrameError> {
    envelope_binary(frame)?.message()
}

/// A client frame whose header is read and whose payload is not yet: the session decides from
/// the topic and event whether the payload is worth parsing (`Envelope::message`) or not
/// (`Envelope::bare`).
#[derive(Debug)]
pub struct Envelope<'a> {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    body: Body<'a>,
}

#[derive(Debug)]
enum Body<'a> {
    /// The whole text frame, parsed again in full when wanted.
    Text(Vsn, &'a str),
    /// A kind-3 push: its user event, payload bytes and whether they are JSON.
    Binary {
        user_event: String,
        bytes: &'a [u8],
        json: bool,
    },
}

/// Reads a text frame's refs, topic and event; its payload is checked to be JSON but not kept.
pub fn envelope_text(vsn: Vsn, text: &str) -> Result<Envelope<'_>, FrameError> {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct V1Head {
        topic: Value,
        event: Value,
        #[serde(rename = "ref", default)]
        msg_ref: Value,
        #[serde(default)]
        join_ref: Value,
        #[serde(default)]
        #[allow(dead_code)]
        payload: IgnoredAny,
    }
    type V2Head = (Value, Value, Value, Value, IgnoredAny);
    let (join_ref, msg_ref, topic, event) = match vsn {
        Vsn::V1 if !text.trim_start().starts_with('{') => return Err(head_shape(text)),
        Vsn::V1 => {
            let h: V1Head = serde_json::from_str(text).map_err(|e| head_error(&e))?;
            (h.join_ref, h.msg_ref, h.topic, h.event)
        }
        Vsn::V2 => {
            let h: V2Head = serde_json::from_str(text).map_err(|e| head_error(&e))?;
            (h.0, h.1, h.2, h.3)
        }
    };
    let string = |v: Value| match v {
        Value::String(s) => Ok(s),
        _ => Err(FrameError::Shape),
    };
    Ok(Envelope {
        join_ref: refstr(Some(&join_ref))?,
        msg_ref: refstr(Some(&msg_ref))?,
        topic: string(topic)?,
        event: string(event)?,
        body: Body::Text(vsn, text),
    })
}

/// A V1 frame that is not an object: malformed JSON or the wrong shape.
fn head_shape(text: &str) -> FrameError {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => FrameError::Shape,
        Err(_) => FrameError::Json,
    }
}

fn head_error(e: &serde_json::Error) -> FrameError {
    if e.is_data() {
        FrameError::Shape
    } else {
        FrameError::Json
    }
}

/// Reads a kind-3 frame's header, refs, topic and user event, without its payload.
pub fn envelope_binary(frame: &[u8]) -> Result<Envelope<'_>, FrameError> {
    let header = frame.get(..7).ok_or(FrameError::Binary)?;
    if header[0] != 3 {
        return Err(FrameError::Binary);
    }
    let lens = [header[1], header[2], header[3], header[4], header[5]].map(usize::from);
    let encoding = header[6];
    let mut at = 7;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        let part = frame.get(at..at + n).ok_or(FrameError::Binary)?;
        at += n;
        Ok(part)
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| FrameError::Binary);
    let join_ref = text(take(lens[0])?)?;
    let msg_ref = text(take(lens[1])?)?;
    let topic = text(take(lens[2])?)?;
    let user_event = text(take(lens[3])?)?;
    let _metadata = take(lens[4])?;
    let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
    Ok(Envelope {
        join_ref: non_empty(join_ref),
        msg_ref: non_empty(msg_ref),
        topic,
        event: "broadcast".into(),
        body: Body::Binary {
            user_event,
            bytes: &frame[at..],
            json: encoding == 1,
        },
    })
}

impl Envelope<'_> {
    /// The message with its payload parsed.
    pub fn message(self) -> Result<Message, FrameError> {
        match self.body {
            Body::Text(vsn, text) => decode_text(vsn, text),
            Body::Binary {
                user_event,
                bytes,
                json,
            } => {
                let (payload, raw) = if json {
                    let v = serde_json::from_slice(bytes).map_err(|_| FrameError::Json)?;
                    (v, None)
                } else {
                    (Value::Null, Some(Arc::from(bytes)))
                };
                Ok(Message {
                    join_ref: self.join_ref,
                    msg_ref: self.msg_ref,
                    topic: self.topic,
                    event: self.event,
                    payload: json!({ "type": "broadcast", "event": user_event, "payload": payload }),
                    raw,
                    payload_text: None,
                })
            }
        }
    }

    /// The message without its payload (null), for a frame the session will not read.
    pub fn bare(self) -> Message {
        Message {
            join_ref: self.join_ref,
            msg_ref: self.msg_ref,
            topic: self.topic,
            event: self.event,
            payload: Value::Null,
            raw: None,
            payload_text: None,
        }
    }
}

/// A ref as Phoenix clients send it: absent, null, a string or a number.
fn refstr(v: Option<&Value>) -> Result<Option<String>, FrameError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(FrameError::Shape),
    }
}

/// Bytes a value takes as JSON text, counted without writing it.
pub fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

/// A frame to write.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// Writes a message. vsn-2 clients get user broadcasts as kind-4 binary frames, as Supabase
/// sends them; only this way does a raw binary payload reach realtime-js as an ArrayBuffer.
/// Everything else, and a broadcast whose topic, event or metadata exceeds a length byte, is
/// a text frame (which realtime-js reads the same way for JSON payloads).
pub fn encode(vsn: Vsn, msg: &Message) -> Frame {
    match vsn {
        Vsn::V2 => {
            user_broadcast(msg).map_or_else(|| Frame::Text(encode_text(vsn, msg)), Frame::Binary)
        }
        Vsn::V1 => Frame::Text(encode_text(vsn, msg)),
    }
}

/// `u8 4 | u8 len(topic) | u8 len(event) | u8 len(metadata) | u8 encoding | topic | event |
/// metadata | payload`, for a refless `broadcast` push of `{"type":"broadcast", event, payload,
/// meta?}`.
fn user_broadcast(msg: &Message) -> Option<Vec<u8>> {
    if msg.event != "broadcast" || msg.join_ref.is_some() || msg.msg_ref.is_some() {
        return None;
    }
    let p = msg.payload.as_object()?;
    if p.get("type")?.as_str()? != "broadcast" {
        return None;
    }
    let event = p.get("event")?.as_str()?;
    let meta = match p.get("meta") {
        None | Some(Value::Null) => String::new(),
        Some(m @ Value::Object(_)) => m.to_string(),
        Some(_) => return None,
    };
    let (encoding, body) = match &msg.raw {
        Some(raw) => (0u8, raw.to_vec()),
        None => (1u8, serde_json::to_vec(p.get("payload")?).ok()?),
    };
    let parts = [msg.topic.as_bytes(), event.as_bytes(), meta.as_bytes()];
    let lens: Vec<u8> = parts
        .iter()
        .map(|p| u8::try_from(p.len()).ok())
        .collect::<Option<_>>()?;
    let mut out = Vec::with_capacity(5 + parts.iter().map(|p| p.len()).sum::<usize>() + body.len());
    out.push(4);
    out.extend_from_slice(&lens);
    out.push(encoding);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&body);
    Some(out)
}

/// Writes a message as a text frame.
pub fn encode_text(vsn: Vsn, msg: &Message) -> String {
    if let Some(payload) = &msg.payload_text {
        let text = |v: &str| Value::from(v).to_string();
        let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_owned(), text);
        return match vsn {
            Vsn::V1 => format!(
                r#"{{"event":{},"join_ref":{},"payload":{payload},"ref":{},"topic":{}}}"#,
                text(&msg.event),
                opt(&msg.join_ref),
                opt(&msg.msg_ref),
                text(&msg.topic)
            ),
            Vsn::V2 => format!(
                "[{},{},{},{},{payload}]",
                opt(&msg.join_ref),
                opt(&msg.msg_ref),
                text(&msg.topic),
                text(&msg.event)
            ),
        };
    }
    let value = match vsn {
        Vsn::V1 => json!({
            "topic": msg.topic,
            "event": msg.event,
            "payload": msg.payload,
            "ref": msg.msg_ref,
            "join_ref": msg.join_ref,
        }),
        Vsn::V2 => json!([msg.join_ref, msg.msg_ref, msg.topic, msg.event, msg.payload]),
    };
    value.to_string()
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_user_broadcasts_are_kind_4_frames() {
        let json = Message::push(
            "realtime:room",
            "broadcast",
            json!({"type": "broadcast", "event": "ev", "payload": {"x": 1}}),
        );
        let mut want = vec![4, 13, 2, 0, 1];
        want.extend_from_slice(b"realtime:roomev{\"x\":1}");
        assert_eq!(encode(Vsn::V2, &json), Frame::Binary(want));
        assert!(matches!(encode(Vsn::V1, &json), Frame::Text(_)));
        // Raw bytes from a kind-3 push come back as raw bytes, with the metadata.
        let mut push = vec![3, 0, 0, 1, 2, 0, 0];
        push.extend_from_slice(b"tev\x00\xff");
        let mut raw = decode_binary(&push).unwrap();
        assert_eq!(
            raw.payload["payload"],
            Value::Null,
            "bytes are never a JSON array"
        );
        assert_eq!(raw.raw.as_deref(), Some(&[0u8, 255][..]));
        raw.payload["meta"] = json!({"id": "1"});
        let mut want = vec![4, 1, 2, 10, 0];
        want.extend_from_slice(b"tev{\"id\":\"1\"}\x00\xff");
        assert_eq!(encode(Vsn::V2, &raw), Frame::Binary(want));
        // Replies and other events stay text.
        assert!(matches!(
            encode(Vsn::V2, &json.reply("ok", json!({}))),
            Frame::Text(_)
        ));
        let long = Message::push(&"t".repeat(300), "broadcast", json.payload.clone());
        assert!(matches!(encode(Vsn::V2, &long), Frame::Text(_)));
    }

    #[test]
    fn a_payload_text_is_written_as_it_is() {
        let mut msg = Message::push("realtime:t", "postgres_changes", json!({"n": 1.5}));
        msg.payload_text = Some(Arc::from(r#"{"n":1.50}"#));
        assert_eq!(
            encode_text(Vsn::V1, &msg),
            r#"{"event":"postgres_changes","join_ref":null,"payload":{"n":1.50},"ref":null,"topic":"realtime:t"}"#
        );
        assert_eq!(
            encode_text(Vsn::V2, &msg),
            r#"[null,null,"realtime:t","postgres_changes",{"n":1.50}]"#
        );
    }

    #[test]
    fn vsn_defaults_to_one_and_refuses_unknown() {
        assert_eq!(Vsn::parse(None), Some(Vsn::V1));
        assert_eq!(Vsn::parse(Some("2.0.0")), Some(Vsn::V2));
        assert_eq!(Vsn::parse(Some("3.0.0")), None);
    }

    #[test]
    fn v2_arrays_round_trip() {
        let text = r#"["6","6","realtime:room1","phx_join",{"config":{}}]"#;
        let msg = decode_text(Vsn::V2, text).unwrap();
        assert_eq!(msg.join_ref.as_deref(), Some("6"));
        assert_eq!(msg.topic, "realtime:room1");
        assert_eq!(msg.event, "phx_join");
        let back: Value = serde_json::from_str(&encode_text(Vsn::V2, &msg)).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn v1_objects_round_trip_and_null_refs() {
        let text =
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"8","join_ref":null}"#;
        let msg = decode_text(Vsn::V1, text).unwrap();
        assert_eq!(msg.join_ref, None);
        assert_eq!(msg.msg_ref.as_deref(), Some("8"));
        let reply = msg.reply("ok", json!({}));
        let back: Value = serde_json::from_str(&encode_text(Vsn::V1, &reply)).unwrap();
        assert_eq!(
            back,
            json!({"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"8","join_ref":null})
        );
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        assert_eq!(decode_text(Vsn::V2, "{}"), Err(FrameError::Shape));
        assert_eq!(decode_text(Vsn::V1, "[]"), Err(FrameError::Shape));
        assert_eq!(decode_text(Vsn::V2, "nope"), Err(FrameError::Json));
        assert_eq!(
            decode_text(Vsn::V2, r#"[1,2,3,4,5]"#),
            Err(FrameError::Shape)
        );
        assert_eq!(decode_binary(&[3, 1]), Err(FrameError::Binary));
        assert_eq!(
            decode_binary(&[1, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::Binary)
        );
        assert_eq!(
            decode_binary(&[3, 5, 0, 0, 0, 0, 1, b'a']),
            Err(FrameError::Binary)
        );
    }

    #[test]
    fn kind_three_user_broadcast_is_decoded() {
        let mut frame = vec![3u8, 1, 1, 14, 2, 0, 1];
        frame.extend_from_slice(b"1");
        frame.extend_from_slice(b"2");
        frame.extend_from_slice(b"realtime:room1");
        frame.extend_from_slice(b"ev");
        frame.extend_from_slice(br#"{"a":1}"#);
        let msg = decode_binary(&frame).unwrap();
        assert_eq!(msg.join_ref.as_deref(), Some("1"));
        assert_eq!(msg.msg_ref.as_deref(), Some("2"));
        assert_eq!(msg.topic, "realtime:room1");
        assert_eq!(msg.event, "broadcast");
        assert_eq!(
            msg.payload,
            json!({"type":"broadcast","event":"ev","payload":{"a":1}})
        );
    }
}
