//! What a crawl changed in the catalog, against the table fingerprints the workflow knows.

use std::collections::BTreeMap;

use lakegate_activities::ports::TableInfo;
use lakegate_models::{CrawlRecord, TableFingerprint};

/// Puts the tables a crawl created or changed (against `known`, which it updates) in `record`.
pub(super) fn record_changes(
    record: &mut CrawlRecord,
    known: &mut BTreeMap<String, TableFingerprint>,
    tables: &[TableInfo],
    dataset: &str,
) {
    let (created, updated) = catalog_changes(known, tables, dataset);
    record.tables_created = created;
    record.tables_updated = updated;
}

/// Compares the catalog with what was known and returns (created, updated) table names.
fn catalog_changes(
    known: &mut BTreeMap<String, TableFingerprint>,
    tables: &[TableInfo],
    dataset: &str,
) -> (Vec<String>, Vec<String>) {
    let mut created = Vec::new();
    let mut updated = Vec::new();
    let folder = format!("/raw/{dataset}/");
    for table in tables
        .iter()
        .filter(|t| dataset.is_empty() || t.location.contains(&folder))
    {
        let fingerprint = TableFingerprint {
            columns: table
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.data_type))
                .collect(),
            partitions: table.partitions.len(),
        };
        match known.insert(table.name.clone(), fingerprint.clone()) {
            None => created.push(table.name.clone()),
            Some(previous) if previous != fingerprint => updated.push(table.name.clone()),
            Some(_) => {}
        }
    }
    (created, updated)
}
