//! Pending entries: what the index needs of a file that failed validation (its checksum, row
//! count, header and key runs), taken while the validator reads it anyway and kept under
//! `index/<dataset>/_pending/`, so that approving the file from quarantine records it without
//! reading it again, whatever its size:
//!
//! - `_pending/<id>.json`: a [`Pending`], the file's entry without its raw key;
//! - `_pending/runs/<runs id>/<column hash>.k1`: its key runs, as `keys/` holds them.
//!
//! Names are hashes, never a key's text (landing keys can hold names): the entry is named after
//! the landing key and the ETag validation read ([`stash`]) until the quarantine move, which is
//! conditional on that ETag, renames it after the quarantine key ([`quarantined`]). Approval
//! moves the runs into `keys/` and records the file ([`approve`]); rejection or expiry, or a
//! quarantine move that found the source replaced, removes it ([`discard`]). Every step is
//! idempotent, so the move activity's retries finish what a crash interrupted. A file quarantined
//! before pending entries existed has none, and its approval reads it again as before.

use bytes::Bytes;
use lakegate_models::{INDEX_ZONE, short_hash};
use lakegate_validate::Validated;
use serde::{Deserialize, Serialize};

use super::{FileEntry, encode_run, file_id, finish_record, get_json, run_key};
use crate::ports::{ObjectStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub table: String,
    /// The id the entry was stashed under, which names its runs' folder.
    pub runs_id: String,
    /// The file's entry, its `key` empty until approval gives it its raw key.
    pub entry: FileEntry,
}

fn prefix(dataset: &str) -> String {
    format!("{INDEX_ZONE}{dataset}/_pending/")
}

fn entry_at(dataset: &str, id: &str) -> String {
    format!("{}{id}.json", prefix(dataset))
}

fn run_at(dataset: &str, runs_id: &str, column: &str) -> String {
    format!(
        "{}runs/{runs_id}/{}.k1",
        prefix(dataset),
        short_hash(column)
    )
}

/// The id of a validated landing object: its key and the ETag validation read.
pub fn validated_id(landing_key: &str, etag: &str) -> String {
    short_hash(&format!("{landing_key}\n{etag}"))
}

/// The id of a quarantined object.
pub fn quarantined_id(quarantine_key: &str) -> String {
    short_hash(quarantine_key)
}

/// Keeps what the index needs of the failed file `validated` read at `landing_key` with `etag`:
/// its runs, then its entry (an entry means its runs are complete).
pub async fn stash(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    landing_key: &str,
    etag: &str,
    validated: &Validated,
) -> Result<(), StoreError> {
    let id = validated_id(landing_key, etag);
    for k in &validated.keys {
        store
            .put(&run_at(dataset, &id, &k.column), encode_run(&k.hashes))
            .await?;
    }
    let pending = Pending {
        table: table.to_owned(),
        runs_id: id.clone(),
        entry: super::entry_of(validated, ""),
    };
    let body = serde_json::to_vec(&pending).unwrap_or_default();
    store
        .put(&entry_at(dataset, &id), Bytes::from(body))
        .await?;
    Ok(())
}

/// The landing object validated with `etag` now sits at `quarantine_key`: its pending entry (if
/// it has one) takes that key's name. Whether it has one.
pub async fn quarantined(
    store: &dyn ObjectStore,
    dataset: &str,
    landing_key: &str,
    etag: &str,
    quarantine_key: &str,
) -> Result<bool, StoreError> {
    move_once(
        store,
        &entry_at(dataset, &validated_id(landing_key, etag)),
        &entry_at(dataset, &quarantined_id(quarantine_key)),
    )
    .await
}

/// Records the file approved from `quarantine_key` to `raw_key` (table `table`) from its pending
/// entry: its runs moved into `keys/`, then checksum, order marker and entry as a promotion
/// writes them. `false` when it has no usable entry: none, or one taken for other key columns
/// than the contract's `columns` now (discarded), or whose runs are gone; the caller then
/// reads the file.
pub async fn approve(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    quarantine_key: &str,
    raw_key: &str,
    columns: &[String],
    now_ms: u64,
) -> Result<bool, StoreError> {
    let id = quarantined_id(quarantine_key);
    let Some(p) = get_json::<Pending>(store, &entry_at(dataset, &id)).await? else {
        return Ok(false);
    };
    let sorted = |c: &[String]| {
        let mut c = c.to_vec();
        c.sort();
        c
    };
    if p.table != table || sorted(&p.entry.key_columns) != sorted(columns) {
        discard(store, dataset, &id).await?;
        return Ok(false);
    }
    let file = file_id(raw_key);
    for column in &p.entry.key_columns {
        let to = run_key(dataset, table, column, &file);
        if !move_once(store, &run_at(dataset, &p.runs_id, column), &to).await? {
            discard(store, dataset, &id).await?;
            return Ok(false);
        }
    }
    let entry = FileEntry {
        key: raw_key.to_owned(),
        ..p.entry
    };
    finish_record(store, dataset, table, &entry, now_ms).await?;
    store.delete(&entry_at(dataset, &id)).await?;
    Ok(true)
}

/// Removes the pending entry `id` ([`validated_id`] or [`quarantined_id`]) and its runs; the
/// entry last, so a retry still finds the runs to delete.
pub async fn discard(store: &dyn ObjectStore, dataset: &str, id: &str) -> Result<(), StoreError> {
    let at = entry_at(dataset, id);
    if let Some(p) = get_json::<Pending>(store, &at).await? {
        for column in &p.entry.key_columns {
            store.delete(&run_at(dataset, &p.runs_id, column)).await?;
        }
    }
    store.delete(&at).await
}

/// Moves `from` to `to`, an object only this index writes under either name: a retry that
/// finds `from` gone and `to` there is done, and a `to` already there (a copy that an
/// interrupted move left) holds the same bytes. Whether the object is at `to` now.
async fn move_once(store: &dyn ObjectStore, from: &str, to: &str) -> Result<bool, StoreError> {
    if store.head(from).await?.is_none() {
        return Ok(store.head(to).await?.is_some());
    }
    match store.move_object(from, to).await {
        Ok(_) => Ok(true),
        Err(StoreError::DestinationExists(_)) => {
            store.delete(from).await?;
            Ok(true)
        }
        Err(e) => Err(e),
    }
}
