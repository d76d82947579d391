//! Private channels (`config.private`): the read check and broadcast replay a join needs, and
//! the write checks broadcast (cached per join) and presence (each call) need, all against the
//! `realtime.messages` policies (`crate::private`).

use serde_json::Value;

use super::channel::Channel;
use crate::private;
use crate::protocol::Message;
use crate::replay;
use crate::service::Realtime;
use crate::token::Grant;

/// Whether a join may proceed, and the stored broadcasts it asked to replay; else the reason
/// it is refused with.
pub(super) async fn admit_join(
    rt: &Realtime,
    config: &Value,
    private: bool,
    grant: &Grant,
    sub_topic: &str,
    topic: &str,
) -> Result<Vec<Message>, String> {
    if private {
        match private::may_read(rt, grant, sub_topic).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!("Unauthorized: You do not have permissions to read from this Channel topic: {sub_topic}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "private channel check failed");
                return Err("Unknown Error on Channel".into());
            }
        }
    }
    replay(rt, config, private, grant, sub_topic, topic)
        .await
        .map_err(|refusal| refusal.reason().to_string())
}

/// The stored broadcasts a join asked to replay, read before the join is answered so a refusal
/// can still fail it.
async fn replay(
    rt: &Realtime,
    config: &Value,
    private: bool,
    grant: &Grant,
    sub_topic: &str,
    topic: &str,
) -> Result<Vec<Message>, replay::Refusal> {
    let Some(req) = replay::request(config, private)? else {
        return Ok(Vec::new());
    };
    replay::messages(rt, grant, sub_topic, topic, req)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "broadcast replay failed");
            replay::Refusal::Failed
        })
}

/// Whether the client may broadcast on a joined channel: always on a public one; on a private
/// one as its INSERT policies say, asked once per join (and token).
pub(super) async fn may_write_broadcast(rt: &Realtime, channel: &mut Channel) -> bool {
    if !channel.private {
        return true;
    }
    if let Some(known) = channel.may_write {
        return known;
    }
    let allowed = private::may_write(rt, &channel.grant(), &channel.sub_topic, "broadcast")
        .await
        .unwrap_or(false);
    channel.may_write = Some(allowed);
    allowed
}

/// Whether the client may track presence on a joined channel (asked on each call).
pub(super) async fn may_write_presence(rt: &Realtime, channel: &Channel) -> bool {
    if !channel.private {
        return true;
    }
    private::may_write(rt, &channel.grant(), &channel.sub_topic, "presence")
        .await
        .unwrap_or(false)
}
