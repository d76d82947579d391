//! Storage's bytes beside a dump: `<dump>.storage/`, the files of the file backend that the
//! dump's `storage.objects` rows name, in the backend's own layout.
//!
//! Consistent with the rows: the dump runs in a snapshot exported first (`pg_dump --snapshot`),
//! and the versions that snapshot's rows name are linked into the folder right after it is
//! taken, before the dump starts. A row commits only after its bytes are synced, and bytes are
//! deleted only after the delete of their row commits, so each of those files exists from before
//! the snapshot until a later delete; linking straight away leaves only that short window, and a
//! file gone by then is counted and reported. Versions are never rewritten in place, so a hard
//! link is as good as a copy (a copy is made across filesystems).
//!
//! Old backups have no folder: restore then brings the rows alone, as before, and says so. The
//! dump file itself is unchanged, so an older craftbase restores a new backup's rows.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use craftbase_storage::disk::DurableFileStore;
use craftbase_storage::settings::Backend;

/// `<dump>.storage`, where a backup puts the file backend's bytes.
pub fn storage_path(dump: &Path) -> PathBuf {
    let mut name = dump.as_os_str().to_owned();
    name.push(".storage");
    PathBuf::from(name)
}

/// The file backend's folder for `data_dir` (`FILE_STORAGE_BACKEND_PATH`, else
/// `<data-dir>/storage`), or `None` when the bytes live in S3.
pub fn file_root(data_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let settings = craftbase_storage::Settings::from_env()
        .map_err(|e| anyhow::anyhow!("invalid storage setting: {e}"))?;
    Ok(match settings.backend {
        Backend::File(path) => Some(path.unwrap_or_else(|| data_dir.join("storage"))),
        Backend::S3(_) => None,
    })
}

/// A dump's snapshot, held open until the dump is done.
pub struct Snapshot {
    client: tokio_postgres::Client,
    /// `pg_export_snapshot()`, for `pg_dump --snapshot`.
    pub id: String,
    /// `(bucket_id, name, version)` of every object row the snapshot sees.
    pub versions: Vec<(String, String, String)>,
}

impl Snapshot {
    /// Opens a repeatable-read transaction, exports its snapshot and reads the object rows.
    pub async fn take(config: &tokio_postgres::Config) -> anyhow::Result<Self> {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .context("cannot connect to take the dump's snapshot")?;
        tokio::spawn(connection);
        client
            .batch_execute("begin isolation level repeatable read read only")
            .await?;
        let id: String = client
            .query_one("select pg_export_snapshot()", &[])
            .await?
            .get(0);
        let has_objects: bool = client
            .query_one("select to_regclass('storage.objects') is not null", &[])
            .await?
            .get(0);
        let versions = if has_objects {
            client
                .query(
                    "select bucket_id, name, version from storage.objects \
                     where version is not null order by bucket_id, name",
                    &[],
                )
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            client,
            id,
            versions,
        })
    }

    /// Ends the snapshot's transaction (after pg_dump is done with it).
    pub async fn release(self) {
        let _ = self.client.batch_execute("commit").await;
    }
}

/// What [`save`] put beside the dump.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub files: usize,
    pub bytes: u64,
    /// Rows whose file was gone (deleted after the snapshot, or lost before it).
    pub missing: Vec<String>,
}

/// Links (or copies) the file of each version into `dest`, in the store's layout.
pub fn save(
    root: &Path,
    versions: &[(String, String, String)],
    dest: &Path,
) -> anyhow::Result<Saved> {
    let mut saved = Saved::default();
    if versions.is_empty() {
        return Ok(saved);
    }
    let store = DurableFileStore::new(root)
        .with_context(|| format!("cannot open the storage folder {}", root.display()))?;
    fs::create_dir(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    for (bucket, name, version) in versions {
        let file = store.version_file(bucket, name, version)?;
        let relative = file
            .strip_prefix(store.root())
            .context("an object's file outside the storage folder")?;
        let target = dest.join(relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        match link_or_copy(&file, &target) {
            Ok(bytes) => {
                saved.files += 1;
                saved.bytes += bytes;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                saved.missing.push(format!("{bucket}/{name}"));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot copy {}", file.display()));
            }
        }
    }
    Ok(saved)
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<u64> {
    let len = fs::metadata(from)?.len();
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to)?;
        fs::File::open(to)?.sync_all()?;
    }
    Ok(len)
}

/// Copies a backup's `<dump>.storage` folder into the new data directory's storage folder;
/// returns how many files.
pub fn restore(from: &Path, root: &Path) -> anyhow::Result<usize> {
    fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut count = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        for entry in fs::read_dir(from.join(&relative))? {
            let entry = entry?;
            let relative = relative.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                fs::create_dir_all(root.join(&relative))?;
                stack.push(relative);
            } else {
                let target = root.join(&relative);
                fs::copy(entry.path(), &target)
                    .with_context(|| format!("cannot copy {}", entry.path().display()))?;
                fs::File::open(&target)?.sync_all()?;
                count += 1;
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_go_beside_the_dump_and_come_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("storage");
        let file = root.join("b/docs/a.txt/v1");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, b"hello").unwrap();
        let versions = [
            ("b".into(), "docs/a.txt".into(), "v1".into()),
            ("b".into(), "gone.txt".into(), "v2".into()),
        ];
        let dest = storage_path(&tmp.path().join("x.dump"));
        assert_eq!(dest, tmp.path().join("x.dump.storage"));
        let saved = save(&root, &versions, &dest).unwrap();
        assert_eq!(saved.files, 1);
        assert_eq!(saved.bytes, 5);
        assert_eq!(saved.missing, vec!["b/gone.txt".to_owned()]);
        // The backup keeps its bytes when the store deletes them.
        fs::remove_file(&file).unwrap();
        let restored = tmp.path().join("new/storage");
        assert_eq!(restore(&dest, &restored).unwrap(), 1);
        assert_eq!(
            fs::read(restored.join("b/docs/a.txt/v1")).unwrap(),
            b"hello"
        );
        assert_eq!(save(&root, &[], &tmp.path().join("none")).unwrap().files, 0);
        assert!(!tmp.path().join("none").exists());
    }
}
