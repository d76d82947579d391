//! Every setting craftbase and its services read, with its value and where the value came
//! from. The settings are those the services' clap definitions declare (so none is forgotten
//! when one is added), realtime's limits, and any other variable config.toml set.

use std::collections::{BTreeMap, BTreeSet};

use clap::parser::ValueSource;
use clap::{Args, CommandFactory};
use serde::Serialize;

use crate::config::Cli;

/// Where a setting's value came from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    #[serde(rename = "flag")]
    Flag,
    #[serde(rename = "env")]
    Env,
    #[serde(rename = "config.toml")]
    ConfigToml,
    #[serde(rename = "default")]
    Default,
    /// No value at all (an optional setting left out).
    #[serde(rename = "unset")]
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::ConfigToml => "config.toml",
            Source::Default => "default",
            Source::Unset => "unset",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// `craftbase`, `rest`, `auth`, `realtime` or `storage`.
    pub service: &'static str,
    /// The environment variable.
    pub name: String,
    /// The `craftbase start` flag, for the settings that have one.
    pub flag: Option<String>,
    /// The value, or `****` for a secret (a URL keeps all but its password).
    pub value: String,
    pub source: Source,
    /// The config.toml key, when it is the source.
    pub key: Option<String>,
}

/// Realtime's limits (read by name, not through clap) with their defaults.
const REALTIME: [(&str, Option<&str>); 11] = [
    ("REALTIME_MAX_PAYLOAD_SIZE_IN_KB", Some("256")),
    ("TENANT_MAX_CHANNELS_PER_CLIENT", Some("100")),
    ("TENANT_MAX_JOINS_PER_SECOND", Some("100")),
    ("TENANT_MAX_EVENTS_PER_SECOND", Some("100")),
    ("REALTIME_TENANT_MAX_EVENTS_PER_SECOND", None),
    ("CLIENT_PRESENCE_MAX_CALLS", Some("5")),
    ("CLIENT_PRESENCE_WINDOW_MS", Some("30000")),
    ("REALTIME_MAX_BINDINGS_PER_CHANNEL", Some("100")),
    ("REALTIME_MAX_TOPIC_BYTES", Some("255")),
    ("REALTIME_SOCKET_QUEUE_BYTES", Some("8388608")),
    ("REALTIME_SEND_TIMEOUT_MS", Some("10000")),
];

/// Storage's settings (storage-api's names, read by name) with their defaults.
const STORAGE: [(&str, Option<&str>); 9] = [
    ("STORAGE_BACKEND", Some("file")),
    ("FILE_STORAGE_BACKEND_PATH", Some("<data-dir>/storage")),
    ("FILE_SIZE_LIMIT", Some("52428800")),
    ("GLOBAL_S3_BUCKET", None),
    ("REGION", Some("us-east-1")),
    ("GLOBAL_S3_ENDPOINT", None),
    ("GLOBAL_S3_FORCE_PATH_STYLE", Some("false")),
    ("AWS_ACCESS_KEY_ID", None),
    ("AWS_SECRET_ACCESS_KEY", None),
];

/// Variables read outside clap that are worth showing even when unset.
const OTHERS: [(&str, &str); 4] = [
    ("auth", "GOTRUE_JWT_SECRET"),
    ("rest", "PGRST_JWT_SECRET"),
    ("auth", "GOTRUE_EXTERNAL_PROVIDERS"),
    ("craftbase", "RUST_LOG"),
];

/// Every setting. `matches` are `craftbase config`'s own (its flags are `start`'s); `from_file`
/// names the variables config.toml set.
pub fn list(
    matches: Option<&clap::ArgMatches>,
    from_file: &BTreeMap<String, String>,
) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |out: &mut Vec<Setting>, s: Setting| {
        if seen.insert(s.name.clone()) {
            out.push(s);
        }
    };

    // craftbase's own flags, with clap's word on where each value came from.
    if let (Some(matches), Some(command)) =
        (matches, Cli::command().find_subcommand("config").cloned())
    {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            let id = arg.get_id().as_str();
            let raw: Option<Vec<String>> = matches
                .get_raw(id)
                .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect());
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) if from_file.contains_key(env) => Source::ConfigToml,
                Some(ValueSource::EnvVariable) => Source::Env,
                Some(_) => Source::Default,
                None => Source::Unset,
            };
            let value = raw.map(|v| v.join(",")).unwrap_or_default();
            push(
                &mut out,
                setting(
                    "craftbase",
                    env,
                    arg.get_long().map(|l| format!("--{l}")),
                    value,
                    source,
                    arg.is_hide_env_values_set(),
                    from_file,
                ),
            );
        }
    }

    // The services' settings: environment (config.toml's among it) or their defaults.
    let groups = [
        ("craftbase", crate::switches::ServiceSwitches::command()),
        (
            "rest",
            craftbase_gateway::GatewaySettings::augment_args(clap::Command::new("rest")),
        ),
        ("auth", craftbase_auth::Settings::command()),
    ];
    for (service, command) in groups {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let default = (!defaults.is_empty()).then(|| defaults.join(","));
            push(
                &mut out,
                from_env(
                    service,
                    env,
                    default,
                    arg.is_hide_env_values_set(),
                    from_file,
                ),
            );
        }
    }
    for (name, default) in REALTIME {
        push(
            &mut out,
            from_env(
                "realtime",
                name,
                default.map(str::to_owned),
                false,
                from_file,
            ),
        );
    }
    for (name, default) in STORAGE {
        let hidden = name.starts_with("AWS_");
        let default = default.map(str::to_owned);
        push(
            &mut out,
            from_env("storage", name, default, hidden, from_file),
        );
    }
    for (service, name) in OTHERS {
        push(&mut out, from_env(service, name, None, false, from_file));
    }
    // Providers configured in the environment, and whatever else config.toml set.
    let mut extra: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("GOTRUE_EXTERNAL_"))
        .collect();
    extra.extend(from_file.keys().cloned());
    extra.sort();
    for name in extra {
        let service = if name.starts_with("GOTRUE_") {
            "auth"
        } else if name.starts_with("PGRST_") {
            "rest"
        } else {
            "craftbase"
        };
        push(&mut out, from_env(service, &name, None, false, from_file));
    }
    let order = |s: &str| match s {
        "craftbase" => 0,
        "rest" => 1,
        "auth" => 2,
        "realtime" => 3,
        _ => 4,
    };
    out.sort_by_key(|s| order(s.service));
    out
}

