//! The contract format: what a data steward writes, one YAML file per dataset. The types here are
//! the single source of truth for both the parser (serde) and the editor schema (schemars), so the
//! committed `contract.schema.json` cannot drift from what the loader accepts.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::datetime::DateFormat;

/// One dataset's contract, as written in `<dataset>.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lakegate dataset contract")]
pub struct Contract {
    /// Dataset name; landing keys usually carry it, e.g. `landing/<source>/<dataset>/...`.
    pub dataset: String,
    #[serde(default)]
    pub description: String,
    /// Where the catalog schema of this dataset's tables comes from (a table may override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogSource>,
    /// The tables this dataset feeds; each arriving file belongs to exactly one.
    pub tables: Vec<TableContract>,
}

/// How a table gets into the catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogSource {
    /// Registered from the declared columns, types and format, with no crawler run. A table
    /// that declares no columns is crawled whatever this says.
    #[default]
    Contract,
    /// Left to the crawler (a Glue crawler, DuckDB's sniffer locally), which infers the schema.
    Crawler,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableContract {
    pub name: String,
    /// Globs over the whole landing key, e.g. `landing/*/ehr/patients*.csv`.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Regular expressions over the whole landing key, for layouts a glob cannot say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_regex: Vec<String>,
    /// How the file is encoded. When absent: NDJSON if every key pattern ends in `.ndjson`,
    /// `.jsonl` or `.json` (optionally `.gz`), otherwise CSV with a header, `,` and `"`; UTF-8,
    /// gzip detected.
    #[serde(default, rename = "format", skip_serializing_if = "Option::is_none")]
    pub format_declared: Option<FormatSpec>,
    /// The format in force: the declared one, or the one inferred from the key patterns.
    #[serde(skip)]
    #[schemars(skip)]
    pub format: FormatSpec,
    /// Expected columns (CSV header names, or top-level/dotted field paths for NDJSON).
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    /// Checks beyond what the columns imply, each with a severity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleSpec>,
    /// Overrides the dataset's `catalog` for this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogSource>,
    /// NDJSON/FHIR: what a declared column path that no line of the file has means. Such a path
    /// is usually a typo (`birthdate` for `birthDate`), whose values would all count as null.
    #[serde(default, skip_serializing_if = "UnseenPaths::is_default")]
    pub unseen_paths: UnseenPaths,
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) matchers: Vec<GlobMatcher>,
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) regexes: Vec<Regex>,
    /// The PHI detector set, compiled on first use and shared by every file of the table.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) phi_scanner: std::sync::OnceLock<Option<crate::phi::Scanner>>,
}

