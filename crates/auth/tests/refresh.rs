//! Refresh-token rotation and reuse detection (§2.5).

use crate::support::App;

#[tokio::test]
async fn refresh_rotates_and_a_retry_gets_the_same_child() {
    let app = App::new(&[]).await;
    let session = app.sign_up("rotate@example.com").await;
    let t0 = session["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(t0.len(), 12);
    assert!(t0.chars().all(|c| c.is_ascii_alphanumeric()));

    let first = app.refresh(&t0).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let t1 = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(t0, t1);
    assert_eq!(first.body["user"]["email"], "rotate@example.com");

    // The same token again (a retry): the session's active token is its direct child.
    let again = app.refresh(&t0).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["refresh_token"], t1.as_str());

    // One live token per session.
    let live = app
        .count("select count(*) from auth.refresh_tokens where revoked = false")
        .await;
    assert_eq!(live, 1);
    let parent: String = app
        .db
        .superuser()
        .await
        .query_one(
            "select parent from auth.refresh_tokens where token = $1",
            &[&t1],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(parent, t0);
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_all_get_the_same_child() {
    let app = App::new(&[]).await;
    let session = app.sign_up("concurrent@example.com").await;
    let t0 = session["refresh_token"].as_str().unwrap().to_owned();
    let replies = futures_join(&app, &t0, 8).await;
    let children: std::collections::HashSet<String> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{}", r.body);
            r.body["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    assert_eq!(
        app.count("select count(*) from auth.refresh_tokens").await,
        2,
        "one rotation happened"
    );
}

async fn futures_join(app: &App, token: &str, n: usize) -> Vec<crate::support::Reply> {
    let mut set = Vec::new();
    for _ in 0..n {
        set.push(app.refresh(token));
    }
    let mut out = Vec::new();
    // Polled together on one task: the requests interleave at every await.
    let joined = join_all(set).await;
    out.extend(joined);
    out
}

async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn reuse_after_the_interval_revokes_the_whole_session() {
    let app = App::new(&["--refresh-token-reuse-interval", "0"]).await;
    let session = app.sign_up("reuse@example.com").await;
    let t0 = session["refresh_token"].as_str().unwrap().to_owned();
    let t1 = app.refresh(&t0).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let t2 = app.refresh(&t1).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // t0 is neither the parent of the active token nor within the interval: a stolen token.
    let reused = app.refresh(&t0).await;
    assert_eq!(reused.status, 400);
    assert_eq!(reused.body["error_code"], "refresh_token_already_used");
    assert_eq!(reused.body["msg"], "Invalid Refresh Token: Already Used");
    assert_eq!(
        app.count("select count(*) from auth.refresh_tokens where revoked = false")
            .await,
        0
    );
    // The legitimate holder's token is dead too.
    let after = app.refresh(&t2).await;
    assert_eq!(after.status, 400);
    assert_eq!(after.body["error_code"], "refresh_token_already_used");
}

#[tokio::test]
async fn within_the_interval_an_older_token_rotates_again() {
    let app = App::new(&["--refresh-token-reuse-interval", "60"]).await;
    let session = app.sign_up("grace@example.com").await;
    let t0 = session["refresh_token"].as_str().unwrap().to_owned();
    let t1 = app.refresh(&t0).await.body["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let _t2 = app.refresh(&t1).await;
    let late = app.refresh(&t0).await;
    assert_eq!(late.status, 200, "{}", late.body);
    assert_eq!(
        app.count("select count(*) from auth.refresh_tokens where revoked = false")
            .await,
        1
    );
}

#[tokio::test]
async fn refresh_errors_have_their_codes() {
    let app = App::new(&[]).await;
    let unknown = app.refresh("abcdefghijkl").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.body["error_code"], "refresh_token_not_found");

    let empty = app.refresh("").await;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.body["error"], "invalid_request");
    assert_eq!(empty.body["error_description"], "refresh_token required");

    // After a global sign-out the session and its tokens are gone.
    let session = app.sign_up("gone@example.com").await;
    let access = session["access_token"].as_str().unwrap();
    let out = app.raw("POST", "/logout", Some(access), None).await;
    assert_eq!(out.status, 204);
    let r = app
        .refresh(session["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.body["error_code"], "refresh_token_not_found");
    let user = app.raw("GET", "/user", Some(access), None).await;
    assert_eq!(user.status, 403);
    assert_eq!(user.body["error_code"], "session_not_found");
}

#[tokio::test]
async fn sessions_past_their_timebox_or_idle_too_long_are_expired() {
    let app = App::new(&[
        "--sessions-timebox",
        "3600",
        "--sessions-inactivity-timeout",
        "600",
    ])
    .await;
    let fresh = app.sign_up("timebox@example.com").await;
    let r = app.refresh(fresh["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let db = app.db.superuser().await;
    let old = app.sign_up("old@example.com").await;
    db.execute(
        "update auth.sessions set created_at = now() - interval '2 hours', \
           refreshed_at = (now() - interval '1 minute') at time zone 'utc' \
         where user_id = (select id from auth.users where email = 'old@example.com')",
        &[],
    )
    .await
    .unwrap();
    let r = app.refresh(old["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_code"], "session_expired");

    let idle = app.sign_up("idle@example.com").await;
    db.execute(
        "update auth.sessions set created_at = now() - interval '30 minutes' \
         where user_id = (select id from auth.users where email = 'idle@example.com')",
        &[],
    )
    .await
    .unwrap();
    let r = app.refresh(idle["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.body["error_code"], "session_expired");
}
