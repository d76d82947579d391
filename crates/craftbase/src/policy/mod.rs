//! `craftbase policy`: help for people who write their authorization as row-level security
//! policies. `lint` finds policies and grants that leak, hide every row or are slow; `explain`
//! shows who sees which rows and why (with `--realtime`, who receives a row's changes); `test`
//! runs a file of cases.

pub mod cases;
pub mod catalog;
pub mod change;
pub mod delivery;
pub mod explain;
pub mod filter;
pub mod finding;
pub mod preview;
pub mod realtime;
pub mod rules;
pub mod subject;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::connection::{connect, Source};
pub use finding::{Finding, Level};

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Check the exposed schemas' tables, views, policies and functions; exits 1 on an
    /// error-level finding (for CI).
    Lint(LintArgs),
    /// As a user, which rows of a table pass its policies and which policy decided (or the
    /// verdict on a proposed row), in a read-only transaction that is rolled back; with
    /// `--realtime --row`, who would receive the row's INSERT, UPDATE and DELETE over realtime.
    Explain(ExplainArgs),
    /// Run a file of policy cases (who, what, expected), each in a rolled-back transaction;
    /// TAP or JUnit XML; exits 1 when a case fails.
    Test(TestArgs),
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Report {
    #[default]
    Tap,
    Junit,
}

#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// The TOML file of cases.
    pub file: PathBuf,
    /// Output: tap or junit (XML).
    #[arg(long, value_enum, default_value_t)]
    pub format: Report,
    /// Check this PostgreSQL database (wins over --data-dir).
    #[arg(long)]
    pub db_url: Option<String>,
    /// Check the database of the craftbase running from this data directory.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// `table` or `schema.table`.
    pub table: String,
    /// Who asks: anon, service_role, a user id from auth.users, or a JSON object of claims.
    /// Once, except with --realtime: repeatable there, and by default anon, service_role, one
    /// user per UUID in the row and another user.
    #[arg(long = "as")]
    pub subjects: Vec<String>,
    /// Preview realtime delivery of the --row's INSERT, UPDATE and DELETE to each --as.
    #[arg(long, requires = "row", conflicts_with_all = ["filters", "action"])]
    pub realtime: bool,
    /// With --realtime: the row before the UPDATE (default: --row).
    #[arg(long, requires = "realtime")]
    pub old: Option<String>,
    /// A filter in PostgREST's syntax (`col=eq.v`, `col=in.(a,b)`, `col=is.null`); repeatable.
    #[arg(long = "where")]
    pub filters: Vec<String>,
    #[arg(long, value_enum)]
    pub action: Option<explain::Action>,
    /// The proposed row (insert) or the new values (update), as a JSON object; with
    /// --realtime, the row inserted, updated to and deleted.
    #[arg(long)]
    pub row: Option<String>,
    /// Output: text or json.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Check this PostgreSQL database (wins over --data-dir).
    #[arg(long)]
    pub db_url: Option<String>,
    /// Check the database of the craftbase running from this data directory.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct LintArgs {
    /// Schemas the API exposes (repeat or separate with commas); default: PGRST_DB_SCHEMAS, else public.
    #[arg(long = "schema", short = 's', value_delimiter = ',')]
    pub schemas: Vec<String>,
    /// Output: text (one finding per line) or json (an array).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Check this PostgreSQL database (wins over --data-dir).
    #[arg(long)]
    pub db_url: Option<String>,
    /// Check the database of the craftbase running from this data directory.
    #[arg(long, env = "CRAFTBASE_DATA_DIR", default_value = ".craftbase")]
    pub data_dir: PathBuf,
}

/// The findings for `schemas` of the database `client` is connected to, worst first.
pub async fn lint(
    client: &tokio_postgres::Client,
    schemas: &[String],
) -> anyhow::Result<Vec<Finding>> {
    let catalog = catalog::read(client, schemas).await?;
    Ok(rules::check(&catalog))
}

