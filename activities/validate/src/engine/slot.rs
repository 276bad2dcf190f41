//! A rule being evaluated over the rows: its failure count and first failing rows, then its
//! outcome in the report.

use lakegate_models::RuleOutcome;

use crate::contract::Level;

/// One rule being evaluated: failures are counted in full, row numbers kept up to K.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) id: &'static str,
    pub(super) column: Option<String>,
    pub(super) severity: Level,
    pub(super) failures: u64,
    pub(super) first_rows: Vec<u64>,
    pub(super) detail: String,
    /// Set when passing is decided by something other than "no failing row" (completeness).
    pub(super) decided: Option<bool>,
    /// The row last counted: a row fails a rule once, however many array elements fail it.
    last_row: u64,
}

impl Slot {
    pub(super) fn new(id: &'static str, column: Option<&str>, severity: Level) -> Self {
        Self {
            id,
            column: column.map(str::to_owned),
            severity,
            failures: 0,
            first_rows: Vec::new(),
            detail: String::new(),
            decided: None,
            last_row: u64::MAX,
        }
    }

    #[inline]
    pub(super) fn hit(&mut self, row: u64, k: usize) {
        if self.last_row == row {
            return;
        }
        self.last_row = row;
        self.failures += 1;
        if self.first_rows.len() < k {
            self.first_rows.push(row);
        }
    }

    pub(super) fn into_outcome(self) -> RuleOutcome {
        let passed = self.decided.unwrap_or(self.failures == 0);
        RuleOutcome {
            rule: self.id.into(),
            column: self.column,
            severity: self.severity.into(),
            passed,
            failures: self.failures,
            first_rows: self.first_rows,
            detail: self.detail,
        }
    }
}
