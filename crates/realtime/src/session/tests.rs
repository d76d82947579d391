//! The state machine without a database: joins without postgres_changes or private channels,
//! heartbeats, leaves, broadcast, presence and tokens never reach the pools.

use super::*;
use crate::limits::Limits;
use crate::protocol::{envelope_text, Vsn};
use crate::token;
use craftbase_shared::keys::{sign, ApiKeys};
use craftbase_shared::{pool, JwtVerifier, RoleSwitch, ServiceContext};
use std::time::Duration;
use tokio::sync::mpsc;

const SECRET: &str = "session-test-secret-of-enough-length-0123456789";

fn realtime() -> Arc<Realtime> {
    limited(Limits::default())
}

fn limited(limits: Limits) -> Arc<Realtime> {
    // Pools connect lazily; these tests never use them.
    let nowhere = tokio_postgres::Config::new();
    Realtime::with_limits(
        ServiceContext {
            db: pool::build(nowhere.clone(), 1),
            admin: pool::build(nowhere, 1),
            admin_conninfo: String::new(),
            jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
            keys: Arc::new(ApiKeys::mint(SECRET, token::now() as u64).unwrap()),
            roles: Arc::new(RoleSwitch::new(
                ["anon", "authenticated", "service_role"].map(String::from),
            )),
        },
        limits,
    )
}

fn socket(rt: &Arc<Realtime>) -> (Session, mpsc::Receiver<Message>) {
    let (outlet, rx, _) = Outlet::new(rt.hub.socket_id());
    let anon = rt.ctx.keys.anon_key.clone();
    (Session::new(rt.clone(), outlet, Some(anon)), rx)
}

fn m(join_ref: Option<&str>, r: &str, topic: &str, event: &str, payload: Value) -> Message {
    Message {
        join_ref: join_ref.map(str::to_owned),
        msg_ref: Some(r.to_owned()),
        topic: topic.to_owned(),
        event: event.to_owned(),
        payload,
        raw: None,
        payload_text: None,
    }
}

fn take(rx: &mut mpsc::Receiver<Message>) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(msg) = rx.try_recv() {
        out.push(msg);
    }
    out
}

fn user(exp_in: i64) -> String {
    sign(
        SECRET,
        &json!({"sub": "u1", "role": "authenticated", "exp": token::now() + exp_in}),
    )
    .unwrap()
}

#[tokio::test]
async fn heartbeat_join_leave_and_unmatched_topics() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    s.handle(m(None, "1", "phoenix", "heartbeat", json!({})))
        .await;
    let out = take(&mut rx);
    assert_eq!(out[0].event, "phx_reply");
    assert_eq!(out[0].payload, json!({"status": "ok", "response": {}}));

    s.handle(m(Some("2"), "3", "realtime:room", "broadcast", json!({})))
        .await;
    let out = take(&mut rx);
    assert_eq!(
        out[0].payload,
        json!({"status": "error", "response": {"reason": "unmatched topic"}})
    );
    assert_eq!(out[0].join_ref, None);

    s.handle(m(
        Some("4"),
        "4",
        "realtime:room",
        "phx_join",
        json!({"config": {}}),
    ))
    .await;
    let out = take(&mut rx);
    assert_eq!(
        out[0].payload,
        json!({"status": "ok", "response": {"postgres_changes": []}})
    );
    assert_eq!(out[0].join_ref.as_deref(), Some("4"));

    s.handle(m(Some("4"), "5", "realtime:room", "phx_leave", json!({})))
        .await;
    let out = take(&mut rx);
    assert_eq!(out[0].event, "phx_reply");
    assert_eq!(out[1].event, "phx_close");
    assert_eq!(
        (out[1].join_ref.as_deref(), out[1].msg_ref.as_deref()),
        (Some("4"), Some("4"))
    );
}

