//! Key values, for the lake's per-table key index and for `references`. A value is kept as a
//! 64-bit hash with a fixed key ([`key_hash`]): the index holds no identifier in clear, a sorted
//! run of 8-byte hashes per promoted file is compact, and two distinct values collide with
//! probability about 2^-64.

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
/// marks the values found; what remains is orphaned.
///
/// Values are appended as they come and folded, sorted, into one array by hash now and then,
/// rather than kept in a hash map: appending touches memory in order, where a map of a
/// million patient ids misses the cache on every row; and a sorted array meets the sorted
/// key runs of the index in one merge. A fold waits until half as many values came as are
/// held, so each value is merged a bounded number of times on average, and the values waiting
/// take half the memory of those held.
#[derive(Debug, Clone)]
pub struct ReferenceProbe {
    pub column: String,
    pub reference: Reference,
    /// Distinct values, sorted by hash.
    values: Vec<Seen>,
    /// Values since the last fold, in row order, one per row.
    recent: Vec<Seen>,
    /// Values in `values` no run has had yet.
    pending: usize,
    max: usize,
    saturated: bool,
}

/// One distinct value of a probed column. `rows` is 0 once a run had the value.
#[derive(Debug, Clone, Copy)]
struct Seen {
    hash: u64,
    first_row: u64,
    rows: u64,
}

/// Values gathered before the first fold: small files fold once, at the end.
const FIRST_FOLD: usize = 1 << 16;

