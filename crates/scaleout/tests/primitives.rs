//! The cluster primitives against a real nats-server (JetStream), with several nodes connected
//! to it as several craftbase processes would be.

use std::time::Duration;

use craftbase_scaleout::{Leadership, MemberChange, NatsSettings, Node};
use craftbase_testkit::NatsServer;

async fn node(nats: &NatsServer, id: &str) -> Node {
    let settings = NatsSettings {
        nats_url: vec![nats.url()],
        node_id: Some(id.into()),
    };
    Node::from_settings(&settings)
        .await
        .expect("connect to NATS")
        .expect("cluster mode is on")
}

#[tokio::test]
async fn no_url_means_no_cluster() {
    let node = Node::from_settings(&NatsSettings::default()).await.unwrap();
    assert!(node.is_none());
}

#[tokio::test]
async fn an_unreachable_server_fails_start_up_without_its_password() {
    let port = craftbase_testkit::free_port();
    let settings = NatsSettings {
        nats_url: vec![format!("nats://admin:hunter2@127.0.0.1:{port}")],
        node_id: None,
    };
    let err = match Node::from_settings(&settings).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test]
async fn counters_count_every_hit_of_every_node() {
    let nats = NatsServer::start();
    let nodes = [
        node(&nats, "a").await,
        node(&nats, "b").await,
        node(&nats, "c").await,
    ];
    let window = Duration::from_secs(60);
    let mut counters = Vec::new();
    for n in &nodes {
        counters.push(n.counters(window).await.unwrap());
    }
    // 3 nodes x 20 concurrent hits on one key: every hit counted once, each total seen once.
    let mut tasks = Vec::new();
    for c in &counters {
        for _ in 0..20 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.add("tenant-1.events", 1, window).await.unwrap().hits
            }));
        }
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=60).collect::<Vec<u64>>());
    // A limit of 60 now refuses on any node; another key is untouched.
    let next = counters[1].add("tenant-1.events", 1, window).await.unwrap();
    assert_eq!(next.hits, 61);
    assert!(!next.within(60));
    assert!(next.resets_in <= window);
    let other = counters[2].add("tenant-2.events", 5, window).await.unwrap();
    assert_eq!(other.hits, 5);
}

#[tokio::test]
async fn counters_restart_with_each_window_and_refuse_bad_keys() {
    let nats = NatsServer::start();
    let counters = node(&nats, "a")
        .await
        .counters(Duration::from_secs(2))
        .await
        .unwrap();
    let window = Duration::from_secs(1);
    let first = counters.add("k", 1, window).await.unwrap();
    tokio::time::sleep(first.resets_in + Duration::from_millis(20)).await;
    assert_eq!(counters.add("k", 1, window).await.unwrap().hits, 1);
    assert!(counters.add("a b", 1, window).await.is_err());
    assert!(counters.add("a.*", 1, window).await.is_err());
    assert!(counters.add("k", 1, Duration::from_secs(5)).await.is_err());
}

#[tokio::test]
async fn a_lease_has_one_holder_and_a_later_holder_a_larger_token() {
    let nats = NatsServer::start();
    let ttl = Duration::from_secs(2);
    let a = node(&nats, "a")
        .await
        .lease("realtime_slot", ttl)
        .await
        .unwrap();
    let b = node(&nats, "b")
        .await
        .lease("realtime_slot", ttl)
        .await
        .unwrap();
    let mut term_a = a
        .try_acquire()
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(
        b.try_acquire().await.unwrap(),
        None,
        "a held lease is not taken"
    );
    assert!(a.renew(&mut term_a).await.unwrap());
    assert_eq!(b.holder().await.unwrap().unwrap().node, "a");
    // a stops renewing (it died): after the ttl b takes over, with a larger token, and a's
    // late renewal fails.
    tokio::time::sleep(ttl + Duration::from_millis(1500)).await;
    let term_b = b
        .try_acquire()
        .await
        .unwrap()
        .expect("an expired lease is taken");
    assert!(term_b.token > term_a.token);
    assert!(
        !a.renew(&mut term_a).await.unwrap(),
        "a stale holder cannot renew"
    );
    // Released, it is free at once.
    b.release(term_b).await.unwrap();
    let term_a2 = a
        .try_acquire()
        .await
        .unwrap()
        .expect("a released lease is taken");
    assert!(term_a2.token > term_b.token);
}

