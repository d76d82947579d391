//! The file backend made durable: object_store's `LocalFileSystem`, which writes a staged file and
//! renames (or hard-links) it into place but never fsyncs, wrapped so that every write returns
//! only once its file and every directory from its parent up to the root are synced.
//!
//! Why: an object's row is committed right after its bytes are written. Without the syncs a
//! power cut could leave a committed row naming a file the kernel had not written yet. With them
//! the row exists only once its bytes (and the directory entries that name them) are on disk; a
//! crash before the row leaves at worst orphaned bytes, which the sweep removes.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

/// `LocalFileSystem` whose writes (put, multipart complete, copy, rename) are synced to disk.
#[derive(Debug)]
pub struct DurableFileStore {
    inner: Arc<LocalFileSystem>,
    root: PathBuf,
    /// Writes synced so far (what a test can see of the syncs).
    synced: Arc<AtomicU64>,
}

impl DurableFileStore {
    /// The store rooted at `root` (which must exist); empty folders go with their last object.
    pub fn new(root: &FsPath) -> Result<Self> {
        let root = std::fs::canonicalize(root).map_err(|e| object_store::Error::Generic {
            store: "DurableFileStore",
            source: Box::new(e),
        })?;
        let inner = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Ok(Self {
            inner: Arc::new(inner),
            root,
            synced: Arc::default(),
        })
    }

    /// The file holding one version of an object (what `craftbase backup` copies).
    pub fn version_file(&self, bucket: &str, name: &str, version: &str) -> Result<PathBuf> {
        self.inner
            .path_to_filesystem(&crate::key::location(bucket, name, version))
    }

    /// The folder the store keeps its files in.
    pub fn root(&self) -> &FsPath {
        &self.root
    }

    /// How many writes have been synced to disk since the store was opened.
    pub fn synced_writes(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// Syncs the file at `location` and the directories above it.
    async fn sync(&self, location: &Path) -> Result<()> {
        let file = self.inner.path_to_filesystem(location)?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || sync_file_and_parents(&file, &root))
            .await
            .map_err(|e| generic(std::io::Error::other(e)))?
            .map_err(generic)?;
        self.synced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn generic(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "DurableFileStore",
        source: Box::new(e),
    }
}

/// fsyncs `file`, then each directory from its parent up to `root` (inclusive): a new object
/// usually creates its own folders, whose entries live in their parents. Returns the directories
/// synced, nearest first.
pub fn sync_file_and_parents(file: &FsPath, root: &FsPath) -> std::io::Result<Vec<PathBuf>> {
    std::fs::File::open(file)?.sync_all()?;
    let mut synced = Vec::new();
    let mut dir = file.parent();
    while let Some(d) = dir {
        if !d.starts_with(root) {
            break;
        }
        std::fs::File::open(d)?.sync_all()?;
        synced.push(d.to_path_buf());
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(synced)
}

impl fmt::Display for DurableFileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableFileStore({})", self.root.display())
    }
}

#[async_trait]
impl ObjectStore for DurableFileStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.sync(location).await?;
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let upload = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DurableUpload {
            upload,
            store: Self {
                inner: self.inner.clone(),
                root: self.root.clone(),
                synced: self.synced.clone(),
            },
            location: location.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy(from, to).await?;
        self.sync(to).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to).await?;
        self.sync(to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy_if_not_exists(from, to).await?;
        self.sync(to).await
    }
}

/// A multipart upload whose completion returns once the renamed file is synced.
#[derive(Debug)]
struct DurableUpload {
    upload: Box<dyn MultipartUpload>,
    store: DurableFileStore,
    location: Path,
}

#[async_trait]
impl MultipartUpload for DurableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.upload.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.upload.complete().await?;
        self.store.sync(&self.location).await?;
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_every_folder_up_to_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(root.path()).unwrap();
        let dir = root.join("bucket/a/b");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("v1"), b"x").unwrap();
        let synced = sync_file_and_parents(&dir.join("v1"), &root).unwrap();
        assert_eq!(
            synced,
            vec![
                root.join("bucket/a/b"),
                root.join("bucket/a"),
                root.join("bucket"),
                root.clone()
            ]
        );
        assert!(sync_file_and_parents(&dir.join("missing"), &root).is_err());
    }

    #[tokio::test]
    async fn every_write_is_synced_before_it_returns() {
        use object_store::WriteMultipart;
        let root = tempfile::tempdir().unwrap();
        let store = DurableFileStore::new(root.path()).unwrap();
        let at = |s: &str| Path::from(s);
        store.put(&at("b/one/v1"), "bytes".into()).await.unwrap();
        assert_eq!(store.synced_writes(), 1);

        let upload = store.put_multipart(&at("b/two/v1")).await.unwrap();
        let mut write = WriteMultipart::new_with_chunk_size(upload, 4);
        write.write(b"0123456789");
        assert_eq!(store.synced_writes(), 1, "no sync before completion");
        write.finish().await.unwrap();
        assert_eq!(store.synced_writes(), 2);

        store
            .copy(&at("b/two/v1"), &at("c/three/v1"))
            .await
            .unwrap();
        assert_eq!(store.synced_writes(), 3);
        store
            .rename(&at("c/three/v1"), &at("c/four/v1"))
            .await
            .unwrap();
        assert_eq!(store.synced_writes(), 4);
        let got = store.get(&at("c/four/v1")).await.unwrap().bytes().await;
        assert_eq!(got.unwrap().as_ref(), b"0123456789");

        let mut aborted = store.put_multipart(&at("b/five/v1")).await.unwrap();
        aborted.abort().await.unwrap();
        assert_eq!(store.synced_writes(), 4);
        assert!(store.head(&at("b/five/v1")).await.is_err());
    }
}
