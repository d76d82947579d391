//! Broadcast and presence across cluster nodes (issue 16, item 3): several realtime states on
//! one database and one real nats-server, each with its own sockets, as nodes behind a load
//! balancer would be.

use std::sync::Arc;
use std::time::Duration;

use craftbase_realtime::cluster::{bus, Cluster};
use craftbase_realtime::hub::{self, Joining};
use craftbase_realtime::identity::Identity;
use craftbase_realtime::limits::Limits;
use craftbase_realtime::outlet::Outlet;
use craftbase_realtime::protocol::Message;
use craftbase_realtime::session::Session;
use craftbase_realtime::Realtime;
use craftbase_scaleout::{Heartbeat, Node};
use craftbase_testkit::{NatsServer, TestDb};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support;

/// Short, so that a dead node is noticed within the test.
const TTL: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(15);

/// One node: its realtime state, NATS connection, bus and membership heartbeat.
struct Peer {
    rt: Arc<Realtime>,
    node: Node,
    bus: bus::Bus,
    heartbeat: Option<Heartbeat>,
}

async fn peer(db: &TestDb, nats: &NatsServer, id: &str) -> Peer {
    let node = Node::connect(&[&nats.url()], id.into(), "test nats")
        .await
        .unwrap();
    let heartbeat = node.membership(TTL).await.unwrap().join(id).await.unwrap();
    let cluster = Cluster::with_member_ttl(node.clone(), TTL);
    let rt = Realtime::build(support::context(db), Limits::default(), Some(cluster));
    let bus = bus::start(&rt).await.unwrap();
    Peer {
        rt,
        node,
        bus,
        heartbeat: Some(heartbeat),
    }
}

impl Peer {
    fn socket(&self) -> Sock {
        let (outlet, rx, _) = Outlet::new(self.rt.hub.socket_id());
        let anon = self.rt.ctx.keys.anon_key.clone();
        Sock {
            session: Session::new(self.rt.clone(), outlet, Some(anon)),
            rx,
            refs: 0,
        }
    }

    /// The node dies as if SIGKILLed: it says nothing more and its heartbeat stops.
    async fn kill(&mut self) {
        self.bus.stop();
        self.heartbeat.take();
        let _ = self.node.client().drain().await;
    }

    /// Waits until the node's presence state of `topic` holds exactly `keys`.
    async fn await_presences(&self, topic: &str, keys: &[&str]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let state = self.rt.hub.presence_state(topic);
            let mut have: Vec<&str> = state
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            have.sort();
            if have == keys {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "presence state of {topic} stayed {state}, expected {keys:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A socket on one node.
struct Sock {
    session: Session,
    rx: mpsc::Receiver<Message>,
    refs: u32,
}

impl Sock {
    async fn push(&mut self, topic: &str, event: &str, payload: Value) {
        self.refs += 1;
        self.session
            .handle(Message {
                join_ref: Some("1".into()),
                msg_ref: Some(self.refs.to_string()),
                topic: topic.into(),
                event: event.into(),
                payload,
                raw: None,
                payload_text: None,
            })
            .await;
    }

    /// Joins `topic` (join_ref "1") and returns what the join answered.
    async fn join(&mut self, topic: &str, config: Value) -> Vec<Message> {
        self.push(topic, "phx_join", json!({ "config": config }))
            .await;
        self.drain()
    }

    async fn track(&mut self, topic: &str, meta: Value) {
        self.push(
            topic,
            "presence",
            json!({"type": "presence", "event": "track", "payload": meta}),
        )
        .await;
    }

    /// Everything queued now.
    fn drain(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            out.push(m);
        }
        out
    }

    /// The next `event`, skipping others.
    async fn next(&mut self, event: &str) -> Message {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let msg: Message = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no {event} within {WAIT:?}"))
                .unwrap();
            if msg.event == event {
                return msg;
            }
        }
    }

    /// What arrives within `d`.
    async fn quiet(&mut self, d: Duration) -> Vec<Message> {
        tokio::time::sleep(d).await;
        self.drain()
    }
}

fn events<'a>(msgs: &'a [Message], event: &str) -> Vec<&'a Message> {
    msgs.iter().filter(|m| m.event == event).collect()
}

async fn db() -> TestDb {
    TestDb::new(craftbase::migrations::platform_and_example).await
}