impl TableContract {
    /// Whether a landing key (or a path, for offline use) belongs to this table.
    pub fn matches_key(&self, key: &str) -> bool {
        self.matchers.iter().any(|m| m.is_match(key))
            || self.regexes.iter().any(|r| r.is_match(key))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// The severity of the built-in `declared_paths` rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnseenPaths {
    /// Noted in the report; the file still passes.
    #[default]
    Warn,
    /// Quarantines the file.
    Error,
    /// No check (for optional fields a sample may well lack).
    Off,
}

impl UnseenPaths {
    fn is_default(&self) -> bool {
        *self == Self::Warn
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatSpec {
    #[serde(default)]
    pub kind: FormatKind,
    /// CSV field separator, one ASCII character (`\t` for TSV).
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// CSV quote character, one ASCII character; a doubled quote inside a quoted field is a literal quote.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// Whether the first CSV record names the columns. Without one, columns are positional.
    #[serde(default = "default_true")]
    pub header: bool,
    #[serde(default)]
    pub encoding: Encoding,
    #[serde(default)]
    pub compression: Compression,
    /// Cell values that mean "no value" besides the empty string, e.g. `NULL`, `NA`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub null_values: Vec<String>,
    /// For `kind: fhir`: the FHIR R4 resource type every line must be, e.g. `Patient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
}

impl Default for FormatSpec {
    fn default() -> Self {
        Self {
            kind: FormatKind::Csv,
            delimiter: ',',
            quote: '"',
            header: true,
            encoding: Encoding::Utf8,
            compression: Compression::Auto,
            null_values: Vec::new(),
            resource_type: None,
        }
    }
}

fn default_delimiter() -> char {
    ','
}
fn default_quote() -> char {
    '"'
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FormatKind {
    #[default]
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// FHIR R4 Bulk Data export: NDJSON, one resource per line.
    Fhir,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Encoding {
    /// UTF-8; a leading byte-order mark is accepted and ignored.
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// ISO-8859-1: every byte is a character, so no encoding check applies.
    #[serde(rename = "latin-1", alias = "latin1", alias = "iso-8859-1")]
    Latin1,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip when the key ends in `.gz` or the bytes start with the gzip magic number.
    #[default]
    Auto,
    None,
    Gzip,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: ColumnType,
    /// strftime-style format for `date` and `timestamp` columns (`%Y %m %d %H %M %S %f %z`,
    /// `%.f` for an optional `.fraction`, literals).
    /// Defaults: `%Y-%m-%d` for dates, `%Y-%m-%dT%H:%M:%S` for timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// More accepted formats for a `date` or `timestamp` column, tried in order after `format`;
    /// a value is valid when any of them matches it exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<String>,
    /// Not null and not empty in every row (a shorthand for a `required` rule with severity error).
    #[serde(default)]
    pub required: bool,
    /// The column holds identifiers on purpose (patient id, MRN): PHI detection skips it,
    /// except for the detectors named in `scan`.
    #[serde(default)]
    pub identifier: bool,
    /// Detectors that still run on an `identifier: true` column, e.g. `[ssn]`: an SSN pasted
    /// into the MRN column is the classic mistake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scan: Vec<PhiDetector>,
    /// The `scan` detectors, compiled on first use.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) scanner: std::sync::OnceLock<Option<crate::phi::Scanner>>,
    /// Whether values that look like HIPAA Safe Harbor identifiers may appear here.
    /// Unset: scanned only when the table has a `phi` rule (and the column is not an identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phi: Option<PhiPolicy>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    #[default]
    String,
    /// Optional sign and digits, fits in 64 bits.
    Integer,
    /// Optional sign, digits, optional fraction; no exponent, no thousands separators.
    Decimal,
    /// true/false, t/f, yes/no, y/n, 1/0 in any case.
    Boolean,
    Date,
    Timestamp,
    /// FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`. Compared by the start of the period.
    FhirDate,
    /// FHIR `dateTime`: a FHIR date, or `YYYY-MM-DDThh:mm:ss` with an optional fraction and a
    /// zone (`Z` or `+hh:mm`), required when a time is given.
    #[serde(rename = "fhir_datetime")]
    FhirDateTime,
}

impl ColumnType {
    /// Whether values are points in time (`date_range`, `compare` as times, no `dob` scan).
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            Self::Date | Self::Timestamp | Self::FhirDate | Self::FhirDateTime
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhiPolicy {
    Allowed,
    Forbidden,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Failing the rule quarantines the file.
    #[default]
    Error,
    /// Failing the rule is noted in the report only.
    Warn,
}

impl From<Level> for lakegate_models::Severity {
    fn from(l: Level) -> Self {
        match l {
            Level::Error => Self::Error,
            Level::Warn => Self::Warn,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMode {
    /// The header is exactly the declared columns, in order, nothing else.
    #[default]
    Exact,
    /// Every declared column is present, in the declared order; other columns may sit in between.
    Ordered,
    /// Every declared column is present, in any order; other columns may appear.
    Subset,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseRule {
    #[default]
    Sensitive,
    Insensitive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhiDetector {
    /// US Social Security numbers written `123-45-6789` or `123 45 6789`.
    Ssn,
    /// North American phone numbers with separators: `(555) 123-4567`, `555-123-4567`, `+1 555 123 4567`.
    Phone,
    Email,
    /// Medical record numbers: `MRN` followed by digits, or the rule's `mrn_pattern`.
    Mrn,
    /// Calendar dates (`1984-03-07`, `03/07/1984`) in a column not declared as a date or timestamp.
    Dob,
}

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
    /// The file's SHA-256 is not one of a file already onboarded (the caller supplies those).
    DuplicateFile {
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
            | Self::Compare { severity, .. } => *severity,
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

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `line` is 1-based; 0 when the position is unknown.
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Every contract in a directory.
#[derive(Debug, Clone, Default)]
pub struct ContractSet {
    contracts: Vec<Contract>,
}

impl ContractSet {
    /// Loads every `*.yaml` / `*.yml` file in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, ContractError> {
        let read_err = |source| ContractError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        let contracts = paths
            .iter()
            .map(|p| Contract::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { contracts })
    }

    pub fn from_contracts(contracts: Vec<Contract>) -> Self {
        Self { contracts }
    }

    pub fn contracts(&self) -> &[Contract] {
        &self.contracts
    }

    /// The first table, in file then contract order, whose key globs or regexes match `key`.
    pub fn resolve(&self, key: &str) -> Option<(&Contract, &TableContract)> {
        self.contracts
            .iter()
            .find_map(|c| c.tables.iter().find(|t| t.matches_key(key)).map(|t| (c, t)))
    }

    pub fn table(&self, dataset: &str, table: &str) -> Option<(&Contract, &TableContract)> {
        let contract = self.contracts.iter().find(|c| c.dataset == dataset)?;
        contract
            .tables
            .iter()
            .find(|t| t.name == table)
            .map(|t| (contract, t))
    }
}

impl Contract {
    pub fn load(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks a contract; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ContractError> {
        let invalid = |line: usize, reason: String| ContractError::Invalid {
            path: path.to_owned(),
            line,
            reason,
        };
        let mut contract: Contract = match serde_norway::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                let (line, reason) = locate_parse_error(text, &e);
                return Err(invalid(line, reason));
            }
        };
        let mut rule_base = 0;
        for table in &mut contract.tables {
            let t_line = line_of(text, &table.name, 0);
            check_table(table, text, rule_base).map_err(|(line, reason)| {
                invalid(
                    if line == 0 { t_line } else { line },
                    format!("table {}: {reason}", table.name),
                )
            })?;
            rule_base += table.rules.len();
        }
        let mut names = HashSet::new();
        for table in &contract.tables {
            if !names.insert(table.name.as_str()) {
                return Err(invalid(
                    line_of(text, &table.name, 0),
                    format!("table {} is declared twice", table.name),
                ));
            }
        }
        Ok(contract)
    }

    /// The JSON Schema of the contract format, for editors.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Contract);
        serde_json::to_string_pretty(&schema).expect("a schema always serialises") + "\n"
    }
}

type Problem = (usize, String);

/// NDJSON when every key pattern names a JSON-lines file, so a contract written before formats
/// existed (keys like `landing/*/ehr_fhir/Patient*.ndjson`) reads its files as what they are.
fn infer_kind<'a>(patterns: impl Iterator<Item = &'a String>) -> FormatKind {
    let mut any = false;
    for p in patterns {
        any = true;
        let p = p.trim_end_matches('$').to_ascii_lowercase();
        let p = p
            .strip_suffix("\\.gz")
            .or_else(|| p.strip_suffix(".gz"))
            .unwrap_or(&p);
        let json = [".ndjson", ".jsonl", ".json"]
            .iter()
            .any(|e| p.ends_with(e) || p.ends_with(&e.replace('.', "\\.")));
        if !json {
            return FormatKind::Csv;
        }
    }
    if any {
        FormatKind::Ndjson
    } else {
        FormatKind::Csv
    }
}

fn check_table(table: &mut TableContract, text: &str, rule_base: usize) -> Result<(), Problem> {
    table.format = match &table.format_declared {
        Some(f) => f.clone(),
        None => FormatSpec {
            kind: infer_kind(table.keys.iter().chain(&table.key_regex)),
            ..FormatSpec::default()
        },
    };
    for pattern in &table.keys {
        let glob = Glob::new(pattern)
            .map_err(|e| (line_of(text, pattern, 0), format!("key glob: {e}")))?;
        table.matchers.push(glob.compile_matcher());
    }
    for pattern in &table.key_regex {
        let re = Regex::new(pattern)
            .map_err(|e| (line_of(text, pattern, 0), format!("key regex: {e}")))?;
        table.regexes.push(re);
    }
    let f = &table.format;
    for (what, c) in [("delimiter", f.delimiter), ("quote", f.quote)] {
        if !c.is_ascii() {
            return Err((0, format!("format.{what} must be one ASCII character")));
        }
    }
    if f.delimiter == f.quote {
        return Err((0, "format.delimiter and format.quote must differ".into()));
    }
    if f.kind == FormatKind::Csv && f.resource_type.is_some() {
        return Err((0, "format.resource_type only applies to kind: fhir".into()));
    }
    let mut seen = HashSet::new();
    for col in &table.columns {
        let line = || line_of(text, &col.name, 0);
        if !seen.insert(col.name.as_str()) {
            return Err((line(), format!("column {} is declared twice", col.name)));
        }
        let formats: Vec<&String> = col.format.iter().chain(&col.formats).collect();
        if !formats.is_empty() && !matches!(col.kind, ColumnType::Date | ColumnType::Timestamp) {
            return Err((
                line(),
                format!(
                    "column {}: format only applies to date and timestamp columns",
                    col.name
                ),
            ));
        }
        for fmt in formats {
            DateFormat::parse(fmt)
                .map_err(|e| (line(), format!("column {}: format {fmt}: {e}", col.name)))?;
        }
        if !col.scan.is_empty() && !col.identifier {
            return Err((
                line(),
                format!(
                    "column {}: scan only applies to identifier columns (others are scanned by the phi rule)",
                    col.name
                ),
            ));
        }
    }
    for (i, rule) in table.rules.iter().enumerate() {
        let line = rule_line(text, rule_base + i);
        let err = |reason: String| (line, format!("rule {} ({}): {reason}", i + 1, rule.id()));
        if let Some(column) = rule.column() {
            let Some(col) = table.columns.iter().find(|c| c.name == column) else {
                return Err(err(format!(
                    "column {column} is not declared in this table"
                )));
            };
            check_column_rule(rule, col).map_err(err)?;
            if let RuleSpec::Compare { other, .. } = rule {
                let Some(o) = table.column(other) else {
                    return Err(err(format!("column {other} is not declared in this table")));
                };
                if col
                    .name
                    .split('.')
                    .chain(other.split('.'))
                    .any(|s| s == "*")
                {
                    return Err(err("compare needs one value per row: no `*` paths".into()));
                }
                let numeric =
                    |k: ColumnType| matches!(k, ColumnType::Integer | ColumnType::Decimal);
                let comparable = (numeric(col.kind) && numeric(o.kind))
                    || (col.kind.is_temporal() && o.kind.is_temporal());
                if !comparable {
                    return Err(err(format!(
                        "compare needs two numeric or two date/timestamp columns, {} is {:?} and {other} is {:?}",
                        col.name, col.kind, o.kind
                    )));
                }
            }
        }
        if let Some(when) = rule.when() {
            if table.column(&when.column).is_none() {
                return Err(err(format!(
                    "when: column {} is not declared in this table",
                    when.column
                )));
            }
            if when.values.is_empty() {
                return Err(err("when: `in` lists no values".into()));
            }
        }
        check_rule(rule, &table.format).map_err(err)?;
    }
    Ok(())
}

fn check_column_rule(rule: &RuleSpec, col: &ColumnSpec) -> Result<(), String> {
    match rule {
        RuleSpec::Range { min, max, .. } => {
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err("min is greater than max".into());
            }
            if !matches!(
                col.kind,
                ColumnType::Integer | ColumnType::Decimal | ColumnType::String
            ) {
                return Err(format!(
                    "range needs a numeric column, {} is {:?}",
                    col.name, col.kind
                ));
            }
        }
        RuleSpec::DateRange { min, max, .. } => {
            if !col.kind.is_temporal() {
                return Err(format!(
                    "date_range needs a date or timestamp column (or a FHIR date/dateTime), {} is not",
                    col.name
                ));
            }
            let a = min
                .as_deref()
                .map(crate::datetime::parse_bound)
                .transpose()?;
            let b = max
                .as_deref()
                .map(crate::datetime::parse_bound)
                .transpose()?;
            if let (Some(a), Some(b)) = (a, b)
                && a > b
            {
                return Err("min is after max".into());
            }
        }
        RuleSpec::Regex { pattern, .. } => {
            regex::bytes::Regex::new(pattern).map_err(|e| format!("pattern: {e}"))?;
        }
        RuleSpec::Completeness { min_ratio, .. } if !(0.0..=1.0).contains(min_ratio) => {
            return Err("min_ratio must lie between 0 and 1".into());
        }
        RuleSpec::Unique {
            max_distinct: Some(0),
            ..
        } => return Err("max_distinct must be positive".into()),
        RuleSpec::Type { .. } if col.kind == ColumnType::String => {
            return Err(format!(
                "column {} is a string: declare its type first",
                col.name
            ));
        }
        _ => {}
    }
    Ok(())
}

fn check_rule(rule: &RuleSpec, format: &FormatSpec) -> Result<(), String> {
    match rule {
        RuleSpec::FileName { pattern, .. } => {
            Regex::new(pattern).map_err(|e| format!("pattern: {e}"))?;
        }
        RuleSpec::Size {
            min_bytes: Some(a),
            max_bytes: Some(b),
            ..
        } if a > b => {
            return Err("min_bytes is greater than max_bytes".into());
        }
        RuleSpec::RowCount {
            min: Some(a),
            max: Some(b),
            ..
        } if a > b => {
            return Err("min is greater than max".into());
        }
        RuleSpec::HeaderMatches { .. } | RuleSpec::ColumnCount { .. }
            if format.kind != FormatKind::Csv =>
        {
            return Err("only applies to CSV".into());
        }
        RuleSpec::HeaderMatches { .. } if !format.header => {
            return Err("the format declares no header".into());
        }
        RuleSpec::FhirResource { .. } if format.kind != FormatKind::Fhir => {
            return Err("only applies to kind: fhir".into());
        }
        RuleSpec::Phi {
            mrn_pattern: Some(p),
            ..
        } => {
            regex::bytes::Regex::new(p).map_err(|e| format!("mrn_pattern: {e}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// serde_norway knows the line of syntax errors and most type errors, but inside a tagged rule it
/// only knows where the rule list starts (it buffers each rule first); for those, find the
/// failing rule by parsing each one on its own.
fn locate_parse_error(text: &str, e: &serde_norway::Error) -> (usize, String) {
    let located = || {
        e.location()
            .map_or((0, e.to_string()), |l| (l.line(), e.to_string()))
    };
    if e.location().is_some() && !e.to_string().contains(".rules") {
        return located();
    }
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return located();
    };
    let mut index = 0;
    for (t, table) in doc
        .get("tables")
        .and_then(|t| t.as_sequence())
        .into_iter()
        .flatten()
        .enumerate()
    {
        for rule in table
            .get("rules")
            .and_then(|r| r.as_sequence())
            .into_iter()
            .flatten()
        {
            if let Err(inner) = serde_norway::from_value::<RuleSpec>(rule.clone()) {
                return (
                    rule_line(text, index),
                    format!("tables[{t}].rules: {inner}"),
                );
            }
            index += 1;
        }
    }
    located()
}

/// Line of the `index`-th `rule:` key in the document, counting every table's rules in order.
/// Each rule has exactly one `rule:` key, so this is exact unless a comment or a string says `rule:`.
fn rule_line(text: &str, index: usize) -> usize {
    let mut seen = 0;
    for (n, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        if code.trim_start().starts_with('#') {
            continue;
        }
        let bytes = code.as_bytes();
        let mut from = 0;
        while let Some(at) = code[from..].find("rule") {
            let start = from + at;
            let end = start + 4;
            let before_ok =
                start == 0 || matches!(bytes[start - 1], b' ' | b'{' | b',' | b'-' | b'\t');
            let rest = code[end..].trim_start();
            if before_ok && rest.starts_with(':') {
                if seen == index {
                    return n + 1;
                }
                seen += 1;
            }
            from = end;
        }
    }
    0
}

/// 1-based line of the first occurrence of `needle` at or after byte `from`, for error messages.
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.get(from..)
        .and_then(|t| t.find(needle))
        .map_or(0, |at| text[..from + at].matches('\n').count() + 1)
}
