//! Retraction: a promoted file's entries taken out of the index, each found by its name.

use bytes::Bytes;

use super::{
    ChecksumEntry, FileEntry, checksum_key, dataset_prefix, entries, entry_key, file_id, get_json,
    order_prefix, run_key,
};
use crate::ports::{ObjectStore, StoreError};

/// Takes a promoted file out of the indexes (retraction): its order marker, its key runs, its
/// checksum entry when that names it, and last its entry, which names the others, so a retry
/// after a crash finds what is left. Found by name: the runs from the entry's key columns, the
/// marker from the name the entry records (an entry written before it did has its marker
/// found by listing the table's markers). Idempotent: a file with no entry is a success.
pub async fn remove_file(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    raw_key: &str,
) -> Result<(), StoreError> {
    let id = file_id(raw_key);
    let entry_at = entry_key(dataset, table, &id);
    let Some(entry) = get_json::<FileEntry>(store, &entry_at).await? else {
        return Ok(());
    };
    match &entry.order {
        Some(name) => {
            let marker = format!("{}{name}", order_prefix(dataset, table));
            store.delete(&marker).await?;
        }
        None => {
            for (marker, e) in entries(store, dataset, table).await? {
                if e == id {
                    store.delete(&marker).await?;
                }
            }
        }
    }
    for column in &entry.key_columns {
        store.delete(&run_key(dataset, table, column, &id)).await?;
    }
    if !entry.sha256.is_empty() {
        remove_checksum(store, dataset, &entry.sha256, raw_key).await?;
    }
    store.delete(&entry_at).await
}

/// Takes `raw_key` out of the checksum entry of `sha256`. An approved duplicate shares the
/// content: while one file with these bytes is still promoted, re-sending them stays a
/// duplicate, so the entry then names that file. Read before the delete, so a crash in between
/// leaves the old entry for the retry rather than none.
async fn remove_checksum(
    store: &dyn ObjectStore,
    dataset: &str,
    sha256: &str,
    raw_key: &str,
) -> Result<(), StoreError> {
    let ck = checksum_key(dataset, sha256);
    let Some(mut c) = get_json::<ChecksumEntry>(store, &ck).await? else {
        return Ok(());
    };
    if c.key != raw_key {
        if !c.others.iter().any(|(k, _)| k == raw_key) {
            return Ok(());
        }
        c.others.retain(|(k, _)| k != raw_key);
    } else if let Some((key, table)) = c.others.pop() {
        (c.key, c.table) = (key, table);
    } else if c.complete {
        return store.delete(&ck).await;
    } else {
        // Written before twins were kept in it: look for one among the file entries.
        match other_with_checksum(store, dataset, sha256, raw_key).await? {
            Some(other) => c = other,
            None => return store.delete(&ck).await,
        }
    }
    let body = serde_json::to_vec(&c).unwrap_or_default();
    store.put(&ck, Bytes::from(body)).await?;
    Ok(())
}

/// Another promoted file of `dataset` with content `sha256`, if any, for a checksum entry
/// written before entries kept their twins: a listing of the dataset's file entries.
async fn other_with_checksum(
    store: &dyn ObjectStore,
    dataset: &str,
    sha256: &str,
    raw_key: &str,
) -> Result<Option<ChecksumEntry>, StoreError> {
    let prefix = dataset_prefix(dataset);
    for object in store.list(&prefix).await? {
        let Some((table, rest)) = object.key[prefix.len()..].split_once('/') else {
            continue;
        };
        if !rest.starts_with("files/") {
            continue;
        }
        if let Some(e) = get_json::<FileEntry>(store, &object.key).await?
            && e.key != raw_key
            && e.sha256.eq_ignore_ascii_case(sha256)
        {
            return Ok(Some(ChecksumEntry {
                key: e.key,
                table: table.to_owned(),
                others: Vec::new(),
                complete: false,
            }));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[path = "index_retract_tests.rs"]
mod tests;
