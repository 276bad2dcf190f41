//! The lake's history indexes, kept beside the zones under `index/<dataset>/`, written when a
//! file reaches raw/ (`validate_and_promote`, or the `move_object` of an approval), removed when
//! it leaves (the `move_object` of a retract), and read by the history and cross-file rules of
//! the next files:
//!
//! - `index/<dataset>/sha256/<hex>.json`: one per promoted content, `{key, table}` and the
//!   approved twins with the same bytes, for `duplicate_file` (the same bytes under any name or
//!   day of the dataset);
//! - `index/<dataset>/<table>/files/<id>.json`: one per promoted file (`id` a hash of its raw
//!   key), holding its row count and header, for `row_count_anomaly` and `schema_drift`, and the
//!   names of its other entries (key columns, order marker) for retraction, and
//!   `index/<dataset>/<table>/order/<ms>-<id>`, empty, so a listing is in promotion order;
//! - `index/<dataset>/<table>/keys/<column>/<id>.k1`: the sorted distinct key hashes
//!   ([`lakegate_validate::key_hash`], little-endian u64s) of each column another table
//!   `references`, one run per promoted file.
//!
//! Writes are idempotent: names depend only on the raw key (a retried promotion finds its
//! file entry and writes nothing new), runs and checksum entries are rewritten with the same
//! bytes, and the file entry is written last, so an entry means its runs are complete.
//! [`remove_file`] takes a file's entries out again (retraction); [`pending`] keeps a
//! quarantined file's entries until its approval records them. No cell value is stored in
//! clear; hashes of identifiers are pseudonymous, so the `index/` prefix belongs in the same
//! access policy as raw/.

use std::collections::BTreeMap;

use bytes::Bytes;
use lakegate_models::short_hash;
use lakegate_validate::history::TableHistory;
use lakegate_validate::{CollectedKeys, ReferenceProbe};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

use crate::ports::{ObjectStore, StoreError};

use lakegate_models::INDEX_ZONE;

/// The most recent file entries read for `row_count_anomaly` (its `last` is capped here).
pub const MAX_HISTORY: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The raw/ key the file was promoted to.
    pub key: String,
    pub sha256: String,
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Vec<String>>,
    /// Key columns with a run under `keys/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_columns: Vec<String>,
    /// Some key column had more distinct values than a run holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keys_truncated: bool,
    /// The name of its order marker under `order/`, so a retraction finds it without listing
    /// them all. `None` in entries written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ChecksumEntry {
    key: String,
    table: String,
    /// The other promoted files with these bytes (approved duplicates), `(key, table)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    others: Vec<(String, String)>,
    /// `others` names every one of them. Entries written before it was kept are not complete:
    /// a retraction then lists the dataset's file entries to find a twin.
    #[serde(default)]
    complete: bool,
}

fn dataset_prefix(dataset: &str) -> String {
    format!("{INDEX_ZONE}{dataset}/")
}

fn entry_key(dataset: &str, table: &str, id: &str) -> String {
    format!("{INDEX_ZONE}{dataset}/{table}/files/{id}.json")
}

fn order_prefix(dataset: &str, table: &str) -> String {
    format!("{INDEX_ZONE}{dataset}/{table}/order/")
}

fn keys_prefix(dataset: &str, table: &str, column: &str) -> String {
    // A column path may hold `*` or dots; hashed it is always one safe segment.
    format!("{INDEX_ZONE}{dataset}/{table}/keys/{}/", short_hash(column))
}

fn checksum_key(dataset: &str, sha256: &str) -> String {
    format!(
        "{}sha256/{}.json",
        dataset_prefix(dataset),
        sha256.to_ascii_lowercase()
    )
}

/// The id of a raw key in index names.
pub fn file_id(raw_key: &str) -> String {
    short_hash(raw_key)
}

