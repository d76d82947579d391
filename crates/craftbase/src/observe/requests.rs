//! Per-request metrics: which service and which class of route a request went to, its status
//! and how long it took. Route classes are a small fixed set, never the raw path, so the number
//! of series stays bounded whatever clients send.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// Requests answered, by `service`, `route` and `status`.
pub const REQUESTS: &str = "craftbase_http_requests_total";
/// Time to the response head, by `service` (histogram).
pub const DURATION: &str = "craftbase_http_request_duration_seconds";
/// Token-endpoint sign-ins that succeeded, by `grant`.
pub const SIGN_INS: &str = "craftbase_auth_sign_ins_total";
/// Token-endpoint sign-ins refused (any 4xx or 5xx answer), by `grant`.
pub const SIGN_IN_FAILURES: &str = "craftbase_auth_sign_in_failures_total";

/// Latency buckets (seconds): a REST read takes about a millisecond, a bcrypt sign-in ~100 ms.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Where a request went, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteClass {
    pub service: &'static str,
    pub route: &'static str,
    /// The token endpoint's grant, for sign-in counts.
    pub grant: Option<&'static str>,
}

impl RouteClass {
    /// Classifies a path (and, for auth's token endpoint, its query) without allocating.
    pub fn of(path: &str, query: Option<&str>) -> RouteClass {
        let path = path.trim_end_matches('/');
        let class = |service, route| RouteClass {
            service,
            route,
            grant: None,
        };
        if let Some(rest) = under(path, "/rest/v1") {
            return match rest {
                "" => class("rest", "root"),
                r if r.starts_with("/rpc/") => class("rest", "rpc"),
                _ => class("rest", "table"),
            };
        }
        if let Some(auth) = under(path, "/auth/v1") {
            let route = match auth {
                "/token" => {
                    return RouteClass {
                        service: "auth",
                        route: "token",
                        grant: Some(grant(query)),
                    }
                }
                "/signup" => "signup",
                "/user" => "user",
                "/logout" => "logout",
                "/otp" | "/magiclink" | "/recover" | "/verify" | "/resend" => "otp",
                "/authorize" | "/callback" => "oauth",
                a if a.starts_with("/admin/") || a == "/admin" => "admin",
                a if a.starts_with("/factors") => "mfa",
                a if a.starts_with("/oauth/") => "oauth",
                _ => "other",
            };
            return class("auth", route);
        }
        if let Some(rt) = under(path, "/realtime/v1") {
            let route = match rt {
                "/websocket" => "websocket",
                r if r.starts_with("/api/broadcast") => "broadcast",
                _ => "other",
            };
            return class("realtime", route);
        }
        if let Some(st) = under(path, "/storage/v1") {
            let route = match st {
                b if b.starts_with("/bucket") => "bucket",
                o if o.starts_with("/object/public/") => "public",
                o if o.starts_with("/object/sign/") || o.starts_with("/object/upload/sign/") => {
                    "signed"
                }
                o if o.starts_with("/object/list") => "list",
                o if o.starts_with("/object") => "object",
                _ => "other",
            };
            return class("storage", route);
        }
        match path {
            "/health" => class("other", "health"),
            "/ready" => class("other", "ready"),
            "/metrics" => class("other", "metrics"),
            _ => class("other", "other"),
        }
    }
}

/// The rest of `path` when it is `prefix` or lies under it.
fn under<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// The token endpoint's `grant_type`, one of the grants auth serves or `other`.
fn grant(query: Option<&str>) -> &'static str {
    let Some(query) = query else {
        return "none";
    };
    let value = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v);
    match value.as_deref() {
        None => "none",
        Some("password") => "password",
        Some("refresh_token") => "refresh_token",
        Some("pkce") => "pkce",
        Some("id_token") => "id_token",
        Some("web3") => "web3",
        Some("authorization_code") => "authorization_code",
        Some(_) => "other",
    }
}

/// The codes the services answer, labelled as themselves (sorted, for the binary search).
const CODES: [&str; 27] = [
    "101", "200", "201", "204", "206", "301", "302", "303", "304", "400", "401", "403", "404",
    "405", "406", "408", "409", "413", "415", "416", "422", "429", "500", "501", "502", "503",
    "504",
];

/// The status as a label: the code itself for those the services answer, its class otherwise.
pub fn status_label(status: StatusCode) -> &'static str {
    let code = status.as_str();
    match CODES.binary_search(&code) {
        Ok(i) => CODES[i],
        Err(_) => match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
    }
}