/// A setting read from the environment alone.
fn from_env(
    service: &'static str,
    name: &str,
    default: Option<String>,
    hidden: bool,
    from_file: &BTreeMap<String, String>,
) -> Setting {
    let (value, source) = match std::env::var(name) {
        Ok(v) if from_file.contains_key(name) => (v, Source::ConfigToml),
        Ok(v) => (v, Source::Env),
        Err(_) => match default {
            Some(d) => (d, Source::Default),
            None => (String::new(), Source::Unset),
        },
    };
    setting(service, name, None, value, source, hidden, from_file)
}

fn setting(
    service: &'static str,
    name: &str,
    flag: Option<String>,
    value: String,
    source: Source,
    hidden: bool,
    from_file: &BTreeMap<String, String>,
) -> Setting {
    let value = if source == Source::Unset {
        match name {
            "JWT_SECRET" => "(generated once, kept in the data directory)",
            "DATABASE_URL" => "(the embedded PostgreSQL)",
            _ => "(unset)",
        }
        .to_owned()
    } else if hidden || is_secret(name) {
        mask(&value)
    } else {
        value
    };
    Setting {
        service,
        name: name.to_owned(),
        flag,
        value,
        source,
        key: (source == Source::ConfigToml)
            .then(|| from_file.get(name).cloned())
            .flatten(),
    }
}

/// Names whose values are credentials.
fn is_secret(name: &str) -> bool {
    let suffixes = [
        "SECRET", "SECRETS", "_PASS", "PASSWORD", "_KEY", "_KEYS", "_TOKEN",
    ];
    suffixes.iter().any(|s| name.ends_with(s))
        || name.contains("DATABASE_URL")
        || name.contains("DB_URI")
}

/// `****`, or for a URL with credentials the URL with its password masked.
pub fn mask(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    if let Ok(mut url) = url::Url::parse(value) {
        if url.has_host() && url.password().is_some() {
            let _ = url.set_password(Some("****"));
            return url.to_string();
        }
        if url.has_host() && !url.username().is_empty() {
            return url.to_string();
        }
    }
    "****".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_settings_are_listed_with_their_defaults() {
        let settings = super::list(None, &std::collections::BTreeMap::new());
        let by = |n: &str| settings.iter().find(|s| s.name == n).cloned();
        let limit = by("FILE_SIZE_LIMIT").expect("FILE_SIZE_LIMIT listed");
        assert_eq!(limit.service, "storage");
        if std::env::var_os("FILE_SIZE_LIMIT").is_none() {
            assert_eq!(limit.value, "52428800");
            assert_eq!(limit.source, super::Source::Default);
        }
        for name in [
            "STORAGE_BACKEND",
            "GLOBAL_S3_BUCKET",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert_eq!(by(name).expect(name).service, "storage");
        }
    }

    #[test]
    fn secrets_are_masked_and_urls_keep_all_but_the_password() {
        assert_eq!(mask("hunter2"), "****");
        assert_eq!(mask(""), "");
        assert_eq!(
            mask("postgresql://postgres:s3cret@127.0.0.1:5432/postgres"),
            "postgresql://postgres:****@127.0.0.1:5432/postgres"
        );
        assert!(is_secret("GOTRUE_SMTP_PASS"));
        assert!(is_secret("GOTRUE_EXTERNAL_GITHUB_SECRET"));
        assert!(is_secret("DATABASE_URL"));
        assert!(is_secret("JWT_SECRET"));
        assert!(!is_secret("GOTRUE_SITE_URL"));
        assert!(!is_secret("PGRST_DB_MAX_ROWS"));
        assert!(!is_secret("GOTRUE_PASSWORD_MIN_LENGTH"));
        assert!(!is_secret("GOTRUE_RATE_LIMIT_TOKEN_REFRESH"));
    }
}
