//! Which of the keys craftbase does not read are still the Supabase CLI's own (so a `supabase
//! init` file is quietly accepted) and which are unknown to both (warned about, one by one).

/// Keys (and whole sections) the Supabase CLI reads that mean nothing to craftbase: other
/// services (studio, storage's other protocols, edge functions...), Docker images, the pooler, hosted-only
/// features, and the auth features craftbase does not have (SMS providers, hooks, captcha...).
const SUPABASE_ONLY: &[&str] = &[
    "project_id",
    "remotes",
    "studio",
    "inbucket",
    "storage.image_transformation",
    "storage.s3_protocol",
    "storage.analytics",
    "storage.vector",
    "storage.buckets",
    "edge_runtime",
    "functions",
    "analytics",
    "experimental",
    "api.tls",
    "api.external_url",
    "api.auto_expose_new_tables",
    "api.image",
    "db.shadow_port",
    "db.health_timeout",
    "db.root_key",
    "db.pooler",
    "db.migrations",
    "db.seed",
    "db.settings",
    "db.network_restrictions",
    "db.ssl_enforcement",
    "db.vault",
    "realtime.ip_version",
    "realtime.max_header_length",
    "auth.signing_keys_path",
    "auth.captcha",
    "auth.hook",
    "auth.sessions",
    "auth.third_party",
    "auth.publishable_key",
    "auth.secret_key",
    "auth.jwt_secret",
    "auth.anon_key",
    "auth.service_role_key",
    "auth.email.notification",
    "auth.sms",
    "auth.mfa.phone",
];

/// Whether `key` (dotted, as serde_ignored writes it) is one the Supabase CLI knows.
pub fn is_supabase_key(key: &str) -> bool {
    supabase_section(key).is_some()
}

/// The Supabase-only key or section `key` belongs to.
pub fn supabase_section(key: &str) -> Option<&'static str> {
    SUPABASE_ONLY.iter().copied().find(|known| {
        key == *known
            || key
                .strip_prefix(known)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}
