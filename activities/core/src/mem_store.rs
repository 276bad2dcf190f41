//! An object store in memory for the index's unit tests: enough of the port for the index and
//! the moves, with content ETags (so conditional moves and pending entries work) and a count of
//! the GETs of each key (so a test can prove a file was not read again).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use crate::ports::{ByteStream, KeyTag, ObjectMeta, ObjectStore, StoreError};

#[derive(Default)]
pub(crate) struct MemStore {
    objects: Mutex<BTreeMap<String, Bytes>>,
    gets: Mutex<BTreeMap<String, usize>>,
    listed: Mutex<Vec<String>>,
}

impl MemStore {
    /// How many times `key` was read.
    pub(crate) fn gets_of(&self, key: &str) -> usize {
        self.gets.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    /// The prefixes listed so far, in order.
    pub(crate) fn listed(&self) -> Vec<String> {
        self.listed.lock().unwrap().clone()
    }

    /// The bytes at `key`, uncounted (a test's own look, not the code's read).
    pub(crate) fn get_bytes(&self, key: &str) -> Bytes {
        self.objects.lock().unwrap()[key].clone()
    }

    /// Every key under `prefix`.
    pub(crate) fn keys(&self, prefix: &str) -> Vec<String> {
        let map = self.objects.lock().unwrap();
        map.keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

#[async_trait]
impl ObjectStore for MemStore {
    fn bucket(&self) -> &str {
        "mem"
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.objects.lock().unwrap().get(key).map(|b| meta(key, b)))
    }
    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        *self.gets.lock().unwrap().entry(key.into()).or_default() += 1;
        let body = self.objects.lock().unwrap().get(key).cloned();
        let body = body.ok_or_else(|| StoreError::NotFound(KeyTag(key.into())))?;
        Ok(Box::pin(std::io::Cursor::new(body.to_vec())))
    }
    async fn put(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StoreError> {
        let m = meta(key, &body);
        self.objects.lock().unwrap().insert(key.into(), body);
        Ok(m)
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        self.listed.lock().unwrap().push(prefix.into());
        let map = self.objects.lock().unwrap();
        Ok(map
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, b)| meta(k, b))
            .collect())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }
    async fn move_object(&self, from: &str, to: &str) -> Result<ObjectMeta, StoreError> {
        let mut map = self.objects.lock().unwrap();
        if map.contains_key(to) {
            return Err(StoreError::DestinationExists(KeyTag(to.into())));
        }
        let body = map
            .remove(from)
            .ok_or_else(|| StoreError::NotFound(KeyTag(from.into())))?;
        map.insert(to.into(), body.clone());
        Ok(meta(to, &body))
    }
}

fn meta(key: &str, body: &Bytes) -> ObjectMeta {
    ObjectMeta {
        key: key.into(),
        size: body.len() as u64,
        etag: Some(lakegate_models::short_hash(&String::from_utf8_lossy(body))),
        version: None,
        last_modified: None,
    }
}
