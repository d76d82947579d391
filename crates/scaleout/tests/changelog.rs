//! The change log against a real nats-server: one leader publishes committed changes, every
//! node reads them once and in order; a deposed leader is fenced; a new leader re-publishing
//! from the slot's confirmed position delivers nothing twice.

use std::time::Duration;

use bytes::Bytes;
use craftbase_scaleout::{Change, NatsSettings, Node, Published, ScaleoutError};
use craftbase_testkit::NatsServer;
use futures_util::StreamExt;

async fn node(nats: &NatsServer, id: &str) -> Node {
    let settings = NatsSettings {
        nats_url: vec![nats.url()],
        node_id: Some(id.into()),
    };
    Node::from_settings(&settings).await.unwrap().unwrap()
}

async fn read(
    stream: &mut (impl futures_util::Stream<Item = Result<Change, ScaleoutError>> + Unpin),
    n: usize,
) -> Vec<u64> {
    let mut lsns = Vec::new();
    for _ in 0..n {
        let change = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a change in time")
            .unwrap()
            .unwrap();
        lsns.push(change.lsn);
    }
    lsns
}

#[tokio::test]
async fn every_node_reads_each_change_once_in_order_across_a_failover() {
    let nats = NatsServer::start();
    let a = node(&nats, "a").await;
    let b = node(&nats, "b").await;
    let c = node(&nats, "c").await;
    let log_a = a
        .change_log("changes", Duration::from_secs(600))
        .await
        .unwrap();
    let log_b = b
        .change_log("changes", Duration::from_secs(600))
        .await
        .unwrap();
    let log_c = c
        .change_log("changes", Duration::from_secs(600))
        .await
        .unwrap();
    let mut reader_b = Box::pin(log_b.read_from(1).await.unwrap());
    let mut reader_c = Box::pin(log_c.read_from(1).await.unwrap());

    // a leads (token 5) and publishes LSNs 100..=104.
    let mut leader = log_a.publisher(5).await.unwrap();
    for lsn in 100..=104 {
        let published = leader
            .publish(lsn, Bytes::from(format!("row {lsn}")))
            .await
            .unwrap();
        assert!(matches!(published, Published::Appended(_)));
    }
    // a dies after 104 but before confirming the slot past 102: b takes over (token 9) from the
    // slot's confirmed position and publishes 103..=106 again.
    let mut next = log_b.publisher(9).await.unwrap();
    let mut outcomes = Vec::new();
    for lsn in 103..=106 {
        outcomes.push(
            next.publish(lsn, Bytes::from(format!("row {lsn}")))
                .await
                .unwrap(),
        );
    }
    assert_eq!(outcomes[..2], [Published::Duplicate, Published::Duplicate]);
    assert!(matches!(outcomes[2], Published::Appended(_)));
    // a wakes up and tries to publish: fenced.
    match leader.publish(107, Bytes::from_static(b"stale")).await {
        Err(ScaleoutError::Fenced(5)) => {}
        other => panic!("a deposed leader published: {other:?}"),
    }
    let expected: Vec<u64> = (100..=106).collect();
    assert_eq!(read(&mut reader_b, 7).await, expected);
    assert_eq!(read(&mut reader_c, 7).await, expected);
    // Nothing else arrives (no duplicate, no stale entry).
    let extra = tokio::time::timeout(Duration::from_millis(500), reader_b.next()).await;
    assert!(extra.is_err(), "an extra change: {extra:?}");
}

#[tokio::test]
async fn a_republish_after_the_duplicate_window_is_still_delivered_once() {
    let nats = NatsServer::start();
    let a = node(&nats, "a").await;
    // A short log: its duplicate window is its max age, 1 s.
    let log = a.change_log("short", Duration::from_secs(1)).await.unwrap();
    let mut reader = Box::pin(log.read_from(1).await.unwrap());
    let mut leader = log.publisher(1).await.unwrap();
    leader.publish(10, Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(read(&mut reader, 1).await, [10]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The stream no longer remembers LSN 10; the reader does.
    let mut next = log.publisher(2).await.unwrap();
    assert!(matches!(
        next.publish(10, Bytes::from_static(b"x")).await.unwrap(),
        Published::Appended(_)
    ));
    next.publish(11, Bytes::from_static(b"y")).await.unwrap();
    assert_eq!(read(&mut reader, 1).await, [11]);
}