#[tokio::test]
async fn join_refusals_carry_supabase_reasons() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    s.handle(m(Some("1"), "1", "realtime:", "phx_join", json!({})))
        .await;
    assert_eq!(
        take(&mut rx)[0].payload["response"]["reason"],
        "TopicNameRequired: You must provide a topic name"
    );
    let expired = user(-30);
    s.handle(m(
        Some("2"),
        "2",
        "realtime:a",
        "phx_join",
        json!({"access_token": expired}),
    ))
    .await;
    let reason = take(&mut rx)[0].payload["response"]["reason"].clone();
    assert!(
        reason
            .as_str()
            .unwrap()
            .starts_with("InvalidJWTToken: Token has expired"),
        "{reason}"
    );
    s.handle(m(
        Some("3"),
        "3",
        "realtime:a",
        "phx_join",
        json!({"access_token": "x.y.z"}),
    ))
    .await;
    assert_eq!(
        take(&mut rx)[0].payload["response"]["reason"],
        "InvalidJWTToken: Failed to validate JWT signature"
    );
}

#[tokio::test]
async fn bindings_are_echoed_in_order_with_ids() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    let bindings = json!([
        {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.5"},
        {"event": "*", "schema": "public"},
        {"event": "INSERT", "schema": "public", "table": "todos", "filter": "id=eq.5"}
    ]);
    s.handle(m(
        Some("1"),
        "1",
        "realtime:db",
        "phx_join",
        json!({"config": {"postgres_changes": bindings}}),
    ))
    .await;
    let reply = &take(&mut rx)[0];
    let echoed = reply.payload["response"]["postgres_changes"]
        .as_array()
        .unwrap();
    assert_eq!(echoed.len(), 3);
    assert_eq!(echoed[0]["filter"], "id=eq.5");
    assert_eq!(echoed[1]["event"], "*");
    assert!(
        echoed[1].get("table").is_none(),
        "the client's own map, echoed"
    );
    assert!(echoed[0]["id"].as_u64().unwrap() > 0);
    assert_eq!(
        echoed[0]["id"], echoed[2]["id"],
        "equal bindings share an id"
    );
    assert_ne!(echoed[0]["id"], echoed[1]["id"]);
}

#[tokio::test]
async fn broadcast_self_ack_and_presence() {
    let rt = realtime();
    let (mut a, mut rx_a) = socket(&rt);
    let (mut b, mut rx_b) = socket(&rt);
    let cfg = |self_: bool, key: &str| json!({"config": {"broadcast": {"self": self_, "ack": true}, "presence": {"key": key, "enabled": true}}});
    a.handle(m(
        Some("1"),
        "1",
        "realtime:room",
        "phx_join",
        cfg(false, "a"),
    ))
    .await;
    b.handle(m(
        Some("9"),
        "9",
        "realtime:room",
        "phx_join",
        cfg(true, "b"),
    ))
    .await;
    take(&mut rx_a);
    let joined_b = take(&mut rx_b);
    assert_eq!(joined_b[1].event, "presence_state");

    let push = json!({"type": "broadcast", "event": "ev", "payload": {"x": 1}});
    a.handle(m(
        Some("1"),
        "2",
        "realtime:room",
        "broadcast",
        push.clone(),
    ))
    .await;
    let to_a = take(&mut rx_a);
    assert_eq!(
        to_a.len(),
        1,
        "no echo without self, only the ack: {to_a:?}"
    );
    assert_eq!(to_a[0].event, "phx_reply");
    let to_b = take(&mut rx_b);
    assert_eq!(to_b[0].event, "broadcast");
    assert_eq!(to_b[0].payload, push);

    b.handle(m(
        Some("9"),
        "10",
        "realtime:room",
        "broadcast",
        push.clone(),
    ))
    .await;
    let to_b = take(&mut rx_b);
    assert!(to_b.iter().any(|x| x.event == "broadcast"), "self echo");

    let track = json!({"type": "presence", "event": "track", "payload": {"status": "on"}});
    a.handle(m(Some("1"), "3", "realtime:room", "presence", track))
        .await;
    let to_b = take(&mut rx_b);
    let diff = to_b.iter().find(|x| x.event == "presence_diff").unwrap();
    assert_eq!(diff.payload["joins"]["a"]["metas"][0]["status"], "on");
    assert_eq!(diff.join_ref.as_deref(), Some("9"));
    a.close();
    let to_b = take(&mut rx_b);
    let diff = to_b.iter().find(|x| x.event == "presence_diff").unwrap();
    assert_eq!(diff.payload["leaves"]["a"]["metas"][0]["status"], "on");
}

