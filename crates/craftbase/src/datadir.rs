//! What craftbase keeps in its data directory besides the cluster: the secrets it generated and
//! where it last served, so that keys survive restarts and `craftbase status` can answer.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use craftbase_shared::keys::{generate_secret, ApiKeys};

use crate::api_keys::StoredKey;
use crate::signing_keys::{JwtAlgorithm, StoredSigningKey};
use serde::{Deserialize, Serialize};

/// Parent of the clusters of data directories the `postgres` user cannot reach.
const CLUSTERS_FOR_ROOT: &str = "/var/lib/craftbase/clusters";

/// The file of the generated secrets.
const SECRETS: &str = "secrets.json";

/// The generated secrets, in `secrets.json` (mode 0600).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Secrets {
    #[serde(flatten)]
    pub keys: ApiKeys,
    /// Password of the embedded cluster's `postgres` superuser.
    pub db_password: String,
    /// The new API keys (`sb_publishable_…`, `sb_secret_…`), revoked ones included.
    #[serde(default)]
    pub api_keys: Vec<StoredKey>,
    /// The keys users' access tokens are signed with (ES256), revoked ones included.
    #[serde(default)]
    pub signing_keys: Vec<StoredSigningKey>,
    /// The SAML service provider's RSA key (base64 PKCS#1 DER, as `GOTRUE_SAML_PRIVATE_KEY`),
    /// generated the first time craftbase starts with SAML on and no key set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_private_key: Option<String>,
}

/// Where craftbase last served, in `status.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoints {
    pub api_url: String,
    pub db_url: String,
}

/// Seconds since the epoch: when generated keys are minted.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The data directory.
pub struct DataDir {
    path: PathBuf,
}

