//! An auth router over a fresh test database, called in-process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use craftbase_auth::Settings;
use craftbase_cluster::Migration;
use craftbase_shared::{ApiKeys, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;
use serde_json::Value;
use tower::ServiceExt;

const SECRET: &str = "auth-tests-secret-auth-tests-secret-0123456789";

/// The platform SQL auth needs: the roles, then the auth schema.
fn migrations() -> Vec<Migration> {
    // The versions craftbase gives them (crates/craftbase/src/migrations.rs): roles first,
    // auth's files from 3.
    let mut all = vec![Migration::embedded(
        1,
        "craftbase/roles.sql",
        craftbase_shared::ROLES_SQL,
    )];
    all.extend(
        craftbase_auth::MIGRATIONS
            .iter()
            .zip(3..)
            .map(|((name, sql), version)| Migration::embedded(version, name, sql)),
    );
    all
}

/// The verifier `craftbase start` builds: HS256, plus the keys of `--jwt-keys` when given.
fn verifier(flags: &[&str]) -> JwtVerifier {
    let v = JwtVerifier::hs256(SECRET, None);
    match flags.iter().position(|f| *f == "--jwt-keys") {
        Some(i) => v.with_jwks(flags[i + 1]).unwrap(),
        None => v,
    }
}

/// A router and the database behind it.
pub struct App {
    pub router: Router,
    pub db: TestDb,
    pub keys: ApiKeys,
}

/// A response: status, headers and the JSON body (null when empty).
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl App {
    /// A fresh database and a router with `flags` as settings (`--flag value` pairs).
    pub async fn new(flags: &[&'static str]) -> App {
        let db = TestDb::new(migrations).await;
        let now = chrono::Utc::now().timestamp() as u64;
        let keys = ApiKeys::mint(SECRET, now).unwrap();
        App {
            router: node(&db, &keys, flags),
            db,
            keys,
        }
    }

    /// This app's database and keys behind another router with its own pool, as a second
    /// craftbase node on the same database runs it.
    pub fn second_node(&self, flags: &[&'static str]) -> App2<'_> {
        App2 {
            app: self,
            router: node(&self.db, &self.keys, flags),
        }
    }

    /// Sends one request; `body` is sent verbatim, `bearer` as `Authorization`.
    pub async fn raw(
        &self,
        method: &str,
        uri: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:54321")
            .header("content-type", "application/json");
        let bearer = bearer.unwrap_or(&self.keys.anon_key).to_owned();
        req = req.header("authorization", format!("Bearer {bearer}"));
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        send(&self.router, req).await
    }

    /// Sends JSON with extra `headers` (say a gateway's forwarding header).
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:54321")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.keys.anon_key));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        send(
            &self.router,
            req.body(Body::from(body.to_string())).unwrap(),
        )
        .await
    }

    /// Sends JSON.
    pub async fn call(&self, method: &str, uri: &str, bearer: Option<&str>, body: Value) -> Reply {
        self.raw(method, uri, bearer, Some(body.to_string())).await
    }

    /// Signs up `email` with a password; returns the session.
    pub async fn sign_up(&self, email: &str) -> Value {
        let r = self
            .call(
                "POST",
                "/signup",
                None,
                serde_json::json!({"email": email, "password": "secret-pw-1"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    /// Refreshes with `token`.
    pub async fn refresh(&self, token: &str) -> Reply {
        self.call(
            "POST",
            "/token?grant_type=refresh_token",
            None,
            serde_json::json!({"refresh_token": token}),
        )
        .await
    }

    /// One value from the database as the superuser.
    pub async fn count(&self, sql: &str) -> i64 {
        self.db
            .superuser()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }
}

/// An auth router over `db` with `flags` as settings.
fn node(db: &TestDb, keys: &ApiKeys, flags: &[&'static str]) -> Router {
    let pool = craftbase_shared::pool::build(db.config("postgres"), 8);
    let ctx = ServiceContext {
        db: pool.clone(),
        admin: pool,
        admin_conninfo: String::new(),
        jwt: Arc::new(verifier(flags)),
        keys: Arc::new(keys.clone()),
        roles: Arc::new(RoleSwitch::new(
            ["anon", "authenticated", "service_role"].map(String::from),
        )),
    };
    let settings = Settings::from_flags(flags.iter().copied()).unwrap();
    craftbase_auth::router_with(ctx, settings)
}

/// A second router on an [`App`]'s database.
pub struct App2<'a> {
    app: &'a App,
    router: Router,
}

impl App2<'_> {
    /// Sends JSON to this node, as [`App::call`] sends it to the first.
    pub async fn call(&self, method: &str, uri: &str, bearer: Option<&str>, body: Value) -> Reply {
        let bearer = bearer.unwrap_or(&self.app.keys.anon_key).to_owned();
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:54321")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {bearer}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        send(&self.router, req).await
    }
}

/// One request through `router`, its JSON answer read.
async fn send(router: &Router, req: Request<Body>) -> Reply {
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}
