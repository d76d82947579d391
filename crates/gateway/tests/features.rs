//! Less common PostgREST features: spread embeds, the Range header, errors raised from SQL,
//! response GUCs, the pre-request hook, audience checks, DDL reloads and the OpenAPI root.

use craftbase_gateway::GatewayConfig;

use crate::support::{now, service_token, user_token, Api, ALICE, SECRET};

#[tokio::test]
async fn spread_embeds_hoist_columns() {
    let api = Api::new().await;
    let r = api
        .get("/connector_tools?select=name,...connectors(connector:slug)&connector_id=eq.1755f4f1-8698-5730-b75e-b8a7aafeaedc&limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[0]["connector"], "github");
    let r = api
        .get(
            "/connectors?select=slug,...connector_tools(tool:name)&slug=eq.github",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["tool"].is_array());
}

#[tokio::test]
async fn range_header_pages_a_read() {
    let api = Api::new().await;
    let r = api
        .call(
            "GET",
            "/connectors?select=slug&order=slug",
            None,
            &[("range", "1-2"), ("prefer", "count=exact")],
            None,
        )
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), "1-2/8");
    assert_eq!(r.json()[0]["slug"], "custom-mcp");
}

#[tokio::test]
async fn sql_chooses_errors_statuses_and_headers() {
    let api = Api::new().await;
    api.sql(
        r#"create function public.pay() returns int language plpgsql as $$ begin
             raise sqlstate 'PGRST' using message = '{"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade"}',
               detail = '{"status":402,"headers":{"X-Powered-By":"Nerd Rage"}}';
           end $$;
           create function public.bad_raise() returns int language plpgsql as $$ begin
             raise sqlstate 'PGRST' using message = 'not json';
           end $$;
           create function public.teapot() returns int language plpgsql as $$ begin
             perform set_config('response.status', '418', true);
             perform set_config('response.headers', '[{"X-Tea":"earl grey"}]', true);
             return 1;
           end $$;"#,
    )
    .await;
    api.wait_for("/rpc/teapot", None).await;
    let r = api.call("POST", "/rpc/pay", None, &[], Some("{}")).await;
    assert_eq!(r.status, 402);
    assert_eq!(r.header("x-powered-by"), "Nerd Rage");
    assert_eq!(
        r.json(),
        serde_json::json!({"code":"123","message":"Payment Required","details":"Quota exceeded","hint":"Upgrade"})
    );
    let r = api
        .call("POST", "/rpc/bad_raise", None, &[], Some("{}"))
        .await;
    assert_eq!(r.error(), (500, "PGRST121".into()));
    let r = api.call("POST", "/rpc/teapot", None, &[], Some("{}")).await;
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-tea"), "earl grey");
}

#[tokio::test]
async fn pre_request_hook_runs_as_the_request_and_may_refuse_it() {
    let config = GatewayConfig {
        pre_request: Some(craftbase_gateway::config::pre_request_call(
            "public.check_request",
        )),
        ..GatewayConfig::default()
    };
    let api = Api::with_config(config).await;
    api.sql(
        r#"create function public.check_request() returns void language plpgsql as $$ begin
             if current_setting('request.headers', true)::json->>'x-block' = 'yes' then
               raise sqlstate 'PT403' using message = 'blocked';
             end if;
             perform set_config('response.headers', json_build array_placeholder, true);
           end $$;"#
            .replace(
                "json_build array_placeholder",
                "json_build_array(json_build_object('x-role', current_user))::text",
            )
            .as_str(),
    )
    .await;
    api.wait_for("/connectors?limit=1", Some(&user_token(ALICE)))
        .await;
    let r = api
        .get("/connectors?limit=1", Some(&user_token(ALICE)))
        .await;
    assert_eq!(r.header("x-role"), "authenticated");
    let r = api
        .call("GET", "/connectors", None, &[("x-block", "yes")], None)
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["message"].as_str()),
        (403, Some("blocked"))
    );
}