impl DataDir {
    /// Creates the directory if needed. It is searchable but not listable by others when root
    /// runs craftbase, because the `postgres` user must reach the cluster inside it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        fs::create_dir_all(path)?;
        let mode = if craftbase_cluster::is_root() {
            0o711
        } else {
            0o700
        };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        Ok(Self {
            path: fs::canonicalize(path)?,
        })
    }

    /// Opens an existing data directory without changing it.
    pub fn existing(path: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            path.join("secrets.json").exists(),
            "{} is not a craftbase data directory (run `craftbase start --data-dir {}` first)",
            path.display(),
            path.display()
        );
        Ok(Self {
            path: path.to_owned(),
        })
    }

    /// Where the embedded cluster lives: inside the data directory, unless we run as root and the
    /// `postgres` user cannot reach it (say, under a private home or a `mktemp -d` folder); then
    /// in a folder of its own under /var/lib/craftbase named after the data directory, so it is
    /// found again on the next start.
    pub fn cluster_root(&self) -> PathBuf {
        if craftbase_cluster::reachable_by_postgres(&self.path) {
            return self.path.join("postgres");
        }
        let name: String = self
            .path
            .to_string_lossy()
            .trim_start_matches('/')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let root = Path::new(CLUSTERS_FOR_ROOT).join(name);
        tracing::info!(cluster = %root.display(), "the postgres user cannot reach the data directory; keeping the cluster outside it");
        root
    }

    /// Loads the secrets, generating them on first start. A secret given in the environment
    /// wins over the stored one; the keys are re-minted only when the secret changes. A
    /// publishable and a secret API key are added when the directory has none of that kind.
    pub fn secrets(&self, configured_secret: Option<String>, now: u64) -> anyhow::Result<Secrets> {
        let _lock = self.lock_secrets()?;
        let stored: Option<Secrets> = self.read(SECRETS)?;
        let (mut secrets, mut changed) = match (stored, configured_secret) {
            (Some(s), None) => (s, false),
            (Some(s), Some(secret)) if s.keys.jwt_secret == secret => (s, false),
            (Some(s), Some(secret)) => (
                Secrets {
                    keys: ApiKeys::mint(&secret, now)?,
                    db_password: s.db_password,
                    api_keys: s.api_keys,
                    signing_keys: s.signing_keys,
                    saml_private_key: s.saml_private_key,
                },
                true,
            ),
            (None, secret) => (
                Secrets {
                    keys: ApiKeys::mint(&secret.unwrap_or_else(generate_secret), now)?,
                    db_password: generate_secret(),
                    api_keys: Vec::new(),
                    signing_keys: Vec::new(),
                    saml_private_key: None,
                },
                true,
            ),
        };
        changed |= crate::api_keys::ensure_defaults(&mut secrets.api_keys, chrono::Utc::now());
        // A data directory from before ES256 gets its key here too: its HS256 sessions keep
        // verifying with the secret, and refreshed ones come back ES256.
        changed |= crate::signing_keys::ensure_current(
            &mut secrets.signing_keys,
            JwtAlgorithm::from_env()?,
            chrono::Utc::now(),
        );
        if changed {
            self.write(SECRETS, &secrets)?;
        }
        Ok(secrets)
    }

    /// Where the secrets are, for a running craftbase to notice changes to its API keys.
    pub fn secrets_path(&self) -> PathBuf {
        self.path.join(SECRETS)
    }

    /// Changes the stored API keys with `change` and writes them back (through a rename, so a
    /// running craftbase reading the file sees the old or the new list, never half of one).
    pub fn update_api_keys<T>(
        &self,
        change: impl FnOnce(&mut Vec<StoredKey>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _lock = self.lock_secrets()?;
        let mut secrets = self.stored_secrets()?;
        let result = change(&mut secrets.api_keys)?;
        self.write(SECRETS, &secrets)?;
        Ok(result)
    }

    /// Changes the stored signing keys with `change` and writes them back, under the same lock
    /// and rename as [`Self::update_api_keys`].
    pub fn update_signing_keys<T>(
        &self,
        change: impl FnOnce(&mut Vec<StoredSigningKey>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _lock = self.lock_secrets()?;
        let mut secrets = self.stored_secrets()?;
        let result = change(&mut secrets.signing_keys)?;
        self.write(SECRETS, &secrets)?;
        Ok(result)
    }

    /// The stored SAML SP key, generated and kept (under the secrets lock) on first use.
    pub fn saml_private_key(&self) -> anyhow::Result<String> {
        let _lock = self.lock_secrets()?;
        let mut secrets = self.stored_secrets()?;
        if let Some(key) = &secrets.saml_private_key {
            return Ok(key.clone());
        }
        let key = craftbase_auth::sso::key::SpKey::generate()?;
        secrets.saml_private_key = Some(key.clone());
        self.write(SECRETS, &secrets)?;
        Ok(key)
    }

    /// Keeps `secrets` as this directory's own: a restore carrying a backup's keys over.
    pub fn store_secrets(&self, secrets: &Secrets) -> anyhow::Result<()> {
        self.write(SECRETS, secrets)
    }

    /// Reads the stored secrets.
    pub fn stored_secrets(&self) -> anyhow::Result<Secrets> {
        self.read(SECRETS)?
            .ok_or_else(|| anyhow::anyhow!("no secrets.json in {}", self.path.display()))
    }

    /// Holds `.secrets.lock` exclusively until the returned file is dropped, so two
    /// read-modify-writes of `secrets.json` (two `craftbase keys` commands, or one and a
    /// starting craftbase) never lose one another's change. The kernel drops the lock with the
    /// process, so a crash leaves none behind.
    fn lock_secrets(&self) -> anyhow::Result<fs::File> {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.path.join(".secrets.lock"))?;
        // SAFETY: flock takes a file descriptor this function owns (open until `file` drops)
        // and touches no memory.
        #[allow(unsafe_code)]
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        anyhow::ensure!(
            locked == 0,
            "cannot lock {}: {}",
            self.path.join(".secrets.lock").display(),
            std::io::Error::last_os_error()
        );
        Ok(file)
    }

    pub fn endpoints(&self) -> anyhow::Result<Option<Endpoints>> {
        self.read("status.json")
    }

    pub fn set_endpoints(&self, endpoints: &Endpoints) -> anyhow::Result<()> {
        self.write("status.json", endpoints)
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> anyhow::Result<Option<T>> {
        match fs::read(self.path.join(name)) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes through a temporary file and a rename, so a crash never leaves half a file.
    fn write<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let tmp = self.path.join(format!(".{name}.tmp"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(value)?)?;
        file.sync_all()?;
        fs::rename(&tmp, self.path.join(name))?;
        Ok(())
    }
}
