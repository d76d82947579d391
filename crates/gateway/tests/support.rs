//! A gateway over a fresh test database, called in-process with `tower::ServiceExt::oneshot`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use craftbase_shared::{keys, ApiKeys, JwtVerifier, RoleSwitch, ServiceContext};
use craftbase_testkit::TestDb;
use tower::ServiceExt;

pub const ALICE: &str = "11111111-1111-4111-8111-111111111111";
pub const BOB: &str = "22222222-2222-4222-8222-222222222222";
pub const SECRET: &str = "gateway-test-secret-of-enough-length-0123456789";

/// A router over its own database, with Alice and Bob in auth.users.
pub struct Api {
    pub router: Router,
    pub db: TestDb,
}

/// A response, body as text.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The status and the error code of the body, for asserting an error in one line.
    pub fn error(&self) -> (u16, String) {
        let code = self.json()["code"].as_str().unwrap_or("").to_owned();
        (self.status.as_u16(), code)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A user's access token.
pub fn user_token(sub: &str) -> String {
    keys::sign(
        SECRET,
        &serde_json::json!({"sub": sub, "role": "authenticated", "aud": "authenticated", "exp": now() + 3600}),
    )
    .unwrap()
}

pub fn service_token() -> String {
    keys::sign(
        SECRET,
        &serde_json::json!({"role": "service_role", "exp": now() + 3600}),
    )
    .unwrap()
}

impl Api {
    pub async fn new() -> Api {
        Self::with_config(craftbase_gateway::GatewayConfig::default()).await
    }

    /// A router with explicit settings.
    pub async fn with_config(config: craftbase_gateway::GatewayConfig) -> Api {
        let db = TestDb::new(craftbase::migrations::platform_and_example).await;
        db.add_users(&[(ALICE, "alice@example.com"), (BOB, "bob@example.com")])
            .await;
        let pool = craftbase_shared::pool::build(db.config("authenticator"), 4);
        let roles = RoleSwitch::load(&pool.get().await.unwrap()).await.unwrap();
        let ctx = ServiceContext {
            db: pool,
            admin: craftbase_shared::pool::build(db.config("postgres"), 2),
            admin_conninfo: craftbase_shared::pool::conninfo(&db.config("postgres")),
            jwt: Arc::new(JwtVerifier::hs256(SECRET, None)),
            keys: Arc::new(ApiKeys::mint(SECRET, now()).unwrap()),
            roles: Arc::new(roles),
        };
        let router = craftbase_gateway::router_with(ctx, config);
        Api { router, db }
    }

    /// Runs SQL as the superuser.
    pub async fn sql(&self, sql: &str) {
        self.db.superuser().await.batch_execute(sql).await.unwrap();
    }

    /// Sends a request; `token` goes in `Authorization: Bearer`.
    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(encode_uri(uri));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Waits until `path` is known to the schema cache (after a reload).
    pub async fn wait_for(&self, path: &str, token: Option<&str>) {
        for _ in 0..100 {
            if self.get(path, token).await.status != 404 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("{path} never appeared in the schema cache");
    }

    pub async fn get(&self, uri: &str, token: Option<&str>) -> Reply {
        self.call("GET", uri, token, &[], None).await
    }
}

/// Percent-encodes the characters a URI may not hold raw, as a browser's URLSearchParams would.
fn encode_uri(uri: &str) -> String {
    let mut out = String::new();
    for c in uri.chars() {
        if c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}
