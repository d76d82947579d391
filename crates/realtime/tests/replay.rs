//! Broadcast replay on join: which stored messages come back, in what order, with which meta,
//! and the refusals.

use serde_json::{json, Value};

use crate::support::*;

/// Team channels (`room-<team>`); a message with `payload.to` is only for that user. Also
/// applies the replay index, until the platform migrations list it.
async fn policies(env: &Env) {
    env.sql
        .batch_execute(craftbase_realtime::REPLAY_SQL)
        .await
        .unwrap();
    env.sql
        .batch_execute(
            "create policy team_read on realtime.messages for select to authenticated
               using (realtime.topic() = 'room-' || (auth.jwt() ->> 'team')
                      and coalesce(payload ->> 'to', auth.uid()::text) = auth.uid()::text);
             create policy team_write on realtime.messages for insert to authenticated
               with check (realtime.topic() = 'room-' || (auth.jwt() ->> 'team'))",
        )
        .await
        .unwrap();
}

/// Stores a message `age_s` seconds old, as `realtime.send` would.
async fn store(env: &Env, topic: &str, event: &str, payload: Value, private: bool, age_s: i32) {
    env.sql
        .execute(
            "insert into realtime.messages (topic, extension, event, payload, private, inserted_at)
             values ($1, 'broadcast', $2, $3::text::jsonb, $4, now() - make_interval(secs => $5))",
            &[
                &topic,
                &event,
                &payload.to_string(),
                &private,
                &(age_s as f64),
            ],
        )
        .await
        .unwrap();
}

fn token(sub: &str, team: &str) -> String {
    craftbase_shared::keys::sign(
        SECRET,
        &json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "team": team,
                "exp": now() + 600}),
    )
    .unwrap()
}

fn join(token: &str, private: bool, replay: Value) -> Value {
    json!({"config": {"private": private, "broadcast": {"self": true, "replay": replay}},
           "access_token": token})
}

#[tokio::test]
async fn a_join_replays_what_the_user_may_read_oldest_first_then_live() {
    let env = env().await;
    policies(&env).await;
    let (a, b) = (env.user().await, env.user().await);
    store(&env, "room-red", "old", json!({"n": 0}), true, 7200).await;
    store(&env, "room-red", "msg", json!({"n": 1}), true, 30).await;
    store(&env, "room-red", "msg", json!({"n": 2, "to": a}), true, 20).await;
    store(&env, "room-red", "msg", json!({"n": 3, "to": b}), true, 15).await;
    store(&env, "room-red", "msg", json!({"n": 4}), false, 12).await;
    store(&env, "room-blue", "msg", json!({"n": 5}), true, 11).await;
    store(&env, "room-red", "msg", json!({"n": 6}), true, 10).await;
    env.sql
        .execute(
            "insert into realtime.messages (topic, extension, event, payload, private)
             values ('room-red', 'presence', 'msg', '{\"n\": 7}', true)",
            &[],
        )
        .await
        .unwrap();
    let since = (now() - 3600) * 1000;

    let (mut s, mut rx) = env.session();
    let ta = token(&a, "red");
    s.handle(msg(
        Some("1"),
        "1",
        "realtime:room-red",
        "phx_join",
        join(&ta, true, json!({"since": since, "limit": 10})),
    ))
    .await;
    let got = drain(&mut rx, 300).await;
    assert_eq!(got[0].event, "phx_reply");
    assert_eq!(got[0].payload["status"], "ok", "{:?}", got[0].payload);
    let replayed: Vec<&Value> = got[1..].iter().map(|m| &m.payload).collect();
    let ns: Vec<i64> = replayed
        .iter()
        .map(|p| p["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ns,
        [1, 2, 6],
        "only this user's private broadcasts of the topic since `since`"
    );
    for (m, p) in got[1..].iter().zip(&replayed) {
        assert_eq!(m.event, "broadcast");
        assert_eq!(m.join_ref, None);
        assert_eq!(p["type"], "broadcast");
        assert_eq!(p["event"], "msg");
        assert_eq!(p["meta"]["replayed"], true);
        assert_eq!(p["meta"]["id"].as_str().unwrap().len(), 36);
    }

    // Live broadcasts follow, without replay meta.
    s.handle(msg(
        Some("1"),
        "2",
        "realtime:room-red",
        "broadcast",
        json!({"type": "broadcast", "event": "live", "payload": {"n": 8}}),
    ))
    .await;
    let live = next_where(&mut rx, |m| m.event == "broadcast")
        .await
        .unwrap();
    assert_eq!(live.payload["payload"]["n"], 8);
    assert!(live.payload.get("meta").is_none());

    // The limit keeps the newest, still sent oldest first.
    let (mut s2, mut rx2) = env.session();
    s2.handle(msg(
        Some("1"),
        "1",
        "realtime:room-red",
        "phx_join",
        join(&ta, true, json!({"since": since, "limit": 2})),
    ))
    .await;
    let got = drain(&mut rx2, 300).await;
    let ns: Vec<i64> = got[1..]
        .iter()
        .map(|m| m.payload["payload"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, [2, 6]);
}

#[tokio::test]
async fn replay_is_refused_on_public_channels_bad_params_and_unreadable_topics() {
    let env = env().await;
    policies(&env).await;
    let a = env.user().await;
    let ta = token(&a, "red");
    let reason = |replay: Value, private: bool, topic: &str| {
        let (mut s, mut rx) = env.session();
        let topic = format!("realtime:{topic}");
        let ta = ta.clone();
        async move {
            s.handle(msg(
                Some("1"),
                "1",
                &topic,
                "phx_join",
                join(&ta, private, replay),
            ))
            .await;
            let reply = rx.recv().await.unwrap();
            assert_eq!(reply.payload["status"], "error");
            reply.payload["response"]["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(
        reason(json!({"since": 0}), false, "room-red").await,
        "UnableToReplayMessages: Replay is not allowed for public channels"
    );
    for bad in [
        json!({}),
        json!({"since": "0"}),
        json!({"since": 0, "limit": "x"}),
    ] {
        assert_eq!(
            reason(bad, true, "room-red").await,
            "UnableToReplayMessages: Replay params are not valid"
        );
    }
    assert_eq!(
        reason(json!({"since": 0}), true, "room-blue").await,
        "Unauthorized: You do not have permissions to read from this Channel topic: room-blue"
    );
}
