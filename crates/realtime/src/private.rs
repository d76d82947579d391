//! Private channels (§3.6): RLS policies on `realtime.messages` decide who may join (SELECT)
//! and who may send or track (INSERT), evaluated under the subscriber's role and claims with
//! `realtime.topic()` set to the channel's sub-topic, in a transaction that is rolled back.

use crate::service::Realtime;
use crate::token::Grant;

/// Whether the grant may read the channel: probe rows inserted by the owner are read back
/// through the subscriber's RLS.
pub async fn may_read(rt: &Realtime, grant: &Grant, topic: &str) -> Result<bool, anyhow::Error> {
    let mut client = rt.ctx.admin.get().await?;
    let tx = client.transaction().await?;
    let ids: Vec<String> = tx
        .query(
            "insert into realtime.messages (topic, extension, private)
             values ($1, 'broadcast', true), ($1, 'presence', true) returning id::text",
            &[&topic],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    become_subscriber(&tx, grant, topic).await?;
    let seen: i64 = tx
        .query_one(
            "select count(*) from realtime.messages where id::text = any($1)",
            &[&ids],
        )
        .await?
        .get(0);
    tx.rollback().await?;
    Ok(seen > 0)
}

/// Whether the grant may write `extension` (broadcast or presence) messages to the channel.
pub async fn may_write(
    rt: &Realtime,
    grant: &Grant,
    topic: &str,
    extension: &str,
) -> Result<bool, anyhow::Error> {
    let mut client = rt.ctx.admin.get().await?;
    let tx = client.transaction().await?;
    become_subscriber(&tx, grant, topic).await?;
    let inserted = tx
        .execute(
            "insert into realtime.messages (topic, extension, event, private)
             values ($1, $2, 'authorization probe', true)",
            &[&topic, &extension],
        )
        .await;
    tx.rollback().await?;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if e.code().is_some() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Runs the rest of the transaction as the subscriber, with `realtime.topic()` set, so the
/// policies of `realtime.messages` see who is asking and for which channel.
pub(crate) async fn become_subscriber(
    tx: &deadpool_postgres::Transaction<'_>,
    grant: &Grant,
    topic: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.query(
        "select set_config('role', $1, true), set_config('request.jwt.claims', $2, true),
                set_config('realtime.topic', $3, true)",
        &[&grant.identity.role, &grant.identity.claims, &topic],
    )
    .await?;
    Ok(())
}