/// Middleware: counts and times every request of the API port.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let class = RouteClass::of(req.uri().path(), req.uri().query());
    let response = next.run(req).await;
    record(class, response.status(), started.elapsed().as_secs_f64());
    response
}

/// Records one answered request.
pub fn record(class: RouteClass, status: StatusCode, seconds: f64) {
    let code = status_label(status);
    let key = [class.service, class.route, code].map(|s| s.as_ptr() as usize);
    HANDLES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let (counter, histogram) = cache.entry(key).or_insert_with(|| {
            (
                metrics::counter!(REQUESTS, "service" => class.service, "route" => class.route, "status" => code),
                metrics::histogram!(DURATION, "service" => class.service),
            )
        });
        counter.increment(1);
        histogram.record(seconds);
    });
    if let Some(grant) = class.grant {
        if status.is_success() {
            metrics::counter!(SIGN_INS, "grant" => grant).increment(1);
        } else if status.is_client_error() || status.is_server_error() {
            metrics::counter!(SIGN_IN_FAILURES, "grant" => grant).increment(1);
        }
    }
}

type Handles = (metrics::Counter, metrics::Histogram);

thread_local! {
    /// Each worker thread's handles by label values (all `&'static str`, keyed by address):
    /// looking a labelled metric up in the recorder builds and hashes its key, which cost
    /// ~5 times the update itself (0.55 against 0.11 µs per request, measured).
    /// Bounded: the label values come from fixed sets. Filled once the recorder is installed
    /// (`Observer::new`, before the API serves).
    static HANDLES: RefCell<HashMap<[usize; 3], Handles>> = RefCell::default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> (&'static str, &'static str) {
        let c = RouteClass::of(path, None);
        (c.service, c.route)
    }

    #[test]
    fn paths_fall_into_a_fixed_set_of_classes() {
        assert_eq!(route("/rest/v1/"), ("rest", "root"));
        assert_eq!(route("/rest/v1/todos"), ("rest", "table"));
        assert_eq!(route("/rest/v1/rpc/do_it"), ("rest", "rpc"));
        assert_eq!(route("/auth/v1/user"), ("auth", "user"));
        assert_eq!(route("/auth/v1/admin/users/123"), ("auth", "admin"));
        assert_eq!(route("/auth/v1/factors/1/verify"), ("auth", "mfa"));
        assert_eq!(route("/auth/v1/anything-else"), ("auth", "other"));
        assert_eq!(route("/storage/v1/bucket/x"), ("storage", "bucket"));
        assert_eq!(
            route("/storage/v1/object/public/b/a.png"),
            ("storage", "public")
        );
        assert_eq!(
            route("/storage/v1/object/sign/b/a.png"),
            ("storage", "signed")
        );
        assert_eq!(route("/storage/v1/object/list-v2/b"), ("storage", "list"));
        assert_eq!(route("/storage/v1/object/b/a.png"), ("storage", "object"));
        assert_eq!(route("/realtime/v1/websocket"), ("realtime", "websocket"));
        assert_eq!(
            route("/realtime/v1/api/broadcast"),
            ("realtime", "broadcast")
        );
        assert_eq!(route("/health"), ("other", "health"));
        assert_eq!(route("/metrics"), ("other", "metrics"));
        // Lookalike prefixes are not the service.
        assert_eq!(route("/rest/v10/x"), ("other", "other"));
        assert_eq!(route("/random/path/42"), ("other", "other"));
    }

    #[test]
    fn the_token_endpoint_names_its_grant_from_a_fixed_set() {
        let grant = |q| RouteClass::of("/auth/v1/token", Some(q)).grant;
        assert_eq!(grant("grant_type=password"), Some("password"));
        assert_eq!(grant("grant_type=refresh_token"), Some("refresh_token"));
        assert_eq!(grant("grant_type=made-up-%F0%9F%92%A5"), Some("other"));
        assert_eq!(grant("x=1"), Some("none"));
        assert_eq!(
            RouteClass::of("/auth/v1/user", Some("grant_type=password")).grant,
            None
        );
    }

    #[test]
    fn statuses_are_codes_or_classes() {
        assert_eq!(status_label(StatusCode::OK), "200");
        assert_eq!(status_label(StatusCode::UNAUTHORIZED), "401");
        assert_eq!(status_label(StatusCode::IM_A_TEAPOT), "4xx");
        assert_eq!(status_label(StatusCode::from_u16(599).unwrap()), "5xx");
    }
}
