//! The contract format: what a data steward writes, one YAML file per dataset. The types here are
//! the single source of truth for both the parser (serde) and the editor schema (schemars), so the
//! committed `contract.schema.json` cannot drift from what the loader accepts.
//!
//! `rules` holds the rule list (`RuleSpec`), `check` the checks `Contract::parse` runs after
//! serde has read the YAML.

mod check;
mod rules;

pub use rules::{CompareOp, RuleSpec, When};

impl TableContract {
    /// Columns of this table that a column of `contract` references: their values are indexed
    /// when a file of this table is promoted.
    pub fn referenced_columns(&self, contract: &Contract) -> Vec<String> {
        let mut out: Vec<String> = contract
            .tables
            .iter()
            .flat_map(|t| &t.columns)
            .filter_map(|c| c.references.as_ref())
            .filter(|r| r.table == self.name)
            .map(|r| r.column.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

use check::{check_table, line_of, locate_parse_error};

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    /// Every non-null value must be one of `column`'s values in the files of `table` (same
    /// dataset) already onboarded or in the same landing folder (batch). Checked by the ingest
    /// activity against the lake's key index; `lakegate validate` offline cannot check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Reference>,
    /// Whether values that look like HIPAA Safe Harbor identifiers may appear here.
    /// Unset: scanned only when the table has a `phi` rule (and the column is not an identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phi: Option<PhiPolicy>,
}

/// A foreign key: the table (of the same dataset) and column whose values this column's must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub table: String,
    pub column: String,
    /// `error` quarantines a file with orphan values; `warn` only reports them.
    #[serde(default)]
    pub severity: Level,
    /// Distinct values of this column tracked per file (24 bytes each, briefly three times
    /// that while new values are merged in; default 1,000,000); past it, new values are not
    /// checked and the report says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_distinct: Option<u64>,
    /// Removed from the start of each value before it is looked up, e.g. `Patient/` for a
    /// FHIR `subject.reference` that points at `Patient.id`. A value without it is looked up as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<String>,
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
    /// The name a contract spells the type with (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Decimal => "decimal",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
            ColumnType::FhirDate => "fhir_date",
            ColumnType::FhirDateTime => "fhir_datetime",
        }
    }

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
    /// US ZIP codes in free text: a ZIP+4 (`02139-4307`), or five digits after a state code
    /// (`Boston, MA 02139`) or after `ZIP`/`postal code`. A bare five-digit value is not one
    /// (lab values and codes are), and typed numeric columns are never scanned.
    Zip,
    /// Street addresses in free text: a house number, one to four words and a street suffix
    /// (`12 Elm Street`, `4500 N Main St`, `7 Rue Ave`), or a `PO Box` with its number.
    Address,
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
        for table in &contract.tables {
            for col in &table.columns {
                let Some(r) = &col.references else { continue };
                let target = contract.tables.iter().find(|t| t.name == r.table);
                let reason = match target {
                    None => format!(
                        "references table {}, which this contract does not declare",
                        r.table
                    ),
                    Some(t) if t.column(&r.column).is_none() => {
                        format!(
                            "references {}.{}, which is not a declared column",
                            r.table, r.column
                        )
                    }
                    Some(_) if r.max_distinct == Some(0) => "max_distinct must be positive".into(),
                    Some(_) => continue,
                };
                return Err(invalid(
                    line_of(text, &col.name, 0),
                    format!("table {}: column {}: {reason}", table.name, col.name),
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
