//! `craftbase policy`: help for people who write their authorization as row-level security
//! policies. `lint` finds policies and grants that leak, hide every row or are slow.

pub mod cases;
pub mod catalog;
pub mod explain;
pub mod filter;
pub mod finding;
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
    /// verdict on a proposed row), in a read-only transaction that is rolled back.
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
    #[arg(long = "as")]
    pub subject: String,
    /// A filter in PostgREST's syntax (`col=eq.v`, `col=in.(a,b)`, `col=is.null`); repeatable.
    #[arg(long = "where")]
    pub filters: Vec<String>,
    #[arg(long, value_enum, default_value = "select")]
    pub action: explain::Action,
    /// The proposed row (insert) or the new values (update), as a JSON object.
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
        PolicyCommand::Explain(args) => {
            let filters = args
                .filters
                .iter()
                .map(|f| filter::parse(f))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let row = args
                .row
                .as_deref()
                .map(serde_json::from_str::<serde_json::Value>)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--row is not JSON: {e}"))?;
            let (mut client, connection) =
                connect(Source::from_args(args.db_url.as_ref(), &args.data_dir)).await?;
            let subject = subject::resolve(&client, &args.subject).await?;
            let request = explain::Request {
                subject,
                table: args.table.clone(),
                filters,
                action: args.action,
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
