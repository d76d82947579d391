//! Connecting a command (`gen types`, `policy`) to a database: a URL, or the database of the
//! craftbase running from a data directory.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::datadir::DataDir;

/// Where to connect.
pub enum Source {
    Url(String),
    DataDir(PathBuf),
}

impl Source {
    /// `--db-url` wins over `--data-dir`.
    pub fn from_args(db_url: Option<&String>, data_dir: &std::path::Path) -> Source {
        match db_url {
            Some(url) => Source::Url(url.clone()),
            None => Source::DataDir(data_dir.to_path_buf()),
        }
    }
}

/// How long connecting may take before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client and the task driving its connection (await it after dropping the client).
pub async fn connect(source: Source) -> anyhow::Result<(tokio_postgres::Client, JoinHandle<()>)> {
    let (config, hint) = locate(source)?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to the database{hint}"))?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, task))
}

/// A small pool of connections, for a command that runs realtime's own code (which reads the
/// catalog on connections of its own); checked by connecting once.
pub async fn pool(source: Source, size: usize) -> anyhow::Result<deadpool_postgres::Pool> {
    let (config, hint) = locate(source)?;
    let pool = craftbase_shared::pool::build(config, size);
    drop(
        pool.get()
            .await
            .with_context(|| format!("cannot connect to the database{hint}"))?,
    );
    Ok(pool)
}

/// The connection settings of `source`, and a hint to add when connecting fails.
fn locate(source: Source) -> anyhow::Result<(tokio_postgres::Config, String)> {
    let (url, hint) = match source {
        Source::Url(url) => (url, String::new()),
        Source::DataDir(dir) => {
            let data = DataDir::existing(&dir)?;
            let url = data
                .endpoints()?
                .ok_or_else(|| {
                    anyhow::anyhow!("craftbase has not served from {} yet", dir.display())
                })?
                .db_url;
            let hint = format!(
                " (is `craftbase start --data-dir {}` running?)",
                dir.display()
            );
            (url, hint)
        }
    };
    let mut config = tokio_postgres::Config::from_str(&url).context("invalid database URL")?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok((config, hint))
}