#[tokio::test]
async fn audience_is_checked_when_configured() {
    let config = GatewayConfig {
        jwt_aud: Some("authenticated".into()),
        ..GatewayConfig::default()
    };
    let api = Api::with_config(config).await;
    assert_eq!(
        api.get("/connectors?limit=1", Some(&user_token(ALICE)))
            .await
            .status,
        200
    );
    let wrong = craftbase_shared::keys::sign(
        SECRET,
        &serde_json::json!({"sub": ALICE, "role": "authenticated", "aud": "other", "exp": now() + 60}),
    )
    .unwrap();
    let r = api.get("/connectors?limit=1", Some(&wrong)).await;
    assert_eq!(r.error(), (401, "PGRST303".into()));
}

#[tokio::test]
async fn ddl_reloads_the_schema_cache_and_the_root_describes_it() {
    let api = Api::new().await;
    api.sql("create table public.fresh (id int primary key, label text); grant all on public.fresh to service_role;")
        .await;
    api.wait_for("/fresh", Some(&service_token())).await;
    let r = api.get("/", None).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .starts_with("application/openapi+json"));
    let doc = r.json();
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["paths"]["/fresh"].is_object());
    assert_eq!(
        doc["definitions"]["fresh"]["properties"]["label"]["format"],
        "text"
    );
}

#[tokio::test]
async fn a_thousand_tables_load_quickly() {
    let api = Api::new().await;
    api.sql(
        "do $$ begin for i in 1..1000 loop
           execute format('create table public.bulk_%s (id int primary key, parent int references public.bulk_%s, name text not null, data jsonb)', i, greatest(i - 1, 1));
         end loop; end $$;",
    )
    .await;
    let client = api.db.superuser().await;
    let started = std::time::Instant::now();
    let cache = craftbase_gateway::schema_cache::SchemaCache::load(&client, &["public".to_owned()])
        .await
        .unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "schema cache: {} tables loaded in {elapsed:?}",
        cache.table_count()
    );
    assert!(cache.table("public", "bulk_1000").is_some());
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
    api.wait_for("/bulk_1000", Some(&service_token())).await;
}

