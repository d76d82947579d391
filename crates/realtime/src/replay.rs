//! Broadcast replay (§3.6): a private channel's join may ask, with `broadcast.replay: {since,
//! limit}`, for the broadcasts stored in `realtime.messages` since `since` (ms since the epoch).
//! Like Supabase: the newest `limit` (default 25, clamped to 1..=25) are sent oldest first,
//! each with `meta: {replayed: true, id}`; a row stored by `realtime.send_binary` replays as its
//! bytes (a kind-4 frame with encoding 0), to vsn-2 sockets only, as Supabase skips it for vsn 1.
//! Unlike Supabase, they are read through the subscriber's RLS, so a policy that hides some rows
//! of a readable topic hides them here too.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::private;
use crate::protocol::Message;
use crate::service::Realtime;
use crate::token::Grant;

/// The most messages one join can replay, as in Supabase.
pub const MAX_LIMIT: i64 = 25;

/// Milliseconds of 0001-01-01 and of 9999-12-31T23:59:59.999: outside, `since` is refused
/// (Supabase refuses what Elixir cannot turn into a date).
const SINCE_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

/// What a join asked to replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub since: i64,
    pub limit: i64,
}

/// Why a replay request is refused; the join fails with this reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    PublicChannel,
    InvalidParams,
    Failed,
}

impl Refusal {
    /// The join error reason, in Supabase's `Code: message` form.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::PublicChannel => {
                "UnableToReplayMessages: Replay is not allowed for public channels"
            }
            Refusal::InvalidParams => "UnableToReplayMessages: Replay params are not valid",
            Refusal::Failed => "UnableToReplayMessages: Realtime was unable to replay messages",
        }
    }
}

/// Reads `config.broadcast.replay`. Absent, or present but not an object on a private channel,
/// means no replay (as Supabase). `since` must be a JSON integer; `limit` an integer or absent.
pub fn request(config: &Value, private: bool) -> Result<Option<Request>, Refusal> {
    let Some(replay) = config.get("broadcast").and_then(|b| b.get("replay")) else {
        return Ok(None);
    };
    if !private {
        return Err(Refusal::PublicChannel);
    }
    let Some(replay) = replay.as_object() else {
        return Ok(None);
    };
    let since = replay
        .get("since")
        .and_then(Value::as_i64)
        .filter(|s| SINCE_RANGE.contains(s))
        .ok_or(Refusal::InvalidParams)?;
    let limit = match replay.get("limit") {
        None | Some(Value::Null) => MAX_LIMIT,
        Some(v) => v.as_i64().ok_or(Refusal::InvalidParams)?,
    };
    Ok(Some(Request {
        since,
        limit: limit.clamp(1, MAX_LIMIT),
    }))
}

/// The stored broadcasts of `topic` the grant may read, oldest first, as refless `broadcast`
/// pushes for `full_topic` (vsn-2 clients get them as kind-4 frames carrying the meta).
pub async fn messages(
    rt: &Realtime,
    grant: &Grant,
    topic: &str,
    full_topic: &str,
    req: Request,
) -> Result<Vec<Message>, anyhow::Error> {
    let mut client = rt.ctx.admin.get().await?;
    let tx = client.transaction().await?;
    private::become_subscriber(&tx, grant, topic).await?;
    // `inserted_at` is a local timestamp (`now()` at insert), so `since` is read in the same
    // time zone; rows stamped more than a minute ahead are left out, as Supabase does.
    let rows = tx
        .query(
            "select id::text, coalesce(event, ''), coalesce(payload::text, 'null'), binary_payload
             from (
                 select id, event, payload, binary_payload, inserted_at from realtime.messages
                 where topic = $1 and private is true and extension = 'broadcast'
                   and inserted_at >= to_timestamp($2::float8 / 1000)::timestamp
                   and inserted_at < (now() + interval '1 minute')::timestamp
                 order by inserted_at desc limit $3) newest
             order by inserted_at",
            &[&topic, &(req.since as f64), &req.limit],
        )
        .await?;
    tx.rollback().await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, event, payload): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let binary: Option<Vec<u8>> = row.get(3);
        out.push(replayed(full_topic, id, event, &payload, binary)?);
    }
    Ok(out)
}

/// One stored row as a replayed `broadcast` push. Bytes (`binary_payload`) travel in `raw` with a
/// null JSON payload: the socket writes them as a kind-4 frame to vsn-2 clients and drops them
/// for vsn-1 clients, which cannot carry bytes (Supabase skips them too).
fn replayed(
    full_topic: &str,
    id: String,
    event: String,
    payload: &str,
    binary: Option<Vec<u8>>,
) -> Result<Message, serde_json::Error> {
    let payload: Value = match binary {
        Some(_) => Value::Null,
        None => serde_json::from_str(payload)?,
    };
    let mut msg = Message::push(
        full_topic,
        "broadcast",
        json!({"type": "broadcast", "event": event, "payload": payload,
               "meta": {"replayed": true, "id": id}}),
    );
    msg.raw = binary.map(Arc::from);
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{encode, Frame, Vsn};

    #[test]
    fn stored_bytes_replay_as_bytes_with_the_meta() {
        let msg = replayed(
            "realtime:t",
            "i".into(),
            "ev".into(),
            "null",
            Some(vec![0xde, 0xad, 0x00]),
        )
        .unwrap();
        let mut want = vec![4, 10, 2, 26, 0];
        want.extend_from_slice(b"realtime:tev{\"id\":\"i\",\"replayed\":true}\xde\xad\x00");
        assert_eq!(encode(Vsn::V2, &msg), Frame::Binary(want));
        let json = replayed("realtime:t", "i".into(), "ev".into(), r#"{"a":1}"#, None).unwrap();
        assert_eq!(json.raw, None);
        assert_eq!(json.payload["payload"], json!({"a": 1}));
    }

    #[test]
    fn requests_are_read_like_supabase() {
        let cfg = |r: Value| json!({"broadcast": {"replay": r}});
        assert_eq!(request(&json!({}), true), Ok(None));
        assert_eq!(
            request(&cfg(json!({"since": 1})), false),
            Err(Refusal::PublicChannel)
        );
        assert_eq!(request(&cfg(Value::Null), true), Ok(None));
        assert_eq!(
            request(&cfg(json!({"since": 5})), true),
            Ok(Some(Request {
                since: 5,
                limit: 25
            }))
        );
        assert_eq!(
            request(&cfg(json!({"since": 5, "limit": 100})), true),
            Ok(Some(Request {
                since: 5,
                limit: 25
            }))
        );
        assert_eq!(
            request(&cfg(json!({"since": 5, "limit": 0})), true),
            Ok(Some(Request { since: 5, limit: 1 }))
        );
        for bad in [
            json!({}),
            json!({"since": "5"}),
            json!({"since": 1.5}),
            json!({"since": i64::MAX}),
            json!({"since": 5, "limit": "3"}),
        ] {
            assert_eq!(request(&cfg(bad), true), Err(Refusal::InvalidParams));
        }
    }
}
