//! Broadcast between nodes against a real nats-server.

use std::time::Duration;

use bytes::Bytes;
use craftbase_scaleout::{Envelope, NatsSettings, Node};
use craftbase_testkit::NatsServer;
use futures_util::StreamExt;

async fn node(nats: &NatsServer, id: &str) -> Node {
    let settings = NatsSettings {
        nats_url: vec![nats.url()],
        node_id: Some(id.into()),
    };
    Node::from_settings(&settings).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_broadcast_reaches_the_other_nodes_once_and_never_its_own() {
    let nats = NatsServer::start();
    let nodes = [
        node(&nats, "a").await,
        node(&nats, "b").await,
        node(&nats, "c").await,
    ];
    let topic = "realtime:room 1.*>";
    let mut subs = Vec::new();
    for n in &nodes {
        subs.push(Box::pin(n.broadcasts().subscribe(topic).await.unwrap()));
    }
    let mut other = Box::pin(
        nodes[1]
            .broadcasts()
            .subscribe("realtime:room-2")
            .await
            .unwrap(),
    );
    let mut all = Box::pin(nodes[2].broadcasts().subscribe_all().await.unwrap());
    // Subscriptions are registered with the server before anything is sent.
    for n in &nodes {
        n.client().flush().await.unwrap();
    }
    for i in 0..3 {
        nodes[0]
            .broadcasts()
            .publish(topic, Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for sub in &mut subs[1..] {
        for i in 0..3 {
            let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
                .await
                .unwrap();
            assert_eq!(
                got,
                Some(Envelope {
                    origin: "a".into(),
                    topic: topic.into(),
                    payload: Bytes::from(format!("m{i}")),
                })
            );
        }
    }
    let got = tokio::time::timeout(Duration::from_secs(5), all.next())
        .await
        .unwrap();
    assert_eq!(got.unwrap().topic, topic);
    // The sender hears nothing back; another topic hears nothing.
    let own = tokio::time::timeout(Duration::from_millis(300), subs[0].next()).await;
    assert!(own.is_err(), "a node received its own broadcast");
    let elsewhere = tokio::time::timeout(Duration::from_millis(300), other.next()).await;
    assert!(elsewhere.is_err(), "another topic received it");
    // No duplicates.
    let extra = tokio::time::timeout(Duration::from_millis(300), subs[1].next()).await;
    assert!(extra.is_err());
}
