//! Storage's settings, read from storage-api's own variable names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;

/// storage-api's default upload limit: 50 MiB.
pub const DEFAULT_FILE_SIZE_LIMIT: u64 = 50 * 1024 * 1024;

/// Where the bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Files under a directory (`FILE_STORAGE_BACKEND_PATH`, else `<data-dir>/storage`).
    File(Option<PathBuf>),
    /// An S3-compatible bucket (`STORAGE_BACKEND=s3`).
    S3(S3Settings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
}

/// What `/storage/v1` needs besides the database.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    /// The largest object accepted, in bytes (`FILE_SIZE_LIMIT`); a bucket may lower it.
    pub file_size_limit: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0} is not a valid value for {1}")]
    Invalid(String, &'static str),
    #[error("STORAGE_BACKEND=s3 needs {0}")]
    Missing(&'static str),
    #[error("cannot open the object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("cannot create the storage directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
}

impl Settings {
    /// Reads `STORAGE_BACKEND`, `FILE_STORAGE_BACKEND_PATH`, `FILE_SIZE_LIMIT`, `GLOBAL_S3_BUCKET`,
    /// `REGION`, `GLOBAL_S3_ENDPOINT` and `GLOBAL_S3_FORCE_PATH_STYLE`.
    pub fn from_env() -> Result<Self, SettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let file_size_limit = match var("FILE_SIZE_LIMIT") {
            None => DEFAULT_FILE_SIZE_LIMIT,
            Some(v) => v
                .parse()
                .map_err(|_| SettingsError::Invalid(v, "FILE_SIZE_LIMIT"))?,
        };
        let backend = match var("STORAGE_BACKEND").as_deref() {
            None | Some("file") => {
                Backend::File(var("FILE_STORAGE_BACKEND_PATH").map(PathBuf::from))
            }
            Some("s3") => Backend::S3(S3Settings {
                bucket: var("GLOBAL_S3_BUCKET")
                    .ok_or(SettingsError::Missing("GLOBAL_S3_BUCKET"))?,
                region: var("REGION")
                    .or_else(|| var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|| "us-east-1".into()),
                endpoint: var("GLOBAL_S3_ENDPOINT"),
                force_path_style: var("GLOBAL_S3_FORCE_PATH_STYLE")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            }),
            Some(other) => {
                return Err(SettingsError::Invalid(other.into(), "STORAGE_BACKEND"));
            }
        };
        Ok(Self {
            backend,
            file_size_limit,
        })
    }

    /// The part an upload is written in: past one part it becomes a multipart upload with at
    /// most two parts in flight, so an upload holds about three parts whatever its size. Local
    /// files take small parts (each a positioned write); S3 needs parts of at least 5 MiB.
    pub fn part_size(&self) -> usize {
        match self.backend {
            Backend::File(_) => 1024 * 1024,
            Backend::S3(_) => 8 * 1024 * 1024,
        }
    }

    /// The object store these settings name; a file backend without a path of its own lives in
    /// `<data_dir>/storage`.
    pub fn open(&self, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, SettingsError> {
        match &self.backend {
            Backend::File(path) => {
                let root = path.clone().unwrap_or_else(|| data_dir.join("storage"));
                std::fs::create_dir_all(&root)
                    .map_err(|e| SettingsError::Directory(root.clone(), e))?;
                // Every write synced before it returns: a row follows only durable bytes.
                Ok(Arc::new(crate::disk::DurableFileStore::new(&root)?))
            }
            Backend::S3(s3) => {
                // AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY come from the environment.
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_virtual_hosted_style_request(!s3.force_path_style);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                Ok(Arc::new(builder.build()?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_backend_syncs_its_writes() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            backend: Backend::File(None),
            file_size_limit: DEFAULT_FILE_SIZE_LIMIT,
        };
        let store = settings.open(dir.path()).unwrap();
        assert!(
            store.to_string().starts_with("DurableFileStore("),
            "{store}"
        );
    }
}
