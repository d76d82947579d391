//! The tokens a channel acts with: the join's `access_token` (or the connect-time apikey), and
//! an `access_token` push renewing it (checked again, and for a private channel its read
//! policy asked again, as Supabase does).

use std::sync::Arc;

use serde_json::Value;

use super::channel::Channel;
use crate::identity::Identity;
use crate::private;
use crate::service::Realtime;
use crate::token::{self, Grant, TokenError};

/// The grant of a join's `access_token`, or of the connect-time `apikey` when it has none (an
/// `sb_` key is never a token).
pub(super) fn join_grant(
    rt: &Realtime,
    apikey: Option<&str>,
    access_token: Option<&Value>,
) -> Result<Grant, TokenError> {
    let token = access_token
        .and_then(Value::as_str)
        .filter(|t| !t.starts_with("sb_"))
        .or(apikey)
        .unwrap_or("");
    token::check(&rt.ctx.jwt, &rt.ctx.roles, token)
}

/// Renews `channel`'s token. `Ok(Some(identity))` when the channel now acts as someone else;
/// `Err` carries the reason the channel is closed with.
pub(super) async fn renew(
    rt: &Realtime,
    topic: &str,
    channel: &mut Channel,
    token: &str,
) -> Result<Option<Arc<Identity>>, String> {
    let grant = token::check(&rt.ctx.jwt, &rt.ctx.roles, token).map_err(|e| e.to_string())?;
    tracing::debug!(topic, role = %grant.identity.role, "access token renewed");
    if channel.private
        && !private::may_read(rt, &grant, &channel.sub_topic)
            .await
            .unwrap_or(false)
    {
        return Err(format!(
            "You do not have permissions to read from this Channel topic: {}",
            channel.sub_topic
        ));
    }
    let identity = Arc::new(grant.identity);
    channel.exp = grant.exp;
    channel.may_write = None;
    if channel.identity == identity {
        return Ok(None);
    }
    channel.identity = identity.clone();
    Ok(Some(identity))
}
