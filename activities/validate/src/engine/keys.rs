//! Key values, for the lake's per-table key index and for `references`. A value is kept as a
//! 64-bit hash with a fixed key ([`key_hash`]): the index holds no identifier in clear, a sorted
//! run of 8-byte hashes per promoted file is compact, and two distinct values collide with
//! probability about 2^-64.

use std::collections::HashMap;

use lakegate_models::{RuleOutcome, Severity, ValidationReport, Verdict};

use super::cells::hash_value;
use crate::contract::Reference;

/// The key of [`key_hash`]. Index runs are named `.k1`: changing this (or the hash) needs a new
/// name, or every run already in a lake stops matching.
const INDEX_SEED: u64 = 0x6c61_6b65_6761_7465;

/// Distinct values a file's key column may add to the index before its run is cut short.
pub const MAX_INDEXED_KEYS: usize = 8_000_000;

/// The stable hash of a key value, as index runs store it.
pub fn key_hash(v: &[u8]) -> u64 {
    hash_value(INDEX_SEED, v)
}

/// The values of one column a promoted file adds to the key index.
#[derive(Debug, Clone, Default)]
pub struct CollectedKeys {
    pub column: String,
    /// Sorted, distinct [`key_hash`]es.
    pub hashes: Vec<u64>,
    /// More than [`MAX_INDEXED_KEYS`] distinct values: the run holds the first ones only.
    pub truncated: bool,
}

impl CollectedKeys {
    pub(super) fn new(column: &str) -> Self {
        Self {
            column: column.to_owned(),
            ..Self::default()
        }
    }

    #[inline]
    pub(super) fn add(&mut self, v: &[u8]) {
        if self.hashes.len() < MAX_INDEXED_KEYS {
            self.hashes.push(key_hash(v));
        } else {
            self.truncated = true;
        }
    }

    pub(super) fn finish(&mut self) {
        self.hashes.sort_unstable();
        self.hashes.dedup();
    }
}

/// A `references` check waiting for the referenced table's key runs: the column's distinct
/// values (hashed), the row each first appeared in and how many rows had it. Marking runs
/// removes the values found; what remains is orphaned.
#[derive(Debug, Clone)]
pub struct ReferenceProbe {
    pub column: String,
    pub reference: Reference,
    values: HashMap<u64, (u64, u64)>,
    max: usize,
    saturated: bool,
}

impl ReferenceProbe {
    pub(super) fn new(column: &str, reference: &Reference) -> Self {
        Self {
            column: column.to_owned(),
            reference: reference.clone(),
            values: HashMap::new(),
            max: reference
                .max_distinct
                .map_or(1_000_000, |m| usize::try_from(m).unwrap_or(usize::MAX)),
            saturated: false,
        }
    }

    #[inline]
    pub(super) fn add(&mut self, v: &[u8], row: u64) {
        let v = match &self.reference.strip_prefix {
            Some(p) => v.strip_prefix(p.as_bytes()).unwrap_or(v),
            None => v,
        };
        let h = key_hash(v);
        if let Some(e) = self.values.get_mut(&h) {
            e.1 += 1;
        } else if self.values.len() < self.max {
            self.values.insert(h, (row, 1));
        } else {
            self.saturated = true;
        }
    }

    /// Values still unaccounted for.
    pub fn pending(&self) -> usize {
        self.values.len()
    }

    /// Drops the values found in `hashes` (one sorted run, or any slice).
    pub fn mark_found(&mut self, hashes: &[u64]) {
        if self.values.is_empty() {
            return;
        }
        for h in hashes {
            self.values.remove(h);
        }
    }

    /// The `references` outcome: rows whose value no run had, and the rows where the first
    /// orphan values first appeared.
    pub fn outcome(self, k: usize) -> RuleOutcome {
        let failures: u64 = self.values.values().map(|(_, n)| n).sum();
        let mut first_rows: Vec<u64> = self.values.values().map(|(r, _)| *r).collect();
        first_rows.sort_unstable();
        first_rows.truncate(k);
        let orphans = self.values.len();
        let mut detail = format!(
            "values not found in {}.{} (onboarded or in this batch): {orphans} distinct, rows listed where each first appears",
            self.reference.table, self.reference.column
        );
        if self.saturated {
            detail.push_str(&format!(
                "; only the first {} distinct values were checked",
                self.max
            ));
        }
        RuleOutcome {
            rule: "references".into(),
            column: Some(self.column),
            severity: self.reference.severity.into(),
            passed: failures == 0,
            failures,
            first_rows,
            detail,
        }
    }
}

/// Appends `outcome` to the report (replacing one of the same rule and column) and decides
/// the verdict again.
pub fn set_outcome(report: &mut ValidationReport, outcome: RuleOutcome) {
    match report
        .rules
        .iter_mut()
        .find(|r| r.rule == outcome.rule && r.column == outcome.column)
    {
        Some(r) => *r = outcome,
        None => report.rules.push(outcome),
    }
    report.verdict = if report
        .rules
        .iter()
        .any(|r| !r.passed && r.severity == Severity::Error)
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
}
