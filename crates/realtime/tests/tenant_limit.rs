//! The project-wide limit of events per second (`REALTIME_TENANT_MAX_EVENTS_PER_SECOND`) across
//! two realtime nodes on one real NATS: the nodes together pass at most the limit in a window;
//! with NATS gone each node fails open and counts alone.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use craftbase_realtime::cluster::Cluster;
use craftbase_realtime::limits::Limits;
use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_realtime::Realtime;
use craftbase_scaleout::Node;
use craftbase_shared::keys::ApiKeys;
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::NatsServer;
use serde_json::json;
use tokio::sync::mpsc;

const LIMIT: u32 = 30;

/// A realtime node in cluster mode over `nats`; its pools connect lazily and are never used
/// (public broadcast needs no database).
async fn node(nats: &NatsServer, id: &str) -> Arc<Realtime> {
    let node = Node::connect(&[&nats.url()], id.to_owned(), "test nats")
        .await
        .expect("connect to NATS");
    let nowhere = tokio_postgres::Config::new();
    let secret = "tenant-limit-test-secret-of-enough-length-0123";
    let ctx = ServiceContext {
        db: pool::build(nowhere.clone(), 1),
        admin: pool::build(nowhere, 1),
        admin_conninfo: String::new(),
        jwt: Arc::new(JwtVerifier::hs256(secret, None)),
        keys: Arc::new(ApiKeys::mint(secret, craftbase_realtime::token::now() as u64).unwrap()),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    };
    let limits = Limits {
        tenant_max_events_per_second: Some(LIMIT),
        ..Limits::default()
    };
    Realtime::build(ctx, limits, Some(Cluster::new(node)))
}

/// A socket on `rt` joined to `realtime:room` with broadcast acknowledgements.
async fn joined(rt: &Arc<Realtime>) -> (Session, mpsc::Receiver<Message>) {
    let (outlet, mut rx, _) = Outlet::new(rt.hub.socket_id());
    let anon = rt.ctx.keys.anon_key.clone();
    let mut s = Session::new(rt.clone(), outlet, Some(anon));
    s.handle(push(
        "j",
        "phx_join",
        json!({"config": {"broadcast": {"ack": true}}}),
    ))
    .await;
    let reply = rx.try_recv().expect("join reply");
    assert_eq!(reply.payload["status"], "ok", "{:?}", reply.payload);
    (s, rx)
}

fn push(r: &str, event: &str, payload: serde_json::Value) -> Message {
    Message {
        join_ref: Some("j".into()),
        msg_ref: Some(r.into()),
        topic: "realtime:room".into(),
        event: event.into(),
        payload,
        raw: None,
        payload_text: None,
    }
}

/// Sends one broadcast; true when it was acknowledged, false when the project's limit refused
/// it (a `system` error, and the channel closed).
async fn broadcast(s: &mut Session, rx: &mut mpsc::Receiver<Message>, i: usize) -> bool {
    let body = json!({"type": "broadcast", "event": "ev", "payload": {"i": i}});
    s.handle(push(&format!("b{i}"), "broadcast", body)).await;
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m);
    }
    if let Some(sys) = out.iter().find(|m| m.event == "system") {
        assert_eq!(sys.payload["status"], "error");
        assert_eq!(sys.payload["message"], "Too many messages per second");
        assert!(out.iter().any(|m| m.event == "phx_close"), "{out:?}");
        return false;
    }
    let ack = out
        .iter()
        .find(|m| m.event == "phx_reply")
        .unwrap_or_else(|| panic!("no ack: {out:?}"));
    assert_eq!(ack.payload["status"], "ok", "{out:?}");
    true
}

/// Sleeps until a window (second) has just begun, so that a short burst stays in it.
async fn window_start() {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into) + 5)).await;
}

/// Alternates broadcasts from a socket on each node, re-joining a socket whose channel the
/// limit closed, 2 × LIMIT attempts in all; returns the number each node passed.
async fn burst(nodes: &[Arc<Realtime>; 2]) -> [usize; 2] {
    let mut sockets = [joined(&nodes[0]).await, joined(&nodes[1]).await];
    // One event each in a window of its own before: the counters bucket is opened (or NATS
    // found gone) before the burst's window starts.
    window_start().await;
    for rt in nodes {
        rt.tenant_events.take(1).await;
    }
    window_start().await;
    let started = std::time::Instant::now();
    let mut passed = [0, 0];
    for i in 0..(2 * LIMIT as usize) {
        let n = i % 2;
        let (s, rx) = &mut sockets[n];
        if broadcast(s, rx, i).await {
            passed[n] += 1;
        } else {
            sockets[n] = joined(&nodes[n]).await;
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the burst must fit in one window: {:?}",
        started.elapsed()
    );
    passed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_nodes_and_fails_open_without_nats() {
    let mut nats = NatsServer::start();
    let nodes = [node(&nats, "node-a").await, node(&nats, "node-b").await];

    // Counted per node, each would pass its 30 of the 60. Shared: at most 30 in all, and at
    // least 30 minus the budget a node may hold unspent (batch 3: at most 2 unspent).
    let passed = burst(&nodes).await;
    let total = passed[0] + passed[1];
    assert!(
        (28..=LIMIT as usize).contains(&total),
        "passed {passed:?} of {} attempts",
        2 * LIMIT
    );
    assert!(
        passed[0] > 0 && passed[1] > 0,
        "both nodes got budget: {passed:?}"
    );

    // NATS gone: each node fails open, counting alone against the whole limit.
    nats.kill();
    let passed = burst(&nodes).await;
    assert_eq!(passed, [LIMIT as usize, LIMIT as usize], "each node alone");
}