async fn read_all(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>, StoreError> {
    let mut stream = store.get(key).await?;
    let mut out = Vec::new();
    stream
        .read_to_end(&mut out)
        .await
        .map_err(|source| StoreError::Io {
            key: crate::ports::KeyTag(key.to_owned()),
            operation: "read index",
            source,
        })?;
    Ok(out)
}

pub(crate) async fn get_json<T: for<'de> Deserialize<'de>>(
    store: &dyn ObjectStore,
    key: &str,
) -> Result<Option<T>, StoreError> {
    if store.head(key).await?.is_none() {
        return Ok(None);
    }
    // An entry that does not parse (a partial write from another tool) counts as absent.
    Ok(serde_json::from_slice(&read_all(store, key).await?).ok())
}

/// The table's promoted files, oldest first: (order marker key, file id).
async fn entries(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let prefix = order_prefix(dataset, table);
    let mut out: Vec<(String, String)> = store
        .list(&prefix)
        .await?
        .into_iter()
        .filter_map(|o| {
            let (_, id) = o.key.strip_prefix(&prefix)?.split_once('-')?;
            Some((o.key.clone(), id.to_owned()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// What the index says about `table` of `dataset` before the file with content `sha256`
/// joins it; entries of `own_keys` (the file's own raw keys, on a retry) are left out.
pub async fn history(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    sha256: &str,
    own_keys: &[&str],
    last: usize,
) -> Result<TableHistory, StoreError> {
    let own: Vec<String> = own_keys.iter().map(|k| file_id(k)).collect();
    let mut listed = entries(store, dataset, table).await?;
    listed.retain(|(_, id)| !own.contains(id));
    let take = last.min(MAX_HISTORY).min(listed.len());
    let mut recent = Vec::new();
    for (_, id) in &listed[listed.len() - take..] {
        if let Some(e) = get_json::<FileEntry>(store, &entry_key(dataset, table, id)).await? {
            recent.push(e);
        }
    }
    let duplicate = !sha256.is_empty()
        && get_json::<ChecksumEntry>(store, &checksum_key(dataset, sha256))
            .await?
            .is_some_and(|e| !own_keys.contains(&e.key.as_str()));
    Ok(TableHistory {
        recent_rows: recent.iter().map(|e| e.rows).collect(),
        last_header: recent.last().and_then(|e| e.header.clone()),
        duplicate,
    })
}

/// Records a promoted file: its key runs, its checksum, then its entry. Does nothing new when
/// the file's entry already exists (a retried promotion).
pub async fn record(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    entry: &FileEntry,
    keys: &[CollectedKeys],
    now_ms: u64,
) -> Result<(), StoreError> {
    let id = file_id(&entry.key);
    if is_recorded(store, dataset, table, &entry.key).await? {
        return Ok(());
    }
    for k in keys {
        store
            .put(
                &run_key(dataset, table, &k.column, &id),
                encode_run(&k.hashes),
            )
            .await?;
    }
    write_record(store, dataset, table, entry, now_ms).await
}

/// Whether the file promoted to `raw_key` has its entry (so its runs are complete).
pub async fn is_recorded(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    raw_key: &str,
) -> Result<bool, StoreError> {
    let at = entry_key(dataset, table, &file_id(raw_key));
    Ok(store.head(&at).await?.is_some())
}

/// Where the run of `column` of the file `id` lives.
fn run_key(dataset: &str, table: &str, column: &str, id: &str) -> String {
    format!("{}{id}.k1", keys_prefix(dataset, table, column))
}

/// A run as stored: its hashes as little-endian u64s.
fn encode_run(hashes: &[u64]) -> Bytes {
    let mut run = Vec::with_capacity(hashes.len() * 8);
    for h in hashes {
        run.extend_from_slice(&h.to_le_bytes());
    }
    Bytes::from(run)
}

/// The rest of [`record`] once the file's runs are in `keys/`: its checksum, order marker and
/// entry. Nothing when the entry exists already (a retry that had got this far).
async fn finish_record(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    entry: &FileEntry,
    now_ms: u64,
) -> Result<(), StoreError> {
    if is_recorded(store, dataset, table, &entry.key).await? {
        return Ok(());
    }
    write_record(store, dataset, table, entry, now_ms).await
}

/// [`finish_record`] for a caller that has just found the entry missing.
async fn write_record(
    store: &dyn ObjectStore,
    dataset: &str,
    table: &str,
    entry: &FileEntry,
    now_ms: u64,
) -> Result<(), StoreError> {
    let id = file_id(&entry.key);
    let entry_at = entry_key(dataset, table, &id);
    if !entry.sha256.is_empty() {
        let ck = checksum_key(dataset, &entry.sha256);
        let c = match get_json::<ChecksumEntry>(store, &ck).await? {
            // A retry that wrote it already.
            Some(old) if old.key == entry.key => old,
            // An approved duplicate: the file named before stays one of the content's files.
            Some(old) => {
                let mut others = old.others;
                others.retain(|(k, _)| *k != entry.key);
                others.push((old.key, old.table));
                ChecksumEntry {
                    key: entry.key.clone(),
                    table: table.to_owned(),
                    others,
                    complete: old.complete,
                }
            }
            None => ChecksumEntry {
                key: entry.key.clone(),
                table: table.to_owned(),
                others: Vec::new(),
                complete: true,
            },
        };
        let body = serde_json::to_vec(&c).unwrap_or_default();
        store.put(&ck, Bytes::from(body)).await?;
    }
    // The order marker before the entry: a crash between them leaves a marker whose entry is
    // missing (skipped by readers), and the retry, finding no entry, writes both again.
    let name = format!("{now_ms:013}-{id}");
    store
        .put(
            &format!("{}{name}", order_prefix(dataset, table)),
            Bytes::new(),
        )
        .await?;
    let entry = FileEntry {
        order: Some(name),
        ..entry.clone()
    };
    let body = serde_json::to_vec(&entry).unwrap_or_default();
    store.put(&entry_at, Bytes::from(body)).await?;
    Ok(())
}

/// Probes `probes` with every run of the tables and columns they reference, one run in memory
/// at a time, stopping as soon as nothing is pending. Runs of `skip_keys` (the file itself)
/// are left out.
pub async fn probe_references(
    store: &dyn ObjectStore,
    dataset: &str,
    probes: &mut [ReferenceProbe],
) -> Result<(), StoreError> {
    let mut by_target: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, p) in probes.iter().enumerate() {
        by_target
            .entry((p.reference.table.clone(), p.reference.column.clone()))
            .or_default()
            .push(i);
    }
    for ((table, column), users) in by_target {
        // Only runs whose file entry exists: a run without one is a promotion still being
        // recorded, or a retracted file's leftover.
        let live: Vec<String> = store
            .list(&format!("{INDEX_ZONE}{dataset}/{table}/files/"))
            .await?
            .into_iter()
            .filter_map(|o| {
                let name = o.key.rsplit('/').next()?;
                Some(name.strip_suffix(".json")?.to_owned())
            })
            .collect();
        let prefix = keys_prefix(dataset, &table, &column);
        for run in store.list(&prefix).await? {
            if users.iter().all(|&i| probes[i].pending() == 0) {
                break;
            }
            let Some(id) = run
                .key
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".k1"))
            else {
                continue;
            };
            if !live.iter().any(|l| l == id) {
                continue;
            }
            let hashes = decode_run(&read_all(store, &run.key).await?);
            for &i in &users {
                probes[i].mark_found(&hashes);
            }
        }
    }
    Ok(())
}

fn decode_run(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// Decides the history and cross-file rules of a validated file of `landing_key` (its
/// destination names in `own_keys`): `duplicate_file`, `row_count_anomaly` and `schema_drift`
/// from the index, `references` from the referenced tables' key runs and, for values still
/// missing, from the other files of the same landing folder (the batch).
pub async fn check_file(
    store: &std::sync::Arc<dyn ObjectStore>,
    contracts: &lakegate_validate::ContractSet,
    landing_key: &str,
    own_keys: &[&str],
    validated: &mut lakegate_validate::Validated,
) -> Result<(), StoreError> {
    let report = &validated.report;
    let Some((contract, table)) = contracts.table(&report.dataset, &report.table) else {
        return Ok(());
    };
    let dataset = contract.dataset.clone();
    let last = table
        .rules
        .iter()
        .filter_map(|r| match r {
            lakegate_validate::RuleSpec::RowCountAnomaly { last, .. } => Some(*last as usize),
            lakegate_validate::RuleSpec::DuplicateFile { .. }
            | lakegate_validate::RuleSpec::SchemaDrift { .. } => Some(1),
            _ => None,
        })
        .max();
    if let Some(last) = last {
        let h = history(
            store.as_ref(),
            &dataset,
            &table.name,
            &report.sha256,
            own_keys,
            last,
        )
        .await?;
        lakegate_validate::history::apply(
            table,
            &mut validated.report,
            validated.header.as_deref(),
            &h,
        );
    }
    if validated.references.is_empty() {
        return Ok(());
    }
    probe_references(store.as_ref(), &dataset, &mut validated.references).await?;
    if validated.references.iter().any(|p| p.pending() > 0) {
        probe_batch(
            store,
            contracts,
            &dataset,
            landing_key,
            &mut validated.references,
        )
        .await?;
    }
    for probe in std::mem::take(&mut validated.references) {
        let outcome = probe.outcome(lakegate_validate::MAX_ROWS_PER_RULE);
        lakegate_validate::set_outcome(&mut validated.report, outcome);
    }
    Ok(())
}

/// Marks the values found in the files of the referenced tables that sit in the same landing
/// folder as `landing_key` and pass their own contract: a batch whose person file lands with
/// its visits is consistent before either is promoted.
async fn probe_batch(
    store: &std::sync::Arc<dyn ObjectStore>,
    contracts: &lakegate_validate::ContractSet,
    dataset: &str,
    landing_key: &str,
    probes: &mut [ReferenceProbe],
) -> Result<(), StoreError> {
    let Some((folder, _)) = landing_key.rsplit_once('/') else {
        return Ok(());
    };
    for object in store.list(&format!("{folder}/")).await? {
        if object.key == landing_key || object.key[folder.len() + 1..].contains('/') {
            continue;
        }
        let Some((contract, table)) = contracts.resolve(&object.key) else {
            continue;
        };
        if contract.dataset != dataset {
            continue;
        }
        let columns: Vec<String> = probes
            .iter()
            .filter(|p| p.reference.table == table.name && p.pending() > 0)
            .map(|p| p.reference.column.clone())
            .collect();
        if columns.is_empty() {
            continue;
        }
        let (contract, table) = (contract.clone(), table.clone());
        let stream = store.get(&object.key).await?;
        let opts = lakegate_validate::ValidateOptions {
            name: Some(object.key.clone()),
            index_columns: columns,
            ..lakegate_validate::ValidateOptions::default()
        };
        let key = object.key.clone();
        let validated = tokio::task::spawn_blocking(move || {
            lakegate_validate::validate_full(
                &contract,
                &table,
                tokio_util::io::SyncIoBridge::new(stream),
                &opts,
            )
        })
        .await
        .map_err(|e| StoreError::Io {
            key: crate::ports::KeyTag(key.clone()),
            operation: "read batch file",
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|e| StoreError::Io {
            key: crate::ports::KeyTag(key.clone()),
            operation: "read batch file",
            source: std::io::Error::other(e.to_string()),
        })?;
        if validated.report.verdict != lakegate_models::Verdict::Pass {
            continue;
        }
        for keys in &validated.keys {
            for p in probes.iter_mut() {
                if p.reference.table == validated.report.table && p.reference.column == keys.column
                {
                    p.mark_found(&keys.hashes);
                }
            }
        }
    }
    Ok(())
}

/// The index entry of a promoted file.
pub fn entry_of(validated: &lakegate_validate::Validated, raw_key: &str) -> FileEntry {
    FileEntry {
        key: raw_key.to_owned(),
        sha256: validated.report.sha256.clone(),
        rows: validated.report.rows,
        header: validated.header.clone(),
        key_columns: validated.keys.iter().map(|k| k.column.clone()).collect(),
        keys_truncated: validated.keys.iter().any(|k| k.truncated),
        order: None,
    }
}

#[path = "index_pending.rs"]
pub mod pending;
#[path = "index_retract.rs"]
mod retract;
pub use retract::remove_file;

#[cfg(test)]
#[path = "mem_store.rs"]
pub(crate) mod mem_store;
#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
