//! Writes under RLS: insert, bulk insert, upsert both ways, update, delete, PUT, bad bodies.

use crate::support::{service_token, user_token, Api, ALICE, BOB};
use craftbase_gateway::config::TxEnd;
use craftbase_gateway::GatewayConfig;

const GITHUB: &str = "1755f4f1-8698-5730-b75e-b8a7aafeaedc";
const SLACK: &str = "26f78c32-a397-5060-8605-19f32502725e";

fn rep() -> [(&'static str, &'static str); 1] {
    [("prefer", "return=representation")]
}

#[tokio::test]
async fn the_apps_writes_for_two_users() {
    let api = Api::new().await;
    let (alice, bob) = (user_token(ALICE), user_token(BOB));
    // connect: upsert on (user_id, connector_id), twice.
    for (status, code) in [("active", 201), ("expired", 200)] {
        let body = format!(
            r#"{{"user_id":"{ALICE}","connector_id":"{GITHUB}","status":"{status}","scopes":["repo"]}}"#
        );
        let r = api
            .call(
                "POST",
                "/user_connections?on_conflict=user_id,connector_id",
                Some(&alice),
                &[("prefer", "resolution=merge-duplicates")],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, code, "{}", r.body);
        assert!(r.body.is_empty());
    }
    let r = api
        .get("/user_connections?select=status,scopes", Some(&alice))
        .await;
    assert_eq!(
        r.json(),
        serde_json::json!([{"status": "expired", "scopes": ["repo"]}])
    );
    // Bob sees nothing of Alice's and cannot insert as her.
    assert_eq!(
        api.get("/user_connections", Some(&bob)).await.json(),
        serde_json::json!([])
    );
    let body = format!(r#"{{"user_id":"{ALICE}","connector_id":"{SLACK}"}}"#);
    let r = api
        .call("POST", "/user_connections", Some(&bob), &[], Some(&body))
        .await;
    assert_eq!(r.error(), (403, "42501".into()));
    // run a tool: insert a job and read it back as one object.
    let body = format!(
        r#"[{{"user_id":"{ALICE}","connector_id":"{GITHUB}","type":"tool_execution","status":"queued","input":{{"q":1}}}}]"#
    );
    let r = api
        .call("POST", "/pipeline_jobs?columns=%22user_id%22,%22connector_id%22,%22type%22,%22status%22,%22input%22&select=*", Some(&alice),
            &[("prefer", "return=representation"), ("accept", "application/vnd.pgrst.object+json")], Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let job = r.json();
    assert_eq!(job["input"]["q"], 1);
    let id = job["id"].as_str().unwrap().to_owned();
    let r = api
        .call(
            "POST",
            "/pipeline_events",
            Some(&alice),
            &[],
            Some(&format!(r#"{{"job_id":"{id}","message":"Starting"}}"#)),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // Bob's update of Alice's job changes nothing; Alice's does.
    let r = api
        .call(
            "PATCH",
            &format!("/pipeline_jobs?id=eq.{id}"),
            Some(&bob),
            &rep(),
            Some(r#"{"status":"failed"}"#),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "[]"));
    let r = api
        .call(
            "PATCH",
            &format!("/pipeline_jobs?id=eq.{id}"),
            Some(&alice),
            &[],
            Some(r#"{"status":"running","started_at":"2024-01-01T00:00:00Z"}"#),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api
        .get(
            &format!("/pipeline_jobs?id=eq.{id}&select=status"),
            Some(&alice),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!([{"status": "running"}]));
    let r = api
        .get(
            &format!("/pipeline_events?job_id=eq.{id}&order=ts.asc"),
            Some(&bob),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!([]));
    // The service role sees everything.
    let r = api
        .get("/pipeline_jobs?select=id", Some(&service_token()))
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    // disconnect / delete.
    let r = api
        .call(
            "DELETE",
            &format!("/user_connections?connector_id=eq.{GITHUB}"),
            Some(&bob),
            &rep(),
            None,
        )
        .await;
    assert_eq!(r.body, "[]");
    let r = api
        .call(
            "DELETE",
            &format!("/user_connections?connector_id=eq.{GITHUB}"),
            Some(&alice),
            &rep(),
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bulk_insert_upsert_ignore_missing_default_and_put() {
    let api = Api::with_config(GatewayConfig {
        // `Prefer: tx=rollback` is honoured only when the setting allows it, as in PostgREST.
        tx_end: TxEnd::CommitAllowOverride,
        ..GatewayConfig::default()
    })
    .await;
    let svc = service_token();
    api.sql("create table public.items (id int primary key, name text not null, qty int default 7); grant all on public.items to anon, authenticated, service_role; notify pgrst, 'reload schema';").await;
    // Wait for the reload.
    for _ in 0..50 {
        if api.get("/items", Some(&svc)).await.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let r = api
        .call(
            "POST",
            "/items?columns=%22id%22,%22name%22,%22qty%22",
            Some(&svc),
            &[("prefer", "return=representation, missing=default")],
            Some(r#"[{"id":1,"name":"a"},{"id":2,"name":"b","qty":1}]"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.get("/items?select=id,qty&order=id", Some(&svc)).await;
    assert_eq!(
        r.json(),
        serde_json::json!([{"id":1,"qty":7},{"id":2,"qty":1}])
    );
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[(
                "prefer",
                "resolution=ignore-duplicates, return=representation",
            )],
            Some(r#"[{"id":1,"name":"z"},{"id":3,"name":"c"}]"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[(
                "prefer",
                "resolution=merge-duplicates, return=representation",
            )],
            Some(r#"{"id":1,"name":"z"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["name"], "z");
    let r = api
        .call(
            "PUT",
            "/items?id=eq.9",
            Some(&svc),
            &rep(),
            Some(r#"{"id":9,"name":"p"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api
        .call(
            "PUT",
            "/items?id=eq.9",
            Some(&svc),
            &[],
            Some(r#"{"id":8,"name":"p"}"#),
        )
        .await;
    assert_eq!(r.json()["code"], "PGRST115");
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[],
            Some(r#"{"id":1,"name":"dup"}"#),
        )
        .await;
    assert_eq!(r.error(), (409, "23505".into()));
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[],
            Some(r#"{"id":1,"nope":"x"}"#),
        )
        .await;
    assert_eq!(r.error(), (400, "PGRST204".into()));
    for bad in ["{", "", "3", "[1]", "{\"id\": }"] {
        let r = api.call("POST", "/items", Some(&svc), &[], Some(bad)).await;
        assert_eq!(
            (r.status.as_u16(), r.json()["code"].as_str()),
            (400, Some("PGRST102")),
            "{bad}"
        );
    }
    // All or nothing: a bulk insert with one bad row writes nothing.
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[],
            Some(r#"[{"id":50,"name":"ok"},{"id":51}]"#),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        api.get("/items?id=eq.50", Some(&svc)).await.json(),
        serde_json::json!([])
    );
    // tx=rollback answers but keeps nothing.
    let r = api
        .call(
            "POST",
            "/items",
            Some(&svc),
            &[("prefer", "tx=rollback")],
            Some(r#"{"id":60,"name":"r"}"#),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(
        api.get("/items?id=eq.60", Some(&svc)).await.json(),
        serde_json::json!([])
    );
    // A body over the limit.
    let big = format!(r#"{{"id":70,"name":"{}"}}"#, "x".repeat(11 * 1024 * 1024));
    let r = api
        .call("POST", "/items", Some(&svc), &[], Some(&big))
        .await;
    assert_eq!(r.status, 413);
    let r = api
        .call(
            "DELETE",
            "/items?id=gte.2",
            Some(&svc),
            &[("prefer", "count=exact")],
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.header("content-range")), (204, "*/3"));
}

#[tokio::test]
async fn max_affected_and_rollback_of_updates() {
    let api = Api::with_config(GatewayConfig {
        // `Prefer: tx=rollback` is honoured only when the setting allows it, as in PostgREST.
        tx_end: TxEnd::CommitAllowOverride,
        ..GatewayConfig::default()
    })
    .await;
    let svc = service_token();
    let strict = [("prefer", "handling=strict, max-affected=2")];
    let r = api
        .call(
            "PATCH",
            "/connectors?slug=like.google*",
            Some(&svc),
            &strict,
            Some(r#"{"category":"G"}"#),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = api
        .call(
            "PATCH",
            "/connectors?is_active=is.true",
            Some(&svc),
            &strict,
            Some(r#"{"category":"X"}"#),
        )
        .await;
    assert_eq!(r.error(), (400, "PGRST124".into()));
    let r = api.get("/connectors?category=eq.X", None).await;
    assert_eq!(r.json(), serde_json::json!([]));
    let r = api
        .call(
            "DELETE",
            "/connectors?slug=eq.github",
            Some(&svc),
            &[("prefer", "tx=rollback, return=representation")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(
        api.get("/connectors?slug=eq.github", None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // A singular PATCH that would touch several rows answers 406 and changes nothing.
    let r = api
        .call(
            "PATCH",
            "/connectors?is_active=is.true",
            Some(&svc),
            &[
                ("accept", "application/vnd.pgrst.object+json"),
                ("prefer", "return=representation"),
            ],
            Some(r#"{"category":"Y"}"#),
        )
        .await;
    assert_eq!(r.error(), (406, "PGRST116".into()));
    assert_eq!(
        api.get("/connectors?category=eq.Y", None).await.json(),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn content_types_and_strict_preferences() {
    let api = Api::new().await;
    let svc = service_token();
    let r = api
        .call(
            "POST",
            "/connectors",
            Some(&svc),
            &[("content-type", "text/plain")],
            None,
        )
        .await;
    assert_eq!(r.error(), (415, "PGRST107".into()));
    let r = api
        .call(
            "PATCH",
            "/connectors?slug=eq.github",
            Some(&svc),
            &[("prefer", "handling=strict, bogus=1")],
            Some(r#"{"name":"x"}"#),
        )
        .await;
    assert_eq!(r.error(), (400, "PGRST122".into()));
    let r = api
        .call(
            "PATCH",
            "/connectors?slug=eq.github",
            Some(&svc),
            &[("prefer", "bogus=1")],
            Some(r#"{"description":"x"}"#),
        )
        .await;
    assert_eq!(r.status, 204);
}