#[tokio::test]
async fn a_broadcast_reaches_every_node_once_and_self_and_ack_stay_local() {
    let (db, nats) = (db().await, NatsServer::start());
    let (a, b, c) = (
        peer(&db, &nats, "a").await,
        peer(&db, &nats, "b").await,
        peer(&db, &nats, "c").await,
    );
    let topic = "realtime:room";
    let mut sender = a.socket();
    sender
        .join(topic, json!({"broadcast": {"ack": true}}))
        .await;
    let mut loud = a.socket();
    loud.join(topic, json!({"broadcast": {"self": true}})).await;
    let mut on_b = b.socket();
    on_b.join(topic, json!({})).await;
    let mut on_c = c.socket();
    on_c.join(topic, json!({})).await;

    let body = json!({"type": "broadcast", "event": "shout", "payload": {"n": 1}});
    sender.push(topic, "broadcast", body.clone()).await;
    // The sender: its ack, and not its own message (self is off).
    let got = sender.drain();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload, json!({"status": "ok", "response": {}}));
    for sock in [&mut on_b, &mut on_c] {
        let m = sock.next("broadcast").await;
        assert_eq!(m.payload, body);
        assert_eq!(m.topic, topic);
    }
    assert_eq!(events(&loud.drain(), "broadcast").len(), 1);

    // `self` on A: the sender gets its own once, the other nodes once, nothing goes round.
    loud.push(
        topic,
        "broadcast",
        json!({"type": "broadcast", "event": "e", "payload": {"n": 2}}),
    )
    .await;
    assert_eq!(events(&loud.drain(), "broadcast").len(), 1);
    on_b.next("broadcast").await;
    on_c.next("broadcast").await;

    // REST's path (no sender socket), raw bytes kept.
    let raw: Arc<[u8]> = Arc::from(&[1u8, 2, 3, 250][..]);
    let rest = json!({"type": "broadcast", "event": "bin", "payload": null});
    a.rt.hub.broadcast(topic, None, &rest, Some(&raw));
    let m = on_b.next("broadcast").await;
    assert_eq!(
        (m.payload.clone(), m.raw.clone()),
        (rest.clone(), Some(raw.clone()))
    );
    on_c.next("broadcast").await;

    // A stored broadcast is every node's own to deliver (from the change stream): not on the bus.
    a.rt.hub
        .broadcast_stored(topic, "id-1", &rest, None, |_| true);
    // Here the sender got `loud`'s, REST's and the stored one, each once.
    let got = sender.drain();
    let got: Vec<&Value> = events(&got, "broadcast")
        .iter()
        .map(|m| &m.payload["event"])
        .collect();
    assert_eq!(got, [&json!("e"), &json!("bin"), &json!("bin")]);
    // Nothing more anywhere: each message above arrived once.
    let b_late = on_b.quiet(Duration::from_millis(700)).await;
    assert!(events(&b_late, "broadcast").is_empty(), "{b_late:?}");
    assert!(events(&on_c.drain(), "broadcast").is_empty());
    let l = loud.drain();
    assert_eq!(events(&l, "broadcast").len(), 2, "{l:?}");
}

#[tokio::test]
async fn private_and_public_channels_of_one_name_stay_apart_across_nodes() {
    let (db, nats) = (db().await, NatsServer::start());
    let (a, b) = (peer(&db, &nats, "a").await, peer(&db, &nats, "b").await);
    let topic = "realtime:secret";
    let identity = Arc::new(Identity {
        role: "authenticated".into(),
        claims: "{}".into(),
        uid: None,
    });
    let mut members = Vec::new();
    for private in [false, true] {
        let (outlet, rx, _) = Outlet::new(b.rt.hub.socket_id());
        b.rt.hub.join(
            &hub::key(topic, private),
            Joining {
                outlet,
                topic: topic.into(),
                join_ref: "1".into(),
                broadcast_self: false,
                identity: identity.clone(),
                replayed: Vec::new(),
            },
        );
        members.push(rx);
    }
    let send = |private: bool, n: u32| {
        let payload = json!({"type": "broadcast", "event": "e", "payload": {"n": n}});
        a.rt.hub
            .broadcast(&hub::key(topic, private), None, &payload, None);
    };
    send(true, 1);
    send(false, 2);
    for (rx, n) in members.iter_mut().zip([2, 1]) {
        let m = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.payload["payload"]["n"], n);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for rx in &mut members {
        assert!(
            rx.try_recv().is_err(),
            "a message crossed between private and public"
        );
    }
}

