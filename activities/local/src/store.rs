//! An [`ObjectStore`] on a local folder: the folder is the bucket, keys are relative paths.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use lakegate_activities::ports::{
    ByteStream, KeyTag, ObjectMeta, ObjectStore, StoreError, StoreResult,
};
use tokio::io::AsyncWriteExt;

/// Partly written files carry this prefix so listings and readers never see them.
const TEMP_PREFIX: &str = ".lakegate-tmp-";

#[derive(Debug)]
pub struct LocalObjectStore {
    bucket: String,
    root: PathBuf,
    temp_counter: AtomicU64,
}

impl LocalObjectStore {
    /// A store whose objects live under `root`; `bucket` is the name used in workflow ids.
    pub fn new(bucket: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            bucket: bucket.into(),
            root: root.into(),
            temp_counter: AtomicU64::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `key`. Rejects keys that would escape the root or that a bucket could not
    /// hold the same way (empty segments, `.`/`..`, NUL).
    pub fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let invalid = |reason| StoreError::InvalidKey {
            key: KeyTag(key.to_owned()),
            reason,
        };
        if key.is_empty() || key.ends_with('/') {
            return Err(invalid("empty file name"));
        }
        if key.contains('\0') {
            return Err(invalid("NUL byte"));
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(invalid("empty, '.' or '..' path segment"));
        }
        if key.split('/').any(|s| s.starts_with(TEMP_PREFIX)) {
            return Err(invalid("reserved name"));
        }
        let relative = Path::new(key);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(invalid("not a relative path"));
        }
        Ok(self.root.join(relative))
    }

    fn io_error(key: &str, operation: &'static str, source: std::io::Error) -> StoreError {
        if source.kind() == ErrorKind::NotFound {
            StoreError::NotFound(KeyTag(key.to_owned()))
        } else {
            StoreError::Io {
                key: KeyTag(key.to_owned()),
                operation,
                source,
            }
        }
    }

    fn meta(key: &str, metadata: &std::fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: metadata.len(),
            // Like a web server's ETag: it changes whenever the file is rewritten, and a move
            // (a link) keeps it, as S3 keeps a copied object's ETag.
            etag: Some(format!(
                "{:x}-{:x}-{:x}",
                metadata.ino(),
                metadata.mtime_nsec() + metadata.mtime() * 1_000_000_000,
                metadata.len()
            )),
            version: None,
            last_modified: Some(metadata.mtime()),
        }
    }

    async fn ensure_parent(&self, key: &str, path: &Path) -> Result<(), StoreError> {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Self::io_error(key, "create directory", e))?;
        }
        Ok(())
    }

    /// Copies a local file in as `key` (what `lakegate ingest` does with a user's file), with the
    /// same write-then-rename atomicity as [`ObjectStore::put`].
    pub async fn put_file(&self, key: &str, source: &Path) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        self.ensure_parent(key, &path).await?;
        let temp = self.temp_path(&path);
        tokio::fs::copy(source, &temp)
            .await
            .map_err(|e| Self::io_error(key, "copy in", e))?;
        self.commit_temp(key, &temp, &path).await
    }

    fn temp_path(&self, path: &Path) -> PathBuf {
        let n = self.temp_counter.fetch_add(1, Ordering::Relaxed);
        path.with_file_name(format!("{TEMP_PREFIX}{}-{n}", std::process::id()))
    }

    async fn commit_temp(
        &self,
        key: &str,
        temp: &Path,
        path: &Path,
    ) -> Result<ObjectMeta, StoreError> {
        let result = async {
            tokio::fs::File::open(temp).await?.sync_all().await?;
            tokio::fs::rename(temp, path).await
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(temp).await;
            return Err(Self::io_error(key, "write", e));
        }
        let metadata = tokio::fs::metadata(path)
            .await
            .map_err(|e| Self::io_error(key, "stat", e))?;
        Ok(Self::meta(key, &metadata))
    }
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(Some(Self::meta(key, &m))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io_error(key, "stat", e)),
        }
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Self::io_error(key, "open", e))?;
        Ok(Box::pin(file))
    }

    async fn put(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StoreError> {
        let path = self.path_of(key)?;
        self.ensure_parent(key, &path).await?;
        let temp = self.temp_path(&path);
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(&body).await?;
            file.flush().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(Self::io_error(key, "write", e));
        }
        self.commit_temp(key, &temp, &path).await
    }

    /// The content's SHA-256, as `lakegate ingest` versions a local file: a folder has no
    /// version ids, and the inode-based ETag changes on every copy.
    async fn version_of(&self, key: &str) -> Result<String, StoreError> {
        let path = self.path_of(key)?;
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || content_sha256(&path))
            .await
            .map_err(|e| Self::io_error(&key, "hash", std::io::Error::other(e)))?
            .map_err(|e| Self::io_error(&key, "hash", e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        // Walk only the deepest directory the prefix names, then filter by the full prefix, as
        // S3's ListObjectsV2 matches prefixes as strings rather than as folders.
        let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir_part)
        };
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let walk = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<ObjectMeta>> {
            let mut found = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in entries {
                    let entry = entry?;
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with(TEMP_PREFIX) {
                        continue;
                    }
                    let file_type = entry.file_type()?;
                    if file_type.is_dir() {
                        stack.push(entry.path());
                    } else if file_type.is_file() {
                        let path = entry.path();
                        let Ok(relative) = path.strip_prefix(&root) else {
                            continue;
                        };
                        let Some(key) = relative.to_str() else {
                            continue;
                        };
                        if key.starts_with(&prefix) {
                            found.push(Self::meta(key, &entry.metadata()?));
                        }
                    }
                }
            }
            found.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(found)
        });
        walk.await
            .map_err(|e| Self::io_error(dir_part, "list", std::io::Error::other(e)))?
            .map_err(|e| Self::io_error(dir_part, "list", e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(Self::io_error(key, "delete", e)),
            _ => Ok(()),
        }
    }

    /// A hard link then an unlink. `link(2)` never replaces an existing name, so nothing is ever
    /// overwritten, and the object is never absent: a crash between the two steps leaves two
    /// names for the same inode, which the retry recognises (same device and inode) and finishes
    /// by removing the source. A rename could not tell a finished move from a lost file.
    async fn move_object(&self, from: &str, to: &str) -> Result<ObjectMeta, StoreError> {
        self.move_checked(from, to, None).await
    }

    /// Checked after the link, on the linked inode itself: a source replaced at any moment before
    /// (a rename over it makes a new inode, a rewrite a new mtime) fails the check, and the new
    /// name is removed again while the source still holds the object.
    async fn move_object_if(&self, from: &str, to: &str, etag: &str) -> StoreResult<ObjectMeta> {
        self.move_checked(from, to, Some(etag)).await
    }
}

