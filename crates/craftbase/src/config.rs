//! Command-line flags and environment variables.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A self-hosted, Supabase-compatible backend in one binary.
#[derive(Parser, Debug)]
#[command(name = "craftbase", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, global = true, env = "CRAFTBASE_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start PostgreSQL (unless DATABASE_URL is set), apply migrations, and serve the API.
    Start(StartArgs),
    /// Print the API URL, database URL and keys of a data directory.
    Status(StatusArgs),
    /// Write a project skeleton (supabase/config.toml, migrations/, seed.sql), like `supabase init`.
    Init(InitArgs),
    /// Manage the project's migrations.
    #[command(subcommand)]
    Migration(MigrationCommand),
    /// Manage the data directory's database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Generate code from the database schema.
    Gen {
        #[command(subcommand)]
        command: GenCommand,
    },
    /// Write the whole database (platform schemas included) to a pg_dump archive.
    Backup(crate::dump::backup::BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(crate::dump::restore::RestoreArgs),
    /// Print every effective setting, its value and where it came from (flag, env,
    /// config.toml, default), secrets masked.
    Config(ConfigArgs),
    /// Manage the API keys (`sb_publishable_…`, `sb_secret_…`) of a data directory; a running
    /// craftbase sees a change within two seconds (or at once on SIGHUP).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the keys users' access tokens are signed with (ES256): list, new (standby),
    /// promote, revoke; a running craftbase follows within two seconds (at once on SIGHUP).
    #[command(subcommand)]
    SigningKeys(crate::signing_keys::command::SigningKeysCommand),
    /// Help with row-level security policies: `lint` finds leaks, hidden tables and slow policies.
    #[command(subcommand)]
    Policy(crate::policy::PolicyCommand),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List the keys: publishable keys in full, secret keys by their first characters only.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
    /// Create a key and print it (a publishable key unless --secret).
    New {
        /// A secret key (acts as service_role: servers only).
        #[arg(long, conflicts_with = "publishable")]
        secret: bool,
        /// A publishable key (acts as anon), the default.
        #[arg(long)]
        publishable: bool,
        /// A name to recognise the key by (at most 64 characters).
        #[arg(long)]
        name: Option<String>,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
    /// Revoke a key, named by its id (or at least 4 leading characters of it) or by the start of
    /// the key itself (`sb_secret_AbCd`).
    Revoke {
        which: String,
        #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
        data_dir: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct InitArgs {
    /// Where to create the `supabase/` folder.
    #[arg(long, env = "CRAFTBASE_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Overwrite an existing supabase/config.toml.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum MigrationCommand {
    /// Create supabase/migrations/<timestamp>_<name>.sql, empty.
    New {
        /// The migration's name: letters, digits, '_' and '-'.
        name: String,
        #[arg(long, env = "CRAFTBASE_PROJECT_DIR", default_value = ".")]
        project_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Drop the embedded database and create it again: platform migrations, the project's
    /// migrations and its seed applied afresh. craftbase must be stopped.
    Reset(ResetArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ResetArgs {
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
    #[arg(long, env = "CRAFTBASE_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Port the embedded PostgreSQL listens on during the reset.
    #[arg(long, env = "CRAFTBASE_DB_PORT", default_value_t = 54322)]
    pub db_port: u16,
}

#[derive(Subcommand, Debug)]
pub enum GenCommand {
    /// Generate types from the database schema.
    Types {
        #[command(subcommand)]
        lang: TypesLang,
    },
}

#[derive(Subcommand, Debug)]
pub enum TypesLang {
    /// Print the `Database` type `supabase gen types typescript` prints.
    Typescript(GenTypesArgs),
}

#[derive(Args, Debug, Clone)]
pub struct GenTypesArgs {
    /// Schemas to include (repeat or separate with commas); default: public.
    #[arg(long = "schema", short = 's', value_delimiter = ',')]
    pub schemas: Vec<String>,
    /// Read this PostgreSQL database (wins over --data-dir).
    #[arg(long)]
    pub db_url: Option<String>,
    /// Read the database of the craftbase running from this data directory.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct StartArgs {
    /// Where the embedded PostgreSQL cluster and the generated keys live.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
    /// Address the API listens on.
    #[arg(long, env = "CRAFTBASE_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port of the API (`/rest/v1`, `/auth/v1`, `/realtime/v1`).
    #[arg(long, env = "CRAFTBASE_PORT", default_value_t = 54321)]
    pub port: u16,
    /// Port of the embedded PostgreSQL on 127.0.0.1.
    #[arg(long, env = "CRAFTBASE_DB_PORT", default_value_t = 54322)]
    pub db_port: u16,
    /// Use this PostgreSQL server (superuser, wal_level=logical) instead of an embedded one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A standby of DATABASE_URL's server (streaming replica) that REST reads (GET, HEAD) go to
    /// while it keeps up; its user and password are replaced by `authenticator`'s.
    #[arg(long, env = "CRAFTBASE_DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
    /// How far the read replica may fall behind the primary (`500ms`, `2s`, or seconds) before
    /// reads go to the primary.
    #[arg(long, env = "CRAFTBASE_DATABASE_READ_MAX_LAG", default_value = "1s", value_parser = parse_lag)]
    pub database_read_max_lag: std::time::Duration,
    /// HS256 secret for all JWTs; generated and kept in the data directory when unset.
    /// PGRST_JWT_SECRET and GOTRUE_JWT_SECRET are read too.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Folder with a Supabase project (`supabase/migrations/*.sql`, `supabase/seed.sql`).
    #[arg(long, env = "CRAFTBASE_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,
    /// Connections REST requests (and /health) run on.
    #[arg(long, env = "PGRST_DB_POOL", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub pool_size: u16,
    /// Connections of auth, apart from REST's and realtime's so that none can starve another.
    #[arg(long, env = "GOTRUE_DB_MAX_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub auth_pool_size: u16,
    /// Connections of realtime (private-channel checks, change authorization, replay), apart
    /// from REST's and auth's; twice this many at most, half as the owner, half as authenticator.
    #[arg(long, env = "CRAFTBASE_REALTIME_POOL_SIZE", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub realtime_pool_size: u16,
    /// The PostgreSQL major version the project needs (config.toml's `db.major_version`);
    /// another one stops start-up.
    #[arg(long, env = "CRAFTBASE_DB_MAJOR_VERSION")]
    pub db_major_version: Option<u32>,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub observe: crate::observe::ObserveArgs,
    /// Cluster mode (`--nats-url`, `--node-id`): off unless a NATS URL is given.
    #[command(flatten)]
    pub nats: craftbase_scaleout::NatsSettings,
}

/// Limits on each HTTP connection of the API port.
#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Seconds a client has to send a request's line and headers (from the first byte, or the
    /// accept on a new connection); then the connection is closed (slowloris).
    #[arg(long, env = "CRAFTBASE_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds an idle kept-alive connection stays open.
    #[arg(long, env = "CRAFTBASE_KEEP_ALIVE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout: u64,
    /// Seconds to wait for the next piece of a request body; then 408 and the connection closed.
    #[arg(long, env = "CRAFTBASE_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Bytes of a refused request's unread body (401, 413, 415...) still read and discarded so
    /// the client sees the answer; past it the connection is closed after the answer.
    #[arg(long, env = "CRAFTBASE_DRAIN_LIMIT", default_value_t = 16 * 1024 * 1024)]
    pub drain_limit: u64,
}

impl HttpArgs {
    pub fn limits(&self) -> craftbase_shared::server::HttpLimits {
        use std::time::Duration;
        craftbase_shared::server::HttpLimits {
            header_timeout: Duration::from_secs(self.header_timeout),
            keep_alive_timeout: Duration::from_secs(self.keep_alive_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            drain_limit: self.drain_limit,
        }
    }
}

impl StartArgs {
    /// The secret from the flag or any of the variable names the replaced services use.
    pub fn jwt_secret(&self) -> Option<String> {
        self.jwt_secret
            .clone()
            .or_else(|| std::env::var("PGRST_JWT_SECRET").ok())
            .or_else(|| std::env::var("GOTRUE_JWT_SECRET").ok())
            .filter(|s| !s.is_empty())
    }
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Print one JSON object: api_url, db_url, publishable_key, secret_key, anon_key,
    /// service_role_key, jwt_secret.
    #[arg(long)]
    pub json: bool,
    /// The data directory `craftbase start` used.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
}

/// `craftbase config`'s flags: the same as `start`'s (so a flag shows as a flag), and `--json`.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// One JSON object: `config_file`, `unknown_keys` and `settings` (name, flag, value,
    /// source, key).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub start: StartArgs,
}

/// `500ms`, `2s`, `1.5` (seconds): a replica's accepted lag, above zero and at most an hour.
fn parse_lag(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let seconds = number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|n| n * unit)
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .ok_or_else(|| {
            format!("{text:?} is not a lag such as 500ms, 2s or 1.5 (seconds, at most 3600)")
        })?;
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod lag_tests {
    use super::parse_lag;
    use std::time::Duration;

    #[test]
    fn lags_read_as_milliseconds_or_seconds() {
        assert_eq!(parse_lag("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_lag("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_lag("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "-1s", "soon", "7200s", "NaN"] {
            assert!(parse_lag(bad).is_err(), "{bad}");
        }
    }
}
