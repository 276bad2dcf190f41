use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What validation found in one file. Safe to show anyone: it names rules, columns, counts and
/// row numbers, never a cell value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidationReport {
    pub dataset: String,
    pub table: String,
    pub verdict: Verdict,
    /// One entry per rule that was evaluated, in contract order.
    pub rules: Vec<RuleOutcome>,
    /// Bytes read from the object (compressed size for gzip files).
    pub bytes: u64,
    /// Data rows (header excluded).
    pub rows: u64,
    /// Hex SHA-256 of the object's bytes as stored.
    pub sha256: String,
    pub duration_ms: u64,
    /// The store's ETag of the object when it was read (set by the ingest activity, not the
    /// engine): the file is moved out of landing/ only while it still has it, so bytes that
    /// were not validated are never promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ValidationReport {
    pub fn failed_rules(&self) -> impl Iterator<Item = &RuleOutcome> {
        self.rules
            .iter()
            .filter(|r| !r.passed && r.severity == Severity::Error)
    }

    /// A one-line, PHI-free reason for quarantine: the failing rule ids and their columns.
    pub fn quarantine_reason(&self) -> String {
        let failed: Vec<String> = self.failed_rules().map(RuleOutcome::label).collect();
        if failed.is_empty() {
            "none".into()
        } else {
            failed.join(", ")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Failing it quarantines the file.
    Error,
    /// Failing it is noted in the report only.
    Warn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleOutcome {
    /// Stable rule id, e.g. `header_matches` or `required`.
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub severity: Severity,
    pub passed: bool,
    /// Every failing row (or 1 for a file-level rule), counted in full.
    pub failures: u64,
    /// The first failing 1-based data row numbers, at most the engine's K.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_rows: Vec<u64>,
    /// Human text built only from rule parameters, column names and counts.
    pub detail: String,
}

impl RuleOutcome {
    /// `rule`, or `rule(column)` for a column's rule: how reasons and listings name it.
    pub fn label(&self) -> String {
        match &self.column {
            Some(c) => format!("{}({c})", self.rule),
            None => self.rule.clone(),
        }
    }
}