impl LocalObjectStore {
    async fn move_checked(
        &self,
        from: &str,
        to: &str,
        etag: Option<&str>,
    ) -> Result<ObjectMeta, StoreError> {
        let source = self.path_of(from)?;
        let destination = self.path_of(to)?;
        self.ensure_parent(to, &destination).await?;
        match tokio::fs::hard_link(&source, &destination).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let dest_meta = tokio::fs::metadata(&destination)
                    .await
                    .map_err(|e| Self::io_error(to, "stat", e))?;
                match tokio::fs::metadata(&source).await {
                    Ok(src_meta)
                        if src_meta.dev() == dest_meta.dev()
                            && src_meta.ino() == dest_meta.ino() => {}
                    Ok(_) => return Err(StoreError::DestinationExists(KeyTag(to.to_owned()))),
                    // Source gone, destination present: an earlier attempt finished the move.
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Ok(Self::meta(to, &dest_meta));
                    }
                    Err(e) => return Err(Self::io_error(from, "stat", e)),
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return match tokio::fs::metadata(&destination).await {
                    Ok(m) => Ok(Self::meta(to, &m)),
                    Err(_) => Err(StoreError::NotFound(KeyTag(from.to_owned()))),
                };
            }
            Err(e) => return Err(Self::io_error(from, "link", e)),
        }
        if let Some(expected) = etag {
            let linked = tokio::fs::metadata(&destination)
                .await
                .map_err(|e| Self::io_error(to, "stat", e))?;
            if Self::meta(to, &linked).etag.as_deref() != Some(expected) {
                // Source and destination name the same (unvalidated) inode: dropping the new
                // name loses nothing.
                tokio::fs::remove_file(&destination)
                    .await
                    .map_err(|e| Self::io_error(to, "unlink", e))?;
                return Err(StoreError::Conflict {
                    key: KeyTag(from.to_owned()),
                    operation: "move",
                });
            }
        }
        tokio::fs::remove_file(&source)
            .await
            .or_else(|e| match e.kind() {
                ErrorKind::NotFound => Ok(()),
                _ => Err(Self::io_error(from, "unlink", e)),
            })?;
        let metadata = tokio::fs::metadata(&destination)
            .await
            .map_err(|e| Self::io_error(to, "stat", e))?;
        Ok(Self::meta(to, &metadata))
    }
}