#[tokio::test]
async fn a_role_statement_timeout_applies_per_request() {
    let api = Api::new().await;
    let db = api.db.name.clone();
    api.sql(&format!(
        "alter role authenticated in database \"{db}\" set statement_timeout = '200ms';
         create function public.slow() returns int language sql as $$ select 1 from pg_sleep(2) $$;
         notify pgrst, 'reload schema';"
    ))
    .await;
    api.wait_for("/rpc/slow", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let r = api
        .call(
            "POST",
            "/rpc/slow",
            Some(&user_token(ALICE)),
            &[],
            Some("{}"),
        )
        .await;
    assert_eq!(r.error(), (500, "57014".into()));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // anon has no timeout set here.
    let r = api.call("POST", "/rpc/slow", None, &[], Some("{}")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn cached_statements_never_carry_one_role_rls_to_another() {
    let api = Api::new().await;
    api.sql(&format!(
        "insert into public.pipeline_jobs (user_id, connector_id, type)
         select u, (select id from public.connectors limit 1), 'x'
         from (values ('{ALICE}'::uuid), ('{ALICE}'::uuid), ('{}'::uuid)) v(u);",
        crate::support::BOB
    ))
    .await;
    let (alice, bob, svc) = (
        user_token(ALICE),
        user_token(crate::support::BOB),
        service_token(),
    );
    // The same statement shape alternates between roles on a small pool many times.
    for _ in 0..15 {
        for (token, expected) in [
            (Some(&alice), 2),
            (Some(&bob), 1),
            (None, 0),
            (Some(&svc), 3),
        ] {
            let r = api
                .get(
                    "/pipeline_jobs?select=id&type=eq.x",
                    token.map(String::as_str),
                )
                .await;
            assert_eq!(r.json().as_array().unwrap().len(), expected);
        }
    }
}

#[tokio::test]
async fn prefer_timezone_sets_the_transaction_time_zone() {
    let api = Api::new().await;
    let r = api
        .call(
            "GET",
            "/connectors?select=created_at&limit=1",
            None,
            &[("prefer", "timezone=Asia/Kolkata")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()[0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with("+05:30"),
        "{}",
        r.body
    );
    assert!(r
        .header("preference-applied")
        .contains("timezone=Asia/Kolkata"));
    let r = api.get("/connectors?select=created_at&limit=1", None).await;
    assert!(!r.json()[0]["created_at"]
        .as_str()
        .unwrap()
        .ends_with("+05:30"));
}

#[tokio::test]
async fn aggregates_group_by_the_other_columns_when_enabled() {
    let api = Api::new().await;
    let r = api.get("/connectors?select=count()", None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["code"], "PGRST123");

    let api = Api::with_config(GatewayConfig {
        aggregates: true,
        ..GatewayConfig::default()
    })
    .await;
    let r = api.get("/connectors?select=count()", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!([{"count": 8}]));
    // Grouped by the other selected column, with casts before and after, and an alias.
    let r = api
        .get(
            "/connector_tools?select=connector_id,n:count()::text,name.max(),created_at::date.min()&order=connector_id&limit=2",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows[0]["n"].is_string());
    assert!(rows[0]["max"].is_string() && rows[0].get("min").is_some());
    // Inside an embed: per parent; and through a to-one embed, grouped by its key.
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(count())&slug=eq.github",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["connector_tools"][0]["count"].as_i64().unwrap() > 0);
    let r = api
        .get(
            "/connector_tools?select=count(),connectors(slug)&order=connector_id",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let total: i64 = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["count"].as_i64().unwrap())
        .sum();
    let all = api.get("/connector_tools?select=id", None).await;
    assert_eq!(total as usize, all.json().as_array().unwrap().len());
    // An unknown function or column is a clean 400, never SQL.
    let r = api.get("/connectors?select=slug.median()", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "PGRST100");
    let r = api.get("/connectors?select=nope.sum()", None).await;
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test]
async fn plans_are_served_only_when_enabled_and_writes_roll_back() {
    let plan_json =
        r#"application/vnd.pgrst.plan+json; for="application/json"; options=analyze|verbose;"#;
    let api = Api::new().await;
    let r = api
        .call(
            "GET",
            "/connectors?select=slug",
            None,
            &[("accept", plan_json)],
            None,
        )
        .await;
    assert_eq!(r.status, 406, "{}", r.body);
    assert_eq!(r.json()["code"], "PGRST107");

    let api = Api::with_config(GatewayConfig {
        plans: true,
        ..GatewayConfig::default()
    })
    .await;
    let r = api
        .call(
            "GET",
            "/connectors?select=slug&slug=eq.github",
            None,
            &[("accept", plan_json)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("content-type")
        .starts_with("application/vnd.pgrst.plan+json; for=\"application/json\""));
    let plan = r.json();
    assert!(plan[0]["Plan"]["Node Type"].is_string(), "{plan}");
    assert!(plan[0]["Execution Time"].is_number(), "analyze ran: {plan}");

    let r = api
        .call(
            "GET",
            "/connectors",
            None,
            &[("accept", "application/vnd.pgrst.plan")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Scan"), "{}", r.body);

    // An analyzed insert runs, but nothing stays.
    let token = service_token();
    let r = api
        .call(
            "POST",
            "/connectors",
            Some(&token),
            &[("accept", plan_json)],
            Some(r#"{"slug":"planned","name":"Planned","category":"x","auth_type":"none"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.get("/connectors?slug=eq.planned", Some(&token)).await;
    assert_eq!(r.json(), serde_json::json!([]));
}

#[tokio::test]
async fn a_request_dropped_mid_transaction_commits_nothing_and_leaves_no_open_transaction() {
    let api = Api::new().await;
    api.sql(
        "create table public.dropped (n int);
         grant insert, select on public.dropped to anon, authenticated, service_role;
         create function public.slow_write() returns int language plpgsql as $$ begin
           insert into public.dropped values (1);
           perform pg_sleep(3);
           return 1;
         end $$;
         notify pgrst, 'reload schema';",
    )
    .await;
    let token = service_token();
    api.wait_for("/dropped", Some(&token)).await;
    // The client hangs up while the function sleeps: the request's future is dropped.
    let call = api.call("POST", "/rpc/slow_write", Some(&token), &[], Some("{}"));
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), call)
            .await
            .is_err()
    );
    // Its connection is closed (once the statement in flight ends) rather than returned to the
    // pool mid-transaction: PostgreSQL rolls the insert back, and no session stays open.
    let admin = api.db.superuser().await;
    let mut open = 1;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        open = admin
            .query_one(
                "select count(*) from pg_stat_activity where pid <> pg_backend_pid() and usename = 'authenticator' and (state like 'idle in transaction%' or query like '%slow_write%')",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if open == 0 {
            break;
        }
    }
    assert_eq!(open, 0, "a dropped request left a transaction open");
    let rows: i64 = admin
        .query_one("select count(*) from public.dropped", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
    // And the pool goes on serving.
    for _ in 0..5 {
        assert_eq!(api.get("/dropped", Some(&token)).await.status, 200);
    }
}

#[tokio::test]
async fn a_full_pool_answers_pgrst003_in_time_instead_of_hanging() {
    let api = Api::with_config(GatewayConfig {
        pool_timeout: std::time::Duration::from_millis(500),
        ..GatewayConfig::default()
    })
    .await;
    api.sql(
        "create function public.nap() returns int language sql as $$ select 1 from pg_sleep(3) $$;
         notify pgrst, 'reload schema';",
    )
    .await;
    let token = service_token();
    api.wait_for("/rpc/nap?select=nap", Some(&token)).await;
    // The test pool holds four connections: four naps take them all.
    let nap = || api.call("POST", "/rpc/nap", Some(&token), &[], Some("{}"));
    let probe = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let r = api
            .get("/connectors?select=slug&limit=1", Some(&token))
            .await;
        (r, started.elapsed())
    };
    let (a, b, c, d, (r, waited)) = tokio::join!(nap(), nap(), nap(), nap(), probe);
    assert_eq!(r.error(), (504, "PGRST003".into()));
    assert!(waited < std::time::Duration::from_secs(2), "{waited:?}");
    for nap in [a, b, c, d] {
        assert_eq!(nap.status, 200, "{}", nap.body);
    }
}

#[tokio::test]
async fn every_pool_waits_a_bounded_time_for_a_connection() {
    let api = Api::new().await;
    // The default every service gets: `get()` on a full pool fails after WAIT_TIMEOUT.
    let pool = craftbase_shared::pool::build(api.db.config("authenticator"), 1);
    assert_eq!(
        pool.timeouts().wait,
        Some(craftbase_shared::pool::WAIT_TIMEOUT)
    );
    assert!(pool.timeouts().create.is_some() && pool.timeouts().recycle.is_some());
    // A service's own wait: the second `get()` fails in time instead of hanging.
    let pool = craftbase_shared::pool::build_with_wait(
        api.db.config("authenticator"),
        1,
        std::time::Duration::from_millis(200),
    );
    let held = pool.get().await.unwrap();
    let second = tokio::time::timeout(std::time::Duration::from_secs(30), pool.get())
        .await
        .expect("get() on a full pool hung");
    assert!(
        matches!(
            second,
            Err(deadpool_postgres::PoolError::Timeout(
                deadpool_postgres::TimeoutType::Wait
            ))
        ),
        "{second:?}"
    );
    drop(held);
    assert!(pool.get().await.is_ok());
}

#[tokio::test]
async fn a_request_dropped_mid_statement_has_its_statement_cancelled() {
    let api = Api::new().await;
    api.sql(
        "create function public.long_nap() returns int language sql as $$ select 1 from pg_sleep(60) $$;
         notify pgrst, 'reload schema';",
    )
    .await;
    let token = service_token();
    api.wait_for("/rpc/long_nap?select=long_nap", Some(&token))
        .await;
    let admin = api.db.superuser().await;
    let running = || async {
        admin
            .query_one(
                "select count(*) from pg_stat_activity where usename = 'authenticator' and state = 'active' and query like '%long_nap%'",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    // The client hangs up once the nap runs: the request's future is dropped.
    let call = api.call("POST", "/rpc/long_nap", Some(&token), &[], Some("{}"));
    let watch = async {
        for _ in 0..100 {
            if running().await == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the nap never started");
    };
    tokio::select! {
        _ = call => panic!("a 60 s nap answered"),
        () = watch => {}
    }
    // Closing the socket alone leaves the backend sleeping (it notices only when it next
    // writes, past the authenticator's 8 s statement timeout): the statement is cancelled.
    let mut left = 1;
    for _ in 0..50 {
        left = running().await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        left, 0,
        "the statement kept running after its request was dropped"
    );
}

#[tokio::test]
async fn a_tsquery_postgresql_cannot_parse_is_400_with_its_code() {
    let api = Api::new().await;
    for filter in [
        "fts.%26%26%26",
        "fts(english).a%20%26",
        "wfts.ok",
        "plfts.ok",
    ] {
        let r = api
            .get(
                &format!("/connectors?select=slug&description={filter}"),
                None,
            )
            .await;
        if filter.ends_with("ok") {
            assert_eq!(r.status, 200, "{filter}: {}", r.body);
            continue;
        }
        assert_eq!(r.error(), (400, "42601".into()), "{filter}: {}", r.body);
        assert!(
            r.json()["message"].as_str().unwrap().contains("in tsquery"),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn select_lists_past_their_bounds_are_refused_before_any_sql() {
    let api = Api::with_config(GatewayConfig {
        limits: craftbase_gateway::query::Limits {
            max_select_items: 10,
            max_embed_depth: 2,
        },
        ..GatewayConfig::default()
    })
    .await;
    let ten = ["slug"; 10].join(",");
    assert_eq!(
        api.get(&format!("/connectors?select={ten}"), None)
            .await
            .status,
        200
    );
    let r = api.get(&format!("/connectors?select={ten},id"), None).await;
    assert_eq!(r.error(), (400, "PGRST100".into()));
    assert!(
        r.json()["details"]
            .as_str()
            .unwrap()
            .contains("more than 10 items"),
        "{}",
        r.body
    );
    // Embeds count too.
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(name,connectors(slug,connector_tools(name)))",
            None,
        )
        .await;
    assert_eq!(r.error(), (400, "PGRST100".into()));
    assert!(
        r.json()["details"]
            .as_str()
            .unwrap()
            .contains("nested more than 2 levels"),
        "{}",
        r.body
    );
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(name,connectors(slug))",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The default bound refuses PostgreSQL's 54011 (1,664 result columns) before any SQL.
    let api = Api::new().await;
    let many = ["slug"; 1700].join(",");
    let r = api.get(&format!("/connectors?select={many}"), None).await;
    assert_eq!(r.error(), (400, "PGRST100".into()), "{}", r.body);
}

#[tokio::test]
async fn transaction_control_is_prepared_like_the_statements() {
    // BEGIN and COMMIT were simple queries that PostgreSQL parsed again on every request; they
    // are prepared statements of the connection now, like the settings and the request's own.
    let api = Api::new().await;
    api.sql(
        "create function public.prepared_here() returns setof text language sql stable as
           $$ select statement from pg_prepared_statements order by statement $$;
         create function public.prepared_by_write() returns setof text language sql volatile as
           $$ select statement from pg_prepared_statements order by statement $$;
         notify pgrst, 'reload schema';",
    )
    .await;
    api.wait_for("/rpc/prepared_here", None).await;
    let r = api.get("/rpc/prepared_here", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let read: Vec<String> = serde_json::from_value(r.json()).unwrap();
    for control in ["BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY", "COMMIT"] {
        assert!(read.iter().any(|s| s == control), "{control} in {read:?}");
    }
    let r = api
        .call("POST", "/rpc/prepared_by_write", None, &[], Some("{}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let write: Vec<String> = serde_json::from_value(r.json()).unwrap();
    assert!(
        write
            .iter()
            .any(|s| s == "BEGIN ISOLATION LEVEL READ COMMITTED"),
        "{write:?}"
    );
}