#[tokio::test]
async fn presence_state_is_the_union_of_every_node_and_diffs_reach_all() {
    let (db, nats) = (db().await, NatsServer::start());
    let (a, b, c) = (
        peer(&db, &nats, "a").await,
        peer(&db, &nats, "b").await,
        peer(&db, &nats, "c").await,
    );
    let topic = "realtime:lobby";
    let presence = |key: &str| json!({"presence": {"enabled": true, "key": key}});
    let mut alice = a.socket();
    alice.join(topic, presence("alice")).await;
    alice.track(topic, json!({"name": "Alice"})).await;
    b.await_presences(topic, &["alice"]).await;

    let mut bob = b.socket();
    let joined = bob.join(topic, presence("bob")).await;
    let state = &events(&joined, "presence_state")[0].payload;
    assert_eq!(state["alice"]["metas"][0]["name"], "Alice", "{state}");
    assert!(state["alice"]["metas"][0]["phx_ref"].is_string());
    bob.track(topic, json!({"name": "Bob"})).await;
    let diff = alice.next("presence_diff").await;
    // Alice's own join came first; then Bob's, from B.
    let diff = if diff.payload["joins"].get("bob").is_some() {
        diff
    } else {
        alice.next("presence_diff").await
    };
    assert_eq!(diff.payload["joins"]["bob"]["metas"][0]["name"], "Bob");
    assert_eq!(diff.payload["leaves"], json!({}));

    c.await_presences(topic, &["alice", "bob"]).await;
    let mut carol = c.socket();
    let joined = carol.join(topic, presence("carol")).await;
    let state = &events(&joined, "presence_state")[0].payload;
    assert_eq!(state.as_object().unwrap().len(), 2, "{state}");

    alice
        .push(
            topic,
            "presence",
            json!({"type": "presence", "event": "untrack"}),
        )
        .await;
    for sock in [&mut bob, &mut carol] {
        let leave = sock.next("presence_diff").await;
        let leave = if leave.payload["leaves"].get("alice").is_some() {
            leave
        } else {
            sock.next("presence_diff").await
        };
        assert_eq!(
            leave.payload["leaves"]["alice"]["metas"][0]["name"],
            "Alice"
        );
    }
    for n in [&a, &b, &c] {
        n.await_presences(topic, &["bob"]).await;
    }
    // A socket closing leaves too.
    bob.session.close();
    for n in [&a, &b, &c] {
        n.await_presences(topic, &[]).await;
    }
}

#[tokio::test]
async fn a_node_that_starts_late_sees_the_presences_already_there() {
    let (db, nats) = (db().await, NatsServer::start());
    let (a, b) = (peer(&db, &nats, "a").await, peer(&db, &nats, "b").await);
    let topic = "realtime:early";
    let mut socks = Vec::new();
    for (n, key) in [(&a, "alice"), (&b, "bob")] {
        let mut s = n.socket();
        s.join(topic, json!({"presence": {"key": key}})).await;
        s.track(topic, json!({"who": key})).await;
        socks.push(s);
    }
    a.await_presences(topic, &["alice", "bob"]).await;
    // Every diff above was sent before C existed: it must ask.
    let c = peer(&db, &nats, "c").await;
    c.await_presences(topic, &["alice", "bob"]).await;
    let mut late = c.socket();
    let joined = late
        .join(topic, json!({"presence": {"enabled": true, "key": "late"}}))
        .await;
    let state = &events(&joined, "presence_state")[0].payload;
    assert_eq!(state["alice"]["metas"][0]["who"], "alice", "{state}");
    assert_eq!(state["bob"]["metas"][0]["who"], "bob", "{state}");
    // And what C's sockets track reaches the earlier nodes.
    late.track(topic, json!({"who": "late"})).await;
    a.await_presences(topic, &["alice", "bob", "late"]).await;
    b.await_presences(topic, &["alice", "bob", "late"]).await;
}

#[tokio::test]
async fn a_dead_nodes_presences_leave_when_its_membership_expires() {
    let (db, nats) = (db().await, NatsServer::start());
    let (a, b) = (peer(&db, &nats, "a").await, peer(&db, &nats, "b").await);
    let mut c = peer(&db, &nats, "c").await;
    let topic = "realtime:watch";
    let mut watcher = a.socket();
    watcher
        .join(
            topic,
            json!({"presence": {"enabled": true, "key": "watcher"}}),
        )
        .await;
    let mut carol = c.socket();
    carol
        .join(topic, json!({"presence": {"key": "carol"}}))
        .await;
    carol.track(topic, json!({"name": "Carol"})).await;
    let join = watcher.next("presence_diff").await;
    assert_eq!(join.payload["joins"]["carol"]["metas"][0]["name"], "Carol");
    b.await_presences(topic, &["carol"]).await;

    c.kill().await;
    // No leave can come from C: only its expired membership tells A and B.
    let leave = watcher.next("presence_diff").await;
    assert_eq!(
        leave.payload["leaves"]["carol"]["metas"][0]["name"],
        "Carol"
    );
    assert_eq!(leave.payload["joins"], json!({}));
    a.await_presences(topic, &[]).await;
    b.await_presences(topic, &[]).await;
    let mut fresh = b.socket();
    let joined = fresh
        .join(topic, json!({"presence": {"enabled": true}}))
        .await;
    assert_eq!(events(&joined, "presence_state")[0].payload, json!({}));
}