impl ReferenceProbe {
    pub(super) fn new(column: &str, reference: &Reference) -> Self {
        Self {
            column: column.to_owned(),
            reference: reference.clone(),
            values: Vec::new(),
            recent: Vec::new(),
            pending: 0,
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
        self.recent.push(Seen {
            hash: key_hash(v),
            first_row: row,
            rows: 1,
        });
        if self.recent.len() >= (self.values.len() / 2).max(FIRST_FOLD) {
            self.fold_for_more();
        }
    }

    /// Folds the values added since the last fold into `values`: counts rows of values
    /// already held, and adds new ones while fewer than `max` are held, the earliest first
    /// (as they would have come one by one).
    fn fold(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut recent = std::mem::take(&mut self.recent);
        recent.sort_unstable_by_key(|s| (s.hash, s.first_row));
        recent.dedup_by(|later, kept| {
            let same = later.hash == kept.hash;
            if same {
                kept.rows += later.rows;
            }
            same
        });
        let mut at = 0;
        recent.retain(|r| {
            at = seek(&self.values, at, r.hash);
            match self.values.get_mut(at) {
                Some(held) if held.hash == r.hash => {
                    // A value a run already had stays found.
                    if held.rows > 0 {
                        held.rows += r.rows;
                        held.first_row = held.first_row.min(r.first_row);
                    }
                    false
                }
                _ => true,
            }
        });
        let room = self.max.saturating_sub(self.values.len());
        if recent.len() > room {
            self.saturated = true;
            if room > 0 {
                recent.select_nth_unstable_by_key(room - 1, |s| s.first_row);
            }
            recent.truncate(room);
            recent.sort_unstable_by_key(|s| s.hash);
        }
        self.pending += recent.len();
        merge_sorted(&mut self.values, &recent);
    }

    /// A fold while values still come, with room for exactly those of the next: a doubled
    /// capacity would hold as much as `values` does.
    #[cold]
    fn fold_for_more(&mut self) {
        self.fold();
        self.recent
            .reserve_exact((self.values.len() / 2).max(FIRST_FOLD));
    }

    /// Values still unaccounted for.
    pub fn pending(&self) -> usize {
        debug_assert!(self.recent.is_empty(), "a probe is read once folded");
        self.pending
    }

    /// Marks the values found in `hashes`, one sorted run (any other slice is sorted first).
    pub fn mark_found(&mut self, hashes: &[u64]) {
        self.fold();
        if self.pending == 0 {
            return;
        }
        let sorted;
        let hashes = if hashes.is_sorted() {
            hashes
        } else {
            sorted = {
                let mut h = hashes.to_vec();
                h.sort_unstable();
                h
            };
            &sorted
        };
        let mut at = 0;
        for &h in hashes {
            at = seek(&self.values, at, h);
            match self.values.get_mut(at) {
                Some(held) if held.hash == h => {
                    if held.rows > 0 {
                        held.rows = 0;
                        self.pending -= 1;
                        if self.pending == 0 {
                            return;
                        }
                    }
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    /// The `references` outcome: rows whose value no run had, and the rows where the first
    /// orphan values first appeared.
    pub fn outcome(mut self, k: usize) -> RuleOutcome {
        self.fold();
        let orphans = self.values.iter().filter(|s| s.rows > 0);
        let failures: u64 = orphans.clone().map(|s| s.rows).sum();
        let mut first_rows: Vec<u64> = orphans.map(|s| s.first_row).collect();
        first_rows.sort_unstable();
        first_rows.truncate(k);
        let orphans = self.pending;
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

    pub(super) fn finish(&mut self) {
        self.fold();
    }
}

/// The first index at or after `from` whose value's hash is not below `h`: a galloping
/// search, so ascending lookups cost what a merge costs when dense and what a binary search
/// costs when sparse.
fn seek(values: &[Seen], from: usize, h: u64) -> usize {
    let mut bound = 1;
    while from + bound < values.len() && values[from + bound].hash < h {
        bound *= 2;
    }
    let lo = (from + bound / 2).min(values.len());
    let hi = (from + bound + 1).min(values.len());
    lo + values[lo..hi].partition_point(|s| s.hash < h)
}

/// Merges `new` (sorted, no hash of `values`) into `values` (sorted), in place from the back.
fn merge_sorted(values: &mut Vec<Seen>, new: &[Seen]) {
    let mut i = values.len();
    let mut j = new.len();
    let filler = Seen {
        hash: 0,
        first_row: 0,
        rows: 0,
    };
    // Exactly: a doubled capacity would be the largest part of the probe's memory.
    values.reserve_exact(j);
    values.resize(i + j, filler);
    while j > 0 {
        let out = i + j - 1;
        if i > 0 && values[i - 1].hash > new[j - 1].hash {
            values[out] = values[i - 1];
            i -= 1;
        } else {
            values[out] = new[j - 1];
            j -= 1;
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::contract::Level;

    fn probe(max: u64) -> ReferenceProbe {
        let reference = Reference {
            table: "person".into(),
            column: "person_id".into(),
            severity: Level::Error,
            max_distinct: Some(max),
            strip_prefix: None,
        };
        ReferenceProbe::new("person_id", &reference)
    }

    /// What a probe must answer, kept the plain way: a map filled in row order.
    #[derive(Default)]
    struct Model {
        values: HashMap<u64, (u64, u64)>,
        max: usize,
        saturated: bool,
    }

    impl Model {
        fn add(&mut self, v: &[u8], row: u64) {
            let h = key_hash(v);
            if let Some(e) = self.values.get_mut(&h) {
                e.1 += 1;
            } else if self.values.len() < self.max {
                self.values.insert(h, (row, 1));
            } else {
                self.saturated = true;
            }
        }

        fn outcome(&self, k: usize) -> (u64, Vec<u64>, usize, bool) {
            let mut rows: Vec<u64> = self.values.values().map(|(r, _)| *r).collect();
            rows.sort_unstable();
            rows.truncate(k);
            let failures = self.values.values().map(|(_, n)| n).sum();
            (failures, rows, self.values.len(), self.saturated)
        }
    }

    /// Folds several times over (more values than the first fold holds), with repeats far
    /// apart, a cap that is reached part way, and runs marked sparse, dense and unsorted: the
    /// same counts, first rows and saturation as the plain map.
    #[test]
    fn folded_probes_answer_what_a_plain_map_answers() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for (rows, space, max) in [
            (10u64, 5u64, 100u64),
            (300_000, 250_000, 1_000_000),
            (300_000, 250_000, 90_000),
            (200_000, 40, 1_000_000),
        ] {
            let mut p = probe(max);
            let mut m = Model {
                max: usize::try_from(max).unwrap(),
                ..Model::default()
            };
            let values: Vec<String> = (0..rows).map(|_| format!("P{}", next(space))).collect();
            for (row, v) in values.iter().enumerate() {
                let row = row as u64 + 1;
                p.add(v.as_bytes(), row);
                m.add(v.as_bytes(), row);
            }
            p.finish();
            assert_eq!(p.pending(), m.values.len(), "{rows} rows of {space}");

            // A sparse sorted run, then an unsorted dense one: every third value is onboarded.
            let mut sparse: Vec<u64> = (0..space)
                .step_by(997)
                .map(|i| key_hash(format!("P{i}").as_bytes()))
                .collect();
            sparse.sort_unstable();
            let mut dense: Vec<u64> = (0..space)
                .filter(|i| i % 3 == 0)
                .map(|i| key_hash(format!("P{i}").as_bytes()))
                .collect();
            dense.reverse();
            for run in [&sparse, &dense] {
                p.mark_found(run);
                for h in run.iter() {
                    m.values.remove(h);
                }
                assert_eq!(p.pending(), m.values.len(), "{rows} rows of {space}");
            }
            let (failures, first_rows, orphans, saturated) = m.outcome(20);
            let o = p.outcome(20);
            assert_eq!(o.failures, failures, "{rows} rows of {space}");
            assert_eq!(o.first_rows, first_rows, "{rows} rows of {space}");
            assert!(
                o.detail.contains(&format!(": {orphans} distinct")),
                "{}",
                o.detail
            );
            assert_eq!(
                o.detail.contains("only the first"),
                saturated,
                "{}",
                o.detail
            );
            assert_eq!(saturated, max < space.min(rows), "the cases cover both");
        }
    }
}
