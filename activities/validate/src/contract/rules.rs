//! The rule list of a table: every check a contract can name, with its parameters.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CaseRule, HeaderMode, Level, PhiDetector};

/// Restricts a rule to the rows where `column` holds one of `in` (exact, case-sensitive), e.g.
/// a code pattern that only holds for one code system.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub column: String,
    #[serde(rename = "in")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CompareOp {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = ">")]
    Gt,
}

impl CompareOp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Ge => a >= b,
            Self::Gt => a > b,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Ge => ">=",
            Self::Gt => ">",
        }
    }
}

/// One check. `rule` names it; `severity` defaults to `error`. Rules on a column must name a
/// declared column. A rule with the same id and column as a built-in one replaces it, which is
/// how a built-in check is made a warning.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleSpec {
    // --- file ---
    /// The file name (last path segment of the key) matches a regular expression.
    FileName {
        pattern: String,
        #[serde(default)]
        severity: Level,
    },
    /// The file name ends in one of these extensions (without the dot, e.g. `csv`, `csv.gz`).
    Extension {
        allowed: Vec<String>,
        #[serde(default)]
        severity: Level,
    },
    /// Bytes as stored lie within bounds.
    Size {
        #[serde(default)]
        min_bytes: Option<u64>,
        #[serde(default)]
        max_bytes: Option<u64>,
        #[serde(default)]
        severity: Level,
    },
    /// At least one data row (built in).
    NotEmpty {
        #[serde(default)]
        severity: Level,
    },
    /// Text is valid UTF-8 (built in when `encoding: utf-8`; a BOM is accepted).
    Utf8 {
        #[serde(default)]
        severity: Level,
    },
    /// The CSV header matches the declared columns (built in with mode `exact`).
    HeaderMatches {
        #[serde(default)]
        mode: HeaderMode,
        #[serde(default)]
        case: CaseRule,
        #[serde(default)]
        severity: Level,
    },
    /// Number of data rows lies within bounds.
    RowCount {
        #[serde(default)]
        min: Option<u64>,
        #[serde(default)]
        max: Option<u64>,
        #[serde(default)]
        severity: Level,
    },
    /// The file's SHA-256 is not that of a file already promoted in this dataset, whatever its
    /// name or day (the ingest activity looks it up in the lake's checksum index; offline, the
    /// caller supplies known checksums).
    DuplicateFile {
        #[serde(default)]
        severity: Level,
    },
    /// The row count lies in a robust band around the last `last` promoted files of the table:
    /// the median, plus or minus `deviations` scaled MADs (1.4826 x the median absolute
    /// deviation), and never narrower than `tolerance` x the median either side. Passes while
    /// fewer than `min_history` files were promoted. Checked by the ingest activity only.
    RowCountAnomaly {
        #[serde(default = "default_last")]
        last: u32,
        #[serde(default = "default_min_history")]
        min_history: u32,
        #[serde(default = "default_deviations")]
        deviations: f64,
        #[serde(default = "default_tolerance")]
        tolerance: f64,
        #[serde(default)]
        severity: Level,
    },
    /// The CSV header has the same columns as the last promoted file of the table: none gained,
    /// none lost (order aside). Checked by the ingest activity only.
    SchemaDrift {
        #[serde(default)]
        severity: Level,
    },
    // --- column ---
    /// Not null and not blank.
    Required {
        column: String,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Not null (missing, JSON null, empty or a `null_values` token).
    NotNull {
        column: String,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Not null and not whitespace only.
    NotBlank {
        column: String,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values parse as the column's declared type (built in for typed columns).
    Type {
        column: String,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values match a regular expression (anchor it with `^...$` for a full match).
    Regex {
        column: String,
        pattern: String,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values are one of a set.
    AllowedValues {
        column: String,
        values: Vec<String>,
        #[serde(default)]
        case: CaseRule,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null numeric values lie within bounds (inclusive).
    Range {
        column: String,
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null date/timestamp values lie within bounds (inclusive), bounds written
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`.
    DateRange {
        column: String,
        #[serde(default)]
        min: Option<String>,
        #[serde(default)]
        max: Option<String>,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values have at most `max` characters.
    MaxLength {
        column: String,
        max: u64,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values are distinct within the file. Memory: 8 bytes per distinct value up to
    /// `max_distinct` (default 1,000,000, about 18 MB); beyond it new values are only checked
    /// against those already tracked, and the report says so.
    Unique {
        column: String,
        #[serde(default)]
        max_distinct: Option<u64>,
        #[serde(default)]
        severity: Level,
    },
    /// At least `min_ratio` (0..=1) of the rows have a non-null value, e.g. 0.98.
    Completeness {
        column: String,
        min_ratio: f64,
        #[serde(default)]
        severity: Level,
    },
    /// Non-null values of `column` stand in relation `op` to those of `other` in the same row,
    /// e.g. `end_date >= start_date`. Both columns are numeric, or both dates/timestamps; rows
    /// where either is null or unparsable are skipped (the type rule reports those).
    Compare {
        column: String,
        op: CompareOp,
        other: String,
        /// Only rows where another column has one of the given values.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        when: Option<When>,
        #[serde(default)]
        severity: Level,
    },
    // --- row ---
    /// Every CSV record has as many fields as the header (built in for CSV).
    ColumnCount {
        #[serde(default)]
        severity: Level,
    },
    /// Every line is a FHIR resource with `resourceType` (the declared one) and `id` (built in for `fhir`).
    FhirResource {
        #[serde(default)]
        severity: Level,
    },
    // --- PHI ---
    /// Scan columns not declared `identifier: true` or `phi: allowed` for values that look like
    /// HIPAA Safe Harbor identifiers. Columns declared `phi: forbidden` are scanned even without it.
    Phi {
        /// Which detectors run; all of them when unset.
        #[serde(default)]
        detectors: Option<Vec<PhiDetector>>,
        /// A regular expression for this source's MRNs, replacing the default `MRN` + digits.
        #[serde(default)]
        mrn_pattern: Option<String>,
        #[serde(default)]
        severity: Level,
    },
}

impl RuleSpec {
    /// The stable rule id used in reports.
    pub fn id(&self) -> &'static str {
        match self {
            Self::FileName { .. } => "file_name",
            Self::Extension { .. } => "extension",
            Self::Size { .. } => "size",
            Self::NotEmpty { .. } => "not_empty",
            Self::Utf8 { .. } => "utf8",
            Self::HeaderMatches { .. } => "header_matches",
            Self::RowCount { .. } => "row_count",
            Self::DuplicateFile { .. } => "duplicate_file",
            Self::Required { .. } => "required",
            Self::NotNull { .. } => "not_null",
            Self::NotBlank { .. } => "not_blank",
            Self::Type { .. } => "type",
            Self::Regex { .. } => "regex",
            Self::AllowedValues { .. } => "allowed_values",
            Self::Range { .. } => "range",
            Self::DateRange { .. } => "date_range",
            Self::MaxLength { .. } => "max_length",
            Self::Unique { .. } => "unique",
            Self::Completeness { .. } => "completeness",
            Self::ColumnCount { .. } => "column_count",
            Self::FhirResource { .. } => "fhir_resource",
            Self::Phi { .. } => "phi",
            Self::Compare { .. } => "compare",
            Self::RowCountAnomaly { .. } => "row_count_anomaly",
            Self::SchemaDrift { .. } => "schema_drift",
        }
    }

    pub fn severity(&self) -> Level {
        match self {
            Self::FileName { severity, .. }
            | Self::Extension { severity, .. }
            | Self::Size { severity, .. }
            | Self::NotEmpty { severity }
            | Self::Utf8 { severity }
            | Self::HeaderMatches { severity, .. }
            | Self::RowCount { severity, .. }
            | Self::DuplicateFile { severity }
            | Self::Required { severity, .. }
            | Self::NotNull { severity, .. }
            | Self::NotBlank { severity, .. }
            | Self::Type { severity, .. }
            | Self::Regex { severity, .. }
            | Self::AllowedValues { severity, .. }
            | Self::Range { severity, .. }
            | Self::DateRange { severity, .. }
            | Self::MaxLength { severity, .. }
            | Self::Unique { severity, .. }
            | Self::Completeness { severity, .. }
            | Self::ColumnCount { severity }
            | Self::FhirResource { severity }
            | Self::Phi { severity, .. }
            | Self::Compare { severity, .. }
            | Self::RowCountAnomaly { severity, .. }
            | Self::SchemaDrift { severity } => *severity,
        }
    }

    /// The column a column rule applies to.
    pub fn column(&self) -> Option<&str> {
        match self {
            Self::Required { column, .. }
            | Self::NotNull { column, .. }
            | Self::NotBlank { column, .. }
            | Self::Type { column, .. }
            | Self::Regex { column, .. }
            | Self::AllowedValues { column, .. }
            | Self::Range { column, .. }
            | Self::DateRange { column, .. }
            | Self::MaxLength { column, .. }
            | Self::Unique { column, .. }
            | Self::Completeness { column, .. }
            | Self::Compare { column, .. } => Some(column),
            _ => None,
        }
    }

    /// The condition a column rule is restricted to, if any.
    pub fn when(&self) -> Option<&When> {
        match self {
            Self::Required { when, .. }
            | Self::NotNull { when, .. }
            | Self::NotBlank { when, .. }
            | Self::Regex { when, .. }
            | Self::AllowedValues { when, .. }
            | Self::Range { when, .. }
            | Self::DateRange { when, .. }
            | Self::MaxLength { when, .. }
            | Self::Compare { when, .. } => when.as_ref(),
            _ => None,
        }
    }
}

fn default_last() -> u32 {
    10
}
fn default_min_history() -> u32 {
    3
}
fn default_deviations() -> f64 {
    5.0
}
fn default_tolerance() -> f64 {
    0.2
}
