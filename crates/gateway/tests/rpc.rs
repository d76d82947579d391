//! RPC: POST and GET, named arguments, scalar, set-returning, void, filters on results.

use crate::support::{service_token, user_token, Api, ALICE};

async fn with_functions() -> Api {
    let api = Api::new().await;
    api.sql(
        "create function public.add(a int, b int default 1) returns int language sql immutable as $$ select a + b $$;
         create function public.active_slugs(prefix text) returns setof public.connectors language sql stable as
           $$ select * from public.connectors where slug like prefix || '%' $$;
         create function public.whoami() returns text language sql stable as $$ select auth.uid()::text $$;
         create function public.nothing() returns void language sql as $$ select $$;
         create function public.tags(n int) returns setof int language sql as $$ select generate_series(1, n) $$;
         create function public.echo(jsonb) returns jsonb language sql as $$ select $1 $$;
         create function public.fail() returns int language plpgsql as $$ begin raise sqlstate 'PT402' using message = 'pay'; end $$;
         notify pgrst, 'reload schema';",
    )
    .await;
    for _ in 0..50 {
        if api
            .call("POST", "/rpc/add", None, &[], Some(r#"{"a":1}"#))
            .await
            .status
            == 200
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    api
}

#[tokio::test]
async fn calls_by_post_and_get() {
    let api = with_functions().await;
    let r = api
        .call("POST", "/rpc/add", None, &[], Some(r#"{"a":2,"b":3}"#))
        .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "5"));
    let r = api.get("/rpc/add?a=2", None).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "3"));
    let r = api
        .get(
            "/rpc/active_slugs?prefix=google&select=slug&order=slug.desc",
            None,
        )
        .await;
    assert_eq!(
        r.json(),
        serde_json::json!([{"slug":"google-gmail"},{"slug":"google-drive"}])
    );
    let r = api
        .get(
            "/rpc/active_slugs?prefix=g&slug=neq.github&select=slug",
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = api
        .call(
            "POST",
            "/rpc/whoami",
            Some(&user_token(ALICE)),
            &[],
            Some("{}"),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(ALICE));
    let r = api.call("POST", "/rpc/nothing", None, &[], None).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (204, ""));
    let r = api
        .call("POST", "/rpc/tags", None, &[], Some(r#"{"n":3}"#))
        .await;
    assert_eq!(r.json(), serde_json::json!([1, 2, 3]));
    let r = api
        .call("POST", "/rpc/echo", None, &[], Some(r#"{"x":[1]}"#))
        .await;
    assert_eq!(r.json(), serde_json::json!({"x":[1]}));
    let r = api.call("POST", "/rpc/fail", None, &[], Some("{}")).await;
    assert_eq!(r.status, 402);
    let r = api
        .call("POST", "/rpc/add", None, &[], Some(r#"{"zzz":1}"#))
        .await;
    assert_eq!(r.error(), (404, "PGRST202".into()));
    assert_eq!(
        r.json()["message"],
        "Could not find the function public.add(zzz) in the schema cache"
    );
    let r = api
        .call("POST", "/rpc/missing", None, &[], Some("{}"))
        .await;
    assert_eq!(r.json()["code"], "PGRST202");
    assert_eq!(
        r.json()["message"],
        "Could not find the function public.missing without parameters in the schema cache"
    );
    assert!(r.json()["details"]
        .as_str()
        .unwrap()
        .starts_with("Searched for the function public.missing without parameters"));
    let r = api.call("PATCH", "/rpc/add", None, &[], Some("{}")).await;
    assert_eq!(r.error(), (405, "PGRST101".into()));
    // A volatile function by GET runs read-only.
    api.sql("create function public.bump() returns int language sql as $$ insert into public.connectors (name, slug) values ('x', 'x') returning 1 $$; notify pgrst, 'reload schema';").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let r = api
        .call("GET", "/rpc/bump", Some(&service_token()), &[], None)
        .await;
    assert_eq!(r.error(), (405, "25006".into()));
}

#[tokio::test]
async fn overloads_are_chosen_by_argument_names() {
    let api = Api::new().await;
    api.sql(
        "create function public.ov(a int) returns text language sql as $$ select 'a' $$;
         create function public.ov(a int, b int) returns text language sql as $$ select 'ab' $$;
         create function public.amb(x int) returns int language sql as $$ select 1 $$;
         create function public.amb(x text) returns int language sql as $$ select 2 $$;",
    )
    .await;
    for _ in 0..100 {
        if api.get("/rpc/ov?a=1", None).await.status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        api.get("/rpc/ov?a=1", None).await.json(),
        serde_json::json!("a")
    );
    assert_eq!(
        api.get("/rpc/ov?a=1&b=2", None).await.json(),
        serde_json::json!("ab")
    );
    let r = api
        .call("POST", "/rpc/amb", None, &[], Some(r#"{"x":1}"#))
        .await;
    assert_eq!(r.error(), (300, "PGRST203".into()));
}
