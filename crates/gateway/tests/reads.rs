//! Reads: select, filters, order, paging, counts, singular and CSV, embeds, schema errors.

use crate::support::{user_token, Api, ALICE};

#[tokio::test]
async fn catalogue_reads_like_the_app() {
    let api = Api::new().await;
    let r = api
        .get(
            "/connectors?select=*&is_active=eq.true&order=name.asc",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = r.json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 8);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(r.header("content-range"), "0-7/*");
    assert!(r.header("content-type").starts_with("application/json"));
    let r = api
        .get("/connector_tools?select=*", Some(&user_token(ALICE)))
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn filters_of_every_kind() {
    let api = Api::new().await;
    let count = |r: crate::support::Reply| {
        assert_eq!(r.status, 200, "{}", r.body);
        r.json().as_array().unwrap().len()
    };
    let cases: [(&str, usize); 22] = [
        ("slug=eq.github", 1),
        ("slug=neq.github", 7),
        ("slug=in.(github,slack,%22no,pe%22)", 2),
        ("slug=not.in.(github,slack)", 6),
        ("name=like.G*", 3),
        ("name=ilike.*GOOGLE*", 2),
        ("mcp_server_url=is.null", 8),
        ("mcp_server_url=not.is.null", 0),
        ("is_active=is.true", 8),
        ("oauth_scopes=cs.%7Brepo%7D", 1),
        ("oauth_scopes=ov.%7Brepo,chat:write%7D", 2),
        ("oauth_scopes=cd.%7Brepo,read:user,read:org,x%7D", 3),
        (
            "oauth_config=cs.%7B%22tokenUrl%22:%22https://slack.com/api/oauth.v2.access%22%7D",
            1,
        ),
        ("oauth_config->>authUrl=like.*github*", 1),
        ("or=(slug.eq.github,slug.eq.slack)", 2),
        (
            "or=(slug.eq.github,and(category.eq.Communication,name.ilike.*slack*))",
            2,
        ),
        ("not.or=(slug.eq.github,slug.eq.slack)", 6),
        ("slug=like(any).%7Bgit*,sla*%7D", 2),
        ("slug=match.^google", 2),
        ("slug=isdistinct.github", 7),
        ("description=wfts(english).repositories", 1),
        ("slug=gt.s&slug=lt.w", 2),
    ];
    for (q, n) in cases {
        assert_eq!(
            count(api.get(&format!("/connectors?select=slug&{q}"), None).await),
            n,
            "{q}"
        );
    }
}

#[tokio::test]
async fn order_paging_counts_and_ranges() {
    let api = Api::new().await;
    let r = api
        .call(
            "GET",
            "/connectors?select=slug&order=slug.desc&limit=3&offset=2",
            None,
            &[("prefer", "count=exact")],
            None,
        )
        .await;
    assert_eq!(r.status, 206, "{}", r.body);
    assert_eq!(r.header("content-range"), "2-4/8");
    assert_eq!(r.json()[0]["slug"], "notion");
    let r = api
        .call(
            "HEAD",
            "/connectors?select=slug",
            None,
            &[("prefer", "count=exact")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-range"), "0-7/8");
    assert!(r.body.is_empty());
    let r = api
        .call(
            "GET",
            "/connectors?offset=20",
            None,
            &[("prefer", "count=exact")],
            None,
        )
        .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.json()["code"], "PGRST103");
    let r = api
        .get(
            "/connectors?select=slug&order=mcp_server_url.asc.nullsfirst,slug.asc",
            None,
        )
        .await;
    assert_eq!(r.json()[0]["slug"], "airtable");
}

#[tokio::test]
async fn singular_csv_casts_aliases_and_paths() {
    let api = Api::new().await;
    let object = [("accept", "application/vnd.pgrst.object+json")];
    let r = api
        .call("GET", "/connectors?slug=eq.github", None, &object, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["slug"], "github");
    assert!(r
        .header("content-type")
        .starts_with("application/vnd.pgrst.object+json"));
    let r = api.call("GET", "/connectors", None, &object, None).await;
    assert_eq!(r.status, 406);
    assert_eq!(r.json()["code"], "PGRST116");
    assert_eq!(r.json()["details"], "The result contains 8 rows");
    let r = api
        .call(
            "GET",
            "/connectors?select=slug,name&slug=in.(github,slack)&order=slug",
            None,
            &[("accept", "text/csv")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "slug,name\ngithub,GitHub\nslack,Slack");
    let r = api
        .get("/connectors?select=s:slug,created:created_at::date,auth:oauth_config->>authUrl&slug=eq.github", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = &r.json()[0];
    assert_eq!(row["s"], "github");
    assert_eq!(row["auth"], "https://github.com/login/oauth/authorize");
    assert!(row["created"].as_str().unwrap().len() == 10);
}

#[tokio::test]
async fn embeds_to_one_to_many_inner_and_filtered() {
    let api = Api::new().await;
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(name)&slug=eq.github",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["connector_tools"].is_array());
    let r = api
        .get(
            "/connector_tools?select=name,connector:connectors(slug)&limit=1",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["connector"]["slug"].is_string());
    let r = api
        .get(
            "/connectors?select=slug,connector_tools!inner(name)&connector_tools.name=eq.nope",
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = api
        .get("/connectors?select=slug,tools:connector_tools(name)&tools.order=name.desc&tools.limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for c in r.json().as_array().unwrap() {
        assert!(c["tools"].as_array().unwrap().len() <= 1);
    }
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(name)&connector_tools=is.null",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let without_tools = r.json().as_array().unwrap().len();
    assert!(without_tools < 8);
    let r = api.get("/connectors?select=slug,nothing(*)", None).await;
    assert_eq!(r.error(), (400, "PGRST200".into()));
    let r = api
        .get("/connectors?select=slug&tools.name=eq.x", None)
        .await;
    assert_eq!(r.json()["code"], "PGRST108");
}

#[tokio::test]
async fn unknown_names_and_hostile_input_are_client_errors_without_sql() {
    let api = Api::new().await;
    let r = api.get("/nope", None).await;
    assert_eq!(r.error(), (404, "PGRST205".into()));
    let r = api
        .call(
            "GET",
            "/connectors",
            None,
            &[("accept-profile", "auth")],
            None,
        )
        .await;
    assert_eq!(r.error(), (406, "PGRST106".into()));
    for q in [
        "select=slug;drop%20table%20connectors",
        "select=%22slug%22%22;--%22",
        "select=slug::text);drop",
        "select=slug::pg_sleep",
        "slug=eq;1",
        "slug=xx.1",
        "order=slug;drop",
        "order=slug.desc%20nulls%20first",
        "select=slug,connectors!inner(*)%3Bselect",
        "slug%3D1--=eq.1",
        "oauth_config->>a'b=eq.1",
        "or=(slug.eq.1)))",
        "limit=1;drop",
        "select=x:slug->>'a",
        "select=%22sl%00ug%22",
        "slug=eq.a%00b",
        "sl%00ug=eq.a",
    ] {
        let r = api.get(&format!("/connectors?{q}"), None).await;
        assert!(r.status.is_client_error(), "{q}: {} {}", r.status, r.body);
        let body = r.body.to_lowercase();
        for leak in ["syntax error", "$1", "json_agg", "\"public\".", " from "] {
            assert!(!body.contains(leak), "{q}: {}", r.body);
        }
    }
    let r = api
        .get("/connectors?slug=eq.x%27%20or%20%271%27=%271", None)
        .await;
    assert_eq!(r.json(), serde_json::json!([]));
    let n = api
        .get("/connectors?select=slug", None)
        .await
        .json()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 8);
}

#[tokio::test]
async fn aggregates_are_disabled() {
    let api = Api::new().await;
    for q in [
        "select=count()",
        "select=n:id.count()",
        "select=slug,count()",
    ] {
        let r = api.get(&format!("/connectors?{q}"), None).await;
        assert_eq!(
            (r.status.as_u16(), r.json()["code"].as_str()),
            (400, Some("PGRST123")),
            "{q}"
        );
    }
}

#[tokio::test]
async fn planned_and_estimated_counts() {
    let api = Api::new().await;
    api.sql("analyze public.connectors;").await;
    for kind in ["planned", "estimated", "exact"] {
        let r = api
            .call(
                "HEAD",
                "/connectors?is_active=eq.true",
                None,
                &[("prefer", &format!("count={kind}"))],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{kind}");
        let total: i64 = r
            .header("content-range")
            .rsplit('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=20).contains(&total), "{kind}: {total}");
        if kind != "planned" {
            assert_eq!(total, 8, "{kind}");
        }
    }
}

#[tokio::test]
async fn related_row_counts() {
    let api = Api::new().await;
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(count)&slug=eq.github",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let n = r.json()[0]["connector_tools"][0]["count"].as_i64().unwrap();
    assert!(n >= 1);
}

#[tokio::test]
async fn simple_views_embed_through_their_tables_keys() {
    let api = Api::new().await;
    api.sql(
        "create view public.active_connectors as select id, slug, name from public.connectors where is_active;
         create view public.tools as select id, connector_id, name from public.connector_tools;
         grant select on public.active_connectors, public.tools to anon;",
    )
    .await;
    api.wait_for("/tools", None).await;
    let r = api
        .get("/tools?select=name,connectors(slug)&limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["connectors"]["slug"].is_string());
    let r = api
        .get(
            "/active_connectors?select=slug,tools(name)&slug=eq.github",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["tools"].is_array());
    let r = api
        .get("/tools?select=name,active_connectors(slug)&limit=1", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()[0]["active_connectors"]["slug"].is_string());
}

#[tokio::test]
async fn order_by_a_to_one_embed() {
    let api = Api::new().await;
    let r = api
        .get(
            "/connector_tools?select=name,connectors(slug)&order=connectors(slug).desc,name",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let slugs: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["connectors"]["slug"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = slugs.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(slugs, sorted);
    let r = api
        .get(
            "/connectors?select=slug,connector_tools(name)&order=connector_tools(name)",
            None,
        )
        .await;
    assert_eq!(r.error(), (400, "PGRST118".into()));
}