/// Hex SHA-256 of a file's bytes: the version of a local object in ingest workflow ids.
pub fn content_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalObjectStore::new("lake", dir.path());
        (dir, store)
    }

    #[tokio::test]
    async fn move_finishes_after_a_crash_between_link_and_unlink() {
        let (_dir, store) = store();
        store
            .put("landing/a.csv", Bytes::from_static(b"x"))
            .await
            .unwrap();
        // Simulate the crash: the link happened, the unlink did not.
        let dest = store.path_of("raw/a.csv").unwrap();
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::hard_link(store.path_of("landing/a.csv").unwrap(), &dest).unwrap();
        store
            .move_object("landing/a.csv", "raw/a.csv")
            .await
            .unwrap();
        assert!(store.head("landing/a.csv").await.unwrap().is_none());
        assert_eq!(store.head("raw/a.csv").await.unwrap().unwrap().size, 1);
        // And once more, as a retry after the move completed would.
        store
            .move_object("landing/a.csv", "raw/a.csv")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_conditional_move_refuses_a_replaced_source() {
        let (_dir, store) = store();
        let read = store
            .put("landing/a.csv", Bytes::from_static(b"validated"))
            .await
            .unwrap();
        store
            .put("landing/a.csv", Bytes::from_static(b"replaced"))
            .await
            .unwrap();
        let err = store
            .move_object_if("landing/a.csv", "raw/a.csv", read.etag.as_deref().unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert!(store.head("raw/a.csv").await.unwrap().is_none());
        assert_eq!(store.head("landing/a.csv").await.unwrap().unwrap().size, 8);
        // The current ETag moves it.
        let now = store.head("landing/a.csv").await.unwrap().unwrap();
        store
            .move_object_if("landing/a.csv", "raw/a.csv", now.etag.as_deref().unwrap())
            .await
            .unwrap();
        assert!(store.head("landing/a.csv").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn move_never_overwrites_another_object() {
        let (_dir, store) = store();
        store
            .put("landing/a.csv", Bytes::from_static(b"new"))
            .await
            .unwrap();
        store
            .put("raw/a.csv", Bytes::from_static(b"old"))
            .await
            .unwrap();
        let err = store
            .move_object("landing/a.csv", "raw/a.csv")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::DestinationExists(_)), "{err}");
        assert_eq!(store.head("landing/a.csv").await.unwrap().unwrap().size, 3);
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root_and_errors_hide_them() {
        let (_dir, store) = store();
        for key in ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ""] {
            assert!(
                matches!(store.path_of(key), Err(StoreError::InvalidKey { .. })),
                "{key}"
            );
        }
        let err = store.get("landing/JANE_DOE.csv").await.err().unwrap();
        assert!(!err.to_string().contains("JANE"), "{err}");
    }

    #[tokio::test]
    async fn list_matches_prefixes_as_strings_and_skips_partial_writes() {
        let (_dir, store) = store();
        for key in [
            "landing/ehr/p1.csv",
            "landing/ehr/p2.csv",
            "landing/ehrx/p.csv",
            "raw/x",
        ] {
            store.put(key, Bytes::from_static(b"1")).await.unwrap();
        }
        std::fs::write(
            store.root().join("landing/ehr/.lakegate-tmp-1-1"),
            b"partial",
        )
        .unwrap();
        let keys: Vec<String> = store
            .list("landing/ehr")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(
            keys,
            [
                "landing/ehr/p1.csv",
                "landing/ehr/p2.csv",
                "landing/ehrx/p.csv"
            ]
        );
        assert!(store.list("nothing/").await.unwrap().is_empty());
    }
}
