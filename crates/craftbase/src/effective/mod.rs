//! The command line read with the project's `supabase/config.toml` beneath the environment
//! (flags > environment > config.toml > defaults), and `craftbase config`, which prints the
//! outcome setting by setting.

mod listing;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches};

use crate::config::{Cli, Command, ConfigArgs};
use crate::project_config::ProjectConfig;

pub use listing::{list, Setting, Source};

/// The command line after config.toml has been laid under the environment.
pub struct Loaded {
    pub cli: Cli,
    /// The subcommand's matches, to tell a flag from an environment variable from a default.
    pub matches: Option<clap::ArgMatches>,
    pub project: ProjectConfig,
    /// Variables config.toml set (variable -> its key), i.e. those the environment left unset.
    pub from_file: BTreeMap<String, String>,
}

/// Parses the command line; for `start` and `config`, reads `<project-dir>/supabase/config.toml`
/// (its unknown keys are logged), sets the variables it gives that the environment does not,
/// and parses again so that they count. Runs before any other thread exists: the environment
/// is process-wide.
pub fn load() -> anyhow::Result<Loaded> {
    let first = <Cli as clap::Parser>::parse();
    let Some(project_dir) = project_dir(&first.command) else {
        return Ok(Loaded {
            cli: first,
            matches: None,
            project: ProjectConfig::default(),
            from_file: BTreeMap::new(),
        });
    };
    let project = ProjectConfig::load(&project_dir)?;
    project.report();
    let from_file = project.fill_environment();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = matches.subcommand().map(|(_, m)| m.clone());
    Ok(Loaded {
        cli,
        matches: sub,
        project,
        from_file,
    })
}

fn project_dir(command: &Command) -> Option<PathBuf> {
    match command {
        Command::Start(args) => Some(args.project_dir.clone()),
        Command::Config(args) => Some(args.start.project_dir.clone()),
        // `[db] port` is where the reset starts PostgreSQL.
        Command::Db(crate::config::DbCommand::Reset(args)) => Some(args.project_dir.clone()),
        _ => None,
    }
}

/// `craftbase config`: every setting, its value (secrets masked) and its source.
pub fn print(args: &ConfigArgs, loaded: &Loaded) -> anyhow::Result<()> {
    let settings = list(loaded.matches.as_ref(), &loaded.from_file);
    if args.json {
        let out = serde_json::json!({
            "config_file": loaded.project.path.as_ref().map(|p| p.display().to_string()),
            "unknown_keys": loaded.project.unknown_keys,
            "settings": settings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    match &loaded.project.path {
        Some(path) => println!("config file: {}\n", path.display()),
        None => println!(
            "config file: none ({} has no supabase/config.toml)\n",
            args.start.project_dir.display()
        ),
    }
    let width = settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let value_width = settings
        .iter()
        .map(|s| s.value.chars().count().min(48))
        .max()
        .unwrap_or(0);
    let mut service = "";
    for s in &settings {
        if s.service != service {
            service = s.service;
            println!("[{service}]");
        }
        let source = match &s.key {
            Some(key) => format!("{} ({key})", s.source),
            None => s.source.to_string(),
        };
        println!("  {:width$}  {:value_width$}  {source}", s.name, s.value);
    }
    Ok(())
}