#[tokio::test]
async fn expiry_closes_and_renewal_extends() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    let short = user(5);
    s.handle(m(
        Some("1"),
        "1",
        "realtime:a",
        "phx_join",
        json!({"access_token": short}),
    ))
    .await;
    s.handle(m(
        Some("2"),
        "2",
        "realtime:b",
        "phx_join",
        json!({"access_token": short}),
    ))
    .await;
    take(&mut rx);
    s.handle(m(
        Some("1"),
        "3",
        "realtime:a",
        "access_token",
        json!({"access_token": user(3600)}),
    ))
    .await;
    s.expire(token::now() + 10);
    let out = take(&mut rx);
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].topic, "realtime:b");
    assert_eq!(out[0].event, "system");
    assert_eq!(out[0].payload["extension"], "system");
    assert_eq!(out[0].payload["status"], "error");
    assert!(out[0].payload["message"]
        .as_str()
        .unwrap()
        .starts_with("Token has expired"));
    assert_eq!(out[1].event, "phx_close");

    s.handle(m(
        Some("1"),
        "4",
        "realtime:a",
        "access_token",
        json!({"access_token": "bad"}),
    ))
    .await;
    let out = take(&mut rx);
    assert_eq!(out[0].event, "system");
    assert_eq!(out[1].event, "phx_close");
}

#[tokio::test]
async fn a_full_queue_signals_overflow_instead_of_blocking() {
    let (outlet, _rx, overflow) = Outlet::new(1);
    for _ in 0..crate::outlet::SOCKET_QUEUE + 1 {
        outlet.send(Message::push("t", "e", json!({})));
    }
    tokio::time::timeout(std::time::Duration::from_secs(1), overflow.notified())
        .await
        .expect("overflow notified");
}

fn reason(out: &[Message]) -> Value {
    out[0].payload["response"]["reason"].clone()
}

fn join(r: &str, topic: &str, config: Value) -> Message {
    m(Some(r), r, topic, "phx_join", json!({ "config": config }))
}