#[tokio::test]
async fn leadership_fails_over_when_the_leader_dies_and_on_resign() {
    let nats = NatsServer::start();
    let ttl = Duration::from_secs(2);
    let mut leaders = Vec::new();
    for id in ["a", "b", "c"] {
        let lease = node(&nats, id).await.lease("decoder", ttl).await.unwrap();
        leaders.push(Leadership::spawn(lease));
    }
    let leading = wait_for_one_leader(&leaders).await;
    let token = leaders[leading].token().unwrap();
    // The leader dies (its task stops, nothing is released): another takes over within the
    // ttl and a bit, with a larger token, and never two at once.
    drop(leaders.remove(leading));
    let next = wait_for_one_leader(&leaders).await;
    let next_token = leaders[next].token().unwrap();
    assert!(next_token > token);
    // A clean resign hands over without waiting for the ttl.
    let resigned = leaders.remove(next);
    let started = tokio::time::Instant::now();
    resigned.resign().await;
    wait_for_one_leader(&leaders).await;
    assert!(started.elapsed() < ttl, "took {:?}", started.elapsed());
    assert!(leaders[0].token().unwrap() > next_token);
}

#[tokio::test]
async fn a_leader_cut_off_from_nats_steps_down_before_its_lease_expires() {
    let mut nats = NatsServer::start();
    let ttl = Duration::from_secs(3);
    let lease = node(&nats, "a").await.lease("decoder", ttl).await.unwrap();
    let leader = Leadership::spawn(lease);
    let mut watch = leader.watch();
    tokio::time::timeout(Duration::from_secs(5), watch.wait_for(|t| t.is_some()))
        .await
        .expect("became leader")
        .unwrap();
    nats.kill();
    let killed = tokio::time::Instant::now();
    tokio::time::timeout(ttl, watch.wait_for(|t| t.is_none()))
        .await
        .expect("stepped down within the ttl")
        .unwrap();
    assert!(killed.elapsed() < ttl);
    nats.restart();
}

/// Waits until exactly one of `leaders` leads (checking that two never do); its index.
async fn wait_for_one_leader(leaders: &[Leadership]) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let leading: Vec<usize> = (0..leaders.len())
            .filter(|&i| leaders[i].token().is_some())
            .collect();
        assert!(leading.len() <= 1, "two leaders at once: {leading:?}");
        if let [one] = leading[..] {
            return one;
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn members_join_leave_and_drop_out_when_they_die() {
    let nats = NatsServer::start();
    let ttl = Duration::from_secs(2);
    let a = node(&nats, "a").await.membership(ttl).await.unwrap();
    let b = node(&nats, "b").await.membership(ttl).await.unwrap();
    let c = node(&nats, "c").await.membership(ttl).await.unwrap();
    let _beat_a = a.join("http://10.0.0.1:54321").await.unwrap();
    let beat_b = b.join("http://10.0.0.2:54321").await.unwrap();
    let beat_c = c.join("http://10.0.0.3:54321").await.unwrap();
    let mut changes = a.changes(Duration::from_millis(200));
    let mut joined = Vec::new();
    for _ in 0..3 {
        joined.push(changes.recv().await.unwrap());
    }
    joined.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        joined,
        ["a", "b", "c"].map(|n| MemberChange::Joined(n.into()))
    );
    assert_eq!(
        a.info("b").await.unwrap().as_deref(),
        Some("http://10.0.0.2:54321")
    );
    // b leaves cleanly: seen at the next listing.
    beat_b.leave().await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(1), changes.recv()).await;
    assert_eq!(change.unwrap().unwrap(), MemberChange::Left("b".into()));
    // c dies: its heartbeats stop and it drops out within the ttl (plus NATS's expiry tick).
    drop(beat_c);
    let died = tokio::time::Instant::now();
    let change = tokio::time::timeout(ttl * 3, changes.recv()).await;
    assert_eq!(change.unwrap().unwrap(), MemberChange::Left("c".into()));
    assert!(
        died.elapsed() >= ttl / 3,
        "c left before its key could expire"
    );
    // a, still beating, stays.
    tokio::time::sleep(ttl).await;
    assert_eq!(
        a.members().await.unwrap().into_iter().collect::<Vec<_>>(),
        ["a"]
    );
}

#[tokio::test]
async fn lease_tokens_keep_growing_across_a_nats_restart() {
    let mut nats = NatsServer::start();
    let ttl = Duration::from_secs(2);
    let lease = node(&nats, "a").await.lease("decoder", ttl).await.unwrap();
    let first = lease.try_acquire().await.unwrap().unwrap();
    lease.release(first).await.unwrap();
    // NATS crashes and comes back on the same store; the client reconnects by itself.
    nats.kill();
    nats.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let second = loop {
        match lease.try_acquire().await {
            Ok(Some(term)) => break term,
            Ok(None) => panic!("a released lease is held after the restart"),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("NATS did not come back: {e}"),
        }
    };
    assert!(second.token > first.token, "{second:?} after {first:?}");
}