/// Runs a `policy` command; `Ok(false)` when the lint found an error-level finding.
pub async fn run(command: &PolicyCommand) -> anyhow::Result<bool> {
    match command {
        PolicyCommand::Lint(args) => {
            let schemas = exposed_schemas(&args.schemas);
            let (client, connection) =
                connect(Source::from_args(args.db_url.as_ref(), &args.data_dir)).await?;
            let findings = lint(&client, &schemas).await?;
            drop(client);
            let _ = connection.await;
            print(&findings, args.format)?;
            Ok(!findings.iter().any(|f| f.level == Level::Error))
        }
        PolicyCommand::Explain(args) if args.realtime => explain_realtime(args).await,
        PolicyCommand::Explain(args) => {
            let [who] = args.subjects.as_slice() else {
                anyhow::bail!("give exactly one --as (several only with --realtime)");
            };
            let filters = args
                .filters
                .iter()
                .map(|f| filter::parse(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let row = json_arg("--row", args.row.as_deref())?;
            let (mut client, connection) =
                connect(Source::from_args(args.db_url.as_ref(), &args.data_dir)).await?;
            let subject = subject::resolve(&client, who).await?;
            let request = explain::Request {
                subject,
                table: args.table.clone(),
                filters,
                action: args.action.unwrap_or(explain::Action::Select),
                row,
            };
            let explanation = explain::explain(&mut client, &request).await?;
            drop(client);
            let _ = connection.await;
            match args.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&explanation)?),
                Format::Text => print!("{}", explain::render(&explanation)),
            }
            Ok(true)
        }
        PolicyCommand::Test(args) => {
            let text = std::fs::read_to_string(&args.file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
            let file: cases::File = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
            let (mut client, connection) =
                connect(Source::from_args(args.db_url.as_ref(), &args.data_dir)).await?;
            let outcomes = cases::run(&mut client, &file).await;
            drop(client);
            let _ = connection.await;
            match args.format {
                Report::Tap => print!("{}", cases::tap(&outcomes)),
                Report::Junit => {
                    print!(
                        "{}",
                        cases::junit(&args.file.display().to_string(), &outcomes)
                    )
                }
            }
            Ok(outcomes.iter().all(|o| o.failure.is_none()))
        }
    }
}

/// A JSON argument, parsed.
fn json_arg(flag: &str, given: Option<&str>) -> anyhow::Result<Option<serde_json::Value>> {
    given
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{flag} is not JSON: {e}"))
}

/// `policy explain --realtime`: each subscriber's INSERT, UPDATE and DELETE of the row.
async fn explain_realtime(args: &ExplainArgs) -> anyhow::Result<bool> {
    let row = json_arg("--row", args.row.as_deref())?.unwrap_or_default();
    let old = json_arg("--old", args.old.as_deref())?;
    let source = Source::from_args(args.db_url.as_ref(), &args.data_dir);
    let pool = crate::connection::pool(source, 3).await?;
    let client = pool.get().await?;
    let subscribers = if args.subjects.is_empty() {
        let rows: Vec<&serde_json::Value> = std::iter::once(&row).chain(old.as_ref()).collect();
        realtime::default_subscribers(&client, &rows).await?
    } else {
        let mut out = Vec::new();
        for who in &args.subjects {
            let label = match uuid::Uuid::parse_str(who.trim()) {
                Ok(id) => format!("user {id}"),
                Err(_) => who.clone(),
            };
            out.push(realtime::Named {
                label,
                subject: subject::resolve::<tokio_postgres::Client>(&client, who).await?,
            });
        }
        out
    };
    drop(client);
    let request = realtime::Request {
        table: args.table.clone(),
        row,
        old,
        subscribers,
    };
    let preview = realtime::preview(&pool, &request).await?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&preview)?),
        Format::Text => print!("{}", delivery::render(&preview)),
    }
    Ok(true)
}

/// The schemas given, else those the gateway exposes (`PGRST_DB_SCHEMAS`), else `public`.
fn exposed_schemas(given: &[String]) -> Vec<String> {
    if !given.is_empty() {
        return given.to_vec();
    }
    std::env::var("PGRST_DB_SCHEMAS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec!["public".to_owned()])
}

fn print(findings: &[Finding], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(findings)?),
        Format::Text => {
            for f in findings {
                println!(
                    "{:<5} {} {}: {}",
                    f.level.as_str(),
                    f.id,
                    f.object,
                    f.message
                );
                println!("      fix: {}", f.fix);
            }
            let count = |l| findings.iter().filter(|f| f.level == l).count();
            println!(
                "{} errors, {} warnings, {} notes",
                count(Level::Error),
                count(Level::Warn),
                count(Level::Info)
            );
        }
    }
    Ok(())
}