#[tokio::test]
async fn a_socket_joins_at_most_max_channels() {
    let rt = limited(Limits {
        max_channels: 2,
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    for (r, t) in [("1", "realtime:a"), ("2", "realtime:b")] {
        s.handle(join(r, t, json!({}))).await;
        assert_eq!(take(&mut rx)[0].payload["status"], "ok");
    }
    s.handle(join("3", "realtime:c", json!({}))).await;
    let out = take(&mut rx);
    assert_eq!(out[0].payload["status"], "error");
    assert_eq!(reason(&out), "ChannelRateLimitReached: Too many channels");
    // A rejoin of a joined topic is not a new channel; after a leave there is room again.
    s.handle(join("4", "realtime:a", json!({}))).await;
    assert!(take(&mut rx).iter().any(|x| x.payload["status"] == "ok"));
    s.handle(m(Some("2"), "5", "realtime:b", "phx_leave", json!({})))
        .await;
    take(&mut rx);
    s.handle(join("6", "realtime:c", json!({}))).await;
    assert_eq!(take(&mut rx)[0].payload["status"], "ok");
    assert!(!s.wants_disconnect());
}

#[tokio::test]
async fn too_many_joins_per_second_refuse_and_disconnect() {
    let rt = limited(Limits {
        max_joins_per_second: 3,
        max_channels: 1000,
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    // Thirty joins cannot all fall in windows of three unless they take ten seconds.
    let mut refused = None;
    for i in 0..30 {
        s.handle(join(&i.to_string(), &format!("realtime:t{i}"), json!({})))
            .await;
        let out = take(&mut rx);
        if out[0].payload["status"] == "error" {
            refused = Some(reason(&out));
            break;
        }
    }
    assert_eq!(
        refused.expect("a join was refused"),
        "ClientJoinRateLimitReached: Too many joins per second"
    );
    assert!(s.wants_disconnect());
}

#[tokio::test]
async fn too_many_events_per_second_shut_the_channel() {
    let rt = limited(Limits {
        max_events_per_second: 3,
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    s.handle(join(
        "1",
        "realtime:room",
        json!({"broadcast": {"ack": true}}),
    ))
    .await;
    take(&mut rx);
    let push = json!({"type": "broadcast", "event": "ev", "payload": {}});
    let mut shut = None;
    for i in 0..30 {
        s.handle(m(
            Some("1"),
            &format!("b{i}"),
            "realtime:room",
            "broadcast",
            push.clone(),
        ))
        .await;
        let out = take(&mut rx);
        if let Some(sys) = out.iter().find(|x| x.event == "system") {
            assert_eq!(out.last().unwrap().event, "phx_close");
            shut = Some(sys.payload.clone());
            break;
        }
    }
    assert_eq!(
        shut.expect("the channel was shut"),
        json!({"extension": "system", "status": "error", "message": "Too many messages per second", "channel": "room"})
    );
    // Heartbeats are not events.
    for i in 0..10 {
        s.handle(m(None, &format!("h{i}"), "phoenix", "heartbeat", json!({})))
            .await;
    }
    assert_eq!(take(&mut rx).len(), 10);
}

#[tokio::test]
async fn presence_calls_are_limited_per_channel_window() {
    let rt = limited(Limits {
        presence_max_calls: 2,
        presence_window: Duration::from_secs(3600),
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    s.handle(join(
        "1",
        "realtime:lobby",
        json!({"presence": {"key": "k"}}),
    ))
    .await;
    take(&mut rx);
    let track = |n: i32| json!({"type": "presence", "event": "TRACK", "payload": {"n": n}});
    for n in 0..2 {
        s.handle(m(Some("1"), "2", "realtime:lobby", "presence", track(n)))
            .await;
        let out = take(&mut rx);
        assert!(out.iter().any(|x| x.payload["status"] == "ok"), "{out:?}");
    }
    s.handle(m(Some("1"), "3", "realtime:lobby", "presence", track(9)))
        .await;
    let out = take(&mut rx);
    let sys = out.iter().find(|x| x.event == "system").expect("system");
    assert_eq!(
        sys.payload["message"],
        "Client presence rate limit exceeded"
    );
    assert_eq!(out.last().unwrap().event, "phx_close");
}

#[tokio::test]
async fn presence_track_size_and_shape_are_checked() {
    let rt = limited(Limits {
        max_payload_bytes: 100,
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    s.handle(join("1", "realtime:lobby", json!({}))).await;
    take(&mut rx);
    let track = |p: Value| json!({"type": "presence", "event": "track", "payload": p});
    s.handle(m(
        Some("1"),
        "2",
        "realtime:lobby",
        "presence",
        track(json!([1])),
    ))
    .await;
    assert_eq!(
        reason(&take(&mut rx)),
        "Presence track payload must be a map"
    );
    let big = track(json!({"x": "y".repeat(200)}));
    s.handle(m(Some("1"), "3", "realtime:lobby", "presence", big))
        .await;
    let out = take(&mut rx);
    assert_eq!(out[0].payload["message"], "Track message size exceeded");
    assert_eq!(out.last().unwrap().event, "phx_close");
}

#[tokio::test]
async fn a_join_has_at_most_max_bindings() {
    let rt = limited(Limits {
        max_bindings: 2,
        ..Limits::default()
    });
    let (mut s, mut rx) = socket(&rt);
    let b = json!({"event": "*", "schema": "public", "table": "t"});
    s.handle(join(
        "1",
        "realtime:db",
        json!({"postgres_changes": [b, b, b]}),
    ))
    .await;
    let out = take(&mut rx);
    assert_eq!(out.len(), 1, "refused before any subscription: {out:?}");
    assert_eq!(
        reason(&out),
        "TooManyBindings: A channel accepts at most 2 postgres_changes bindings"
    );
}

#[tokio::test]
async fn topics_with_control_characters_or_too_long_are_refused() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    for topic in [
        format!("realtime:a{}b", '\0'),
        format!("realtime:t{}b", '\t'),
        format!("realtime:d{}", '\u{7f}'),
    ] {
        s.handle(m(
            Some("1"),
            "1",
            &topic,
            "phx_join",
            json!({"config": {"private": true}}),
        ))
        .await;
        assert_eq!(
            reason(&take(&mut rx)),
            "InvalidTopic: A topic name must not contain control characters"
        );
    }
    let long = format!("realtime:{}", "x".repeat(247));
    s.handle(join("2", &long, json!({}))).await;
    assert_eq!(
        reason(&take(&mut rx)),
        "InvalidTopic: A topic name is at most 255 bytes long"
    );
    s.handle(join("3", &long[..255], json!({}))).await;
    assert_eq!(take(&mut rx)[0].payload["status"], "ok");
}

#[tokio::test]
async fn an_oversized_broadcast_is_not_relayed() {
    let rt = limited(Limits {
        max_payload_bytes: 100,
        ..Limits::default()
    });
    let (mut a, mut rx_a) = socket(&rt);
    let (mut b, mut rx_b) = socket(&rt);
    a.handle(join(
        "1",
        "realtime:room",
        json!({"broadcast": {"ack": true}}),
    ))
    .await;
    b.handle(join("1", "realtime:room", json!({}))).await;
    take(&mut rx_a);
    take(&mut rx_b);
    let push = |p: Value| json!({"type": "broadcast", "event": "ev", "payload": p});
    a.handle(m(
        Some("1"),
        "2",
        "realtime:room",
        "broadcast",
        push(json!({"x": "y".repeat(200)})),
    ))
    .await;
    assert_eq!(
        take(&mut rx_a)[0].payload,
        json!({"status": "error", "response": "payload_size_exceeded"})
    );
    assert!(take(&mut rx_b).is_empty());
    a.handle(m(
        Some("1"),
        "3",
        "realtime:room",
        "broadcast",
        push(json!({"x": 1})),
    ))
    .await;
    assert_eq!(take(&mut rx_a)[0].payload["status"], "ok");
    assert_eq!(take(&mut rx_b)[0].event, "broadcast");
}

#[tokio::test]
async fn payloads_are_read_only_for_joins_and_joined_topics() {
    let rt = realtime();
    let (mut s, mut rx) = socket(&rt);
    let frame = r#"{"topic":"realtime:elsewhere","event":"broadcast","payload":{"big":[1,2,3]},"ref":"1","join_ref":"1"}"#;
    let msg = s.admit(envelope_text(Vsn::V1, frame).unwrap()).unwrap();
    assert_eq!(msg.payload, Value::Null, "not joined: payload not decoded");
    s.handle(join("1", "realtime:elsewhere", json!({}))).await;
    take(&mut rx);
    let msg = s.admit(envelope_text(Vsn::V1, frame).unwrap()).unwrap();
    assert_eq!(msg.payload["big"], json!([1, 2, 3]));
}

#[tokio::test]
async fn a_queue_is_bounded_in_bytes() {
    let (outlet, mut rx, overflow) = Outlet::bounded(1, 4096);
    let big = Message::push("t", "e", json!({"x": "y".repeat(1000)}));
    for _ in 0..3 {
        outlet.send(big.clone());
    }
    assert!(outlet.queued_bytes() > 3000);
    let taken = rx.try_recv().unwrap();
    outlet.taken(&taken);
    outlet.send(big.clone());
    outlet.send(big.clone());
    tokio::time::timeout(Duration::from_secs(1), overflow.notified())
        .await
        .expect("overflow notified");
    assert!(outlet.queued_bytes() <= 4096);
}
