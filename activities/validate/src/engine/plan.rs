//! Rule planning: a table contract becomes numbered rule slots (failure counts and the first K
//! failing rows), file-level checks run at the end, and per-column lists of cell checks.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};

use lakegate_models::RuleOutcome;

use super::cells::PassThrough;
use super::report::show;
use super::{DEFAULT_MAX_DISTINCT, Limits, ValidateOptions};
use crate::TableContract;
use crate::contract::{
    CaseRule, ColumnSpec, ColumnType, Encoding, FormatKind, HeaderMode, Level, PhiPolicy, RuleSpec,
};
use crate::datetime::{self, DateFormat};
use crate::phi::{self, Scanner};

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
        }
    }

    #[inline]
    pub(super) fn hit(&mut self, row: u64, k: usize) {
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

/// What a file-level rule needs at the end of the stream.
#[derive(Debug)]
pub(super) enum FileCheck {
    NotEmpty,
    FileName(regex::Regex, String),
    Extension(Vec<String>),
    Size(Option<u64>, Option<u64>),
    RowCount(Option<u64>, Option<u64>),
    Duplicate,
}

#[derive(Debug)]
pub(super) enum CellCheck {
    Required,
    NotNull,
    NotBlank,
    Type,
    Regex(regex::bytes::Regex),
    /// A short list: a linear scan of a few values beats hashing each cell.
    Allowed {
        set: Vec<Vec<u8>>,
        fold: bool,
    },
    Range(Option<f64>, Option<f64>),
    DateRange(Option<i64>, Option<i64>),
    MaxLength(u64),
    Unique {
        seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
        max: u64,
        saturated: bool,
    },
    Completeness {
        min_ratio: f64,
        present: u64,
    },
}

#[derive(Debug)]
pub(super) struct ColPlan {
    pub(super) spec_name: String,
    /// JSON path segments for NDJSON.
    pub(super) path: Vec<String>,
    pub(super) kind: ColumnType,
    pub(super) date: Option<DateFormat>,
    /// Field position in the record; None when the header lacks the column.
    pub(super) index: Option<usize>,
    pub(super) absent: bool,
    pub(super) checks: Vec<(CellCheck, usize)>,
    pub(super) phi: Option<usize>,
    pub(super) phi_hits: [u64; 5],
    pub(super) needs_number: bool,
}

pub(super) struct State<'a> {
    pub(super) table: &'a TableContract,
    pub(super) k: usize,
    pub(super) limits: Limits,
    pub(super) name: Option<&'a str>,
    pub(super) known: &'a BTreeSet<String>,
    pub(super) slots: Vec<Slot>,
    pub(super) file_checks: Vec<(FileCheck, usize)>,
    pub(super) cols: Vec<ColPlan>,
    pub(super) scanner: Option<&'a Scanner>,
    /// Per-run key for the uniqueness hash, so crafted collisions cannot be planned.
    pub(super) seed: u64,
    pub(super) null_values: Vec<Vec<u8>>,
    // Built-in row-level slots.
    pub(super) utf8: Option<usize>,
    pub(super) header: Option<(usize, HeaderMode, CaseRule)>,
    pub(super) column_count: Option<usize>,
    pub(super) parses: usize,
    pub(super) nul: usize,
    pub(super) record_length: usize,
    pub(super) fhir: Option<usize>,
    pub(super) gzip: Option<Slot>,
    pub(super) limit: Option<Slot>,
    pub(super) rows: u64,
    pub(super) header_seen: bool,
    /// Off only in tests, to compare the fast CSV path with csv-core alone.
    pub(super) fast_csv: bool,
    pub(super) expected_fields: usize,
}

impl<'a> State<'a> {
    pub(super) fn new(table: &'a TableContract, opts: &'a ValidateOptions) -> Self {
        let f = &table.format;
        let mut st = State {
            table,
            k: opts.max_rows_per_rule,
            limits: opts.limits,
            name: opts.name.as_deref(),
            known: &opts.known_checksums,
            slots: Vec::new(),
            file_checks: Vec::new(),
            cols: Vec::new(),
            scanner: None,
            seed: RandomState::new().hash_one(0x5eed_u64) | 1,
            null_values: f
                .null_values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            utf8: None,
            header: None,
            column_count: None,
            parses: 0,
            nul: 0,
            record_length: 0,
            fhir: None,
            gzip: None,
            limit: None,
            rows: 0,
            header_seen: false,
            fast_csv: true,
            expected_fields: table.columns.len(),
        };
        // Built-in rules first; an explicit rule with the same id (and column) overrides one.
        let explicit = |id: &str, column: Option<&str>| {
            table
                .rules
                .iter()
                .find(|r| r.id() == id && r.column() == column)
        };
        let sev = |id: &str, column: Option<&str>| {
            explicit(id, column).map_or(Level::Error, RuleSpec::severity)
        };
        let add = |st: &mut State, id: &'static str, column: Option<&str>| {
            st.slots.push(Slot::new(id, column, sev(id, column)));
            st.slots.len() - 1
        };
        let i = add(&mut st, "not_empty", None);
        st.file_checks.push((FileCheck::NotEmpty, i));
        if f.encoding == Encoding::Utf8 {
            st.utf8 = Some(add(&mut st, "utf8", None));
        }
        st.nul = add(&mut st, "no_nul_bytes", None);
        st.record_length = add(&mut st, "record_length", None);
        match f.kind {
            FormatKind::Csv => {
                st.parses = add(&mut st, "balanced_quotes", None);
                if f.header {
                    let (mode, case) = match explicit("header_matches", None) {
                        Some(RuleSpec::HeaderMatches { mode, case, .. }) => (*mode, *case),
                        _ => (HeaderMode::Exact, CaseRule::Sensitive),
                    };
                    st.header = Some((add(&mut st, "header_matches", None), mode, case));
                }
                st.column_count = Some(add(&mut st, "column_count", None));
            }
            FormatKind::Ndjson | FormatKind::Fhir => {
                st.parses = add(&mut st, "json_parses", None);
                if f.kind == FormatKind::Fhir {
                    st.fhir = Some(add(&mut st, "fhir_resource", None));
                }
            }
        }
        let phi_rule = table.rules.iter().find_map(|r| match r {
            RuleSpec::Phi {
                detectors,
                mrn_pattern,
                severity,
            } => Some((detectors, mrn_pattern, *severity)),
            _ => None,
        });
        for (position, c) in table.columns.iter().enumerate() {
            let mut plan = ColPlan {
                spec_name: c.name.clone(),
                path: c.name.split('.').map(str::to_owned).collect(),
                kind: c.kind,
                date: date_format(c),
                index: (!f.header || f.kind != FormatKind::Csv).then_some(position),
                absent: false,
                checks: Vec::new(),
                phi: None,
                phi_hits: [0; 5],
                needs_number: false,
            };
            if c.required {
                let s = add(&mut st, "required", Some(&c.name));
                plan.checks.push((CellCheck::Required, s));
            }
            if c.kind != ColumnType::String {
                let s = add(&mut st, "type", Some(&c.name));
                st.slots[s].detail = format!("values that do not parse as {}", type_label(c));
                plan.checks.push((CellCheck::Type, s));
            }
            let scanned = !c.identifier
                && match c.phi {
                    Some(PhiPolicy::Allowed) => false,
                    Some(PhiPolicy::Forbidden) => true,
                    None => phi_rule.is_some(),
                };
            if scanned {
                let (detectors, mrn, severity) = match phi_rule {
                    Some((d, m, s)) => {
                        (d.clone().unwrap_or_else(|| phi::ALL.to_vec()), m.clone(), s)
                    }
                    None => (phi::ALL.to_vec(), None, Level::Error),
                };
                // One configuration per table (the phi rule's, or the defaults), compiled once.
                let scanner = table
                    .phi_scanner
                    .get_or_init(|| Scanner::new(&detectors, mrn.as_deref()).ok())
                    .as_ref();
                st.scanner = scanner;
                st.slots.push(Slot::new("phi", Some(&c.name), severity));
                if scanner.is_some() {
                    plan.phi = Some(st.slots.len() - 1);
                } else {
                    // Only a contract built in code, not parsed, can carry a bad mrn_pattern.
                    let slot = st.slots.len() - 1;
                    bad_pattern(&mut st.slots[slot]);
                }
            }
            st.cols.push(plan);
        }
        for rule in &table.rules {
            let id = rule.id();
            let column = rule.column();
            let builtin = matches!(
                (id, column.and_then(|n| table.column(n))),
                (
                    "not_empty" | "utf8" | "header_matches" | "column_count" | "fhir_resource",
                    None
                ) | ("phi", _)
            ) || (id == "required"
                && column
                    .and_then(|n| table.column(n))
                    .is_some_and(|c| c.required))
                || id == "type";
            if builtin {
                continue;
            }
            st.slots.push(Slot::new(id, column, rule.severity()));
            let s = st.slots.len() - 1;
            let file_check = match rule {
                RuleSpec::FileName { pattern, .. } => match regex::Regex::new(pattern) {
                    Ok(re) => Some(FileCheck::FileName(re, pattern.clone())),
                    Err(_) => {
                        bad_pattern(&mut st.slots[s]);
                        continue;
                    }
                },
                RuleSpec::Extension { allowed, .. } => Some(FileCheck::Extension(allowed.clone())),
                RuleSpec::Size {
                    min_bytes,
                    max_bytes,
                    ..
                } => Some(FileCheck::Size(*min_bytes, *max_bytes)),
                RuleSpec::RowCount { min, max, .. } => Some(FileCheck::RowCount(*min, *max)),
                RuleSpec::DuplicateFile { .. } => Some(FileCheck::Duplicate),
                _ => None,
            };
            if let Some(fc) = file_check {
                st.file_checks.push((fc, s));
                continue;
            }
            let Some(plan) = column.and_then(|n| st.cols.iter_mut().find(|p| p.spec_name == n))
            else {
                continue;
            };
            let check = match rule {
                RuleSpec::Required { .. } => CellCheck::Required,
                RuleSpec::NotNull { .. } => CellCheck::NotNull,
                RuleSpec::NotBlank { .. } => CellCheck::NotBlank,
                RuleSpec::Regex { pattern, .. } => {
                    st.slots[s].detail = format!("values that do not match {pattern}");
                    match regex::bytes::Regex::new(pattern) {
                        Ok(re) => CellCheck::Regex(re),
                        Err(_) => {
                            bad_pattern(&mut st.slots[s]);
                            continue;
                        }
                    }
                }
                RuleSpec::AllowedValues { values, case, .. } => {
                    let fold = *case == CaseRule::Insensitive;
                    st.slots[s].detail = format!("values outside the {} allowed", values.len());
                    let set = values.iter().map(|v| v.clone().into_bytes()).collect();
                    CellCheck::Allowed { set, fold }
                }
                RuleSpec::Range { min, max, .. } => {
                    plan.needs_number = true;
                    st.slots[s].detail = format!("values outside [{}, {}]", show(min), show(max));
                    CellCheck::Range(*min, *max)
                }
                RuleSpec::DateRange { min, max, .. } => {
                    st.slots[s].detail = format!(
                        "values outside [{}, {}]",
                        min.as_deref().unwrap_or("-inf"),
                        max.as_deref().unwrap_or("+inf")
                    );
                    let bound = |b: &Option<String>| {
                        b.as_deref().and_then(|b| datetime::parse_bound(b).ok())
                    };
                    CellCheck::DateRange(bound(min), bound(max))
                }
                RuleSpec::MaxLength { max, .. } => {
                    st.slots[s].detail = format!("values longer than {max} characters");
                    CellCheck::MaxLength(*max)
                }
                RuleSpec::Unique { max_distinct, .. } => CellCheck::Unique {
                    seen: HashSet::default(),
                    max: max_distinct.unwrap_or(DEFAULT_MAX_DISTINCT),
                    saturated: false,
                },
                RuleSpec::Completeness { min_ratio, .. } => CellCheck::Completeness {
                    min_ratio: *min_ratio,
                    present: 0,
                },
                _ => continue,
            };
            plan.checks.push((check, s));
        }
        st
    }
}

/// `Contract::parse` rejects bad patterns; a contract built in code can still carry one, and
/// then the rule fails instead of the validator panicking.
fn bad_pattern(slot: &mut Slot) {
    slot.decided = Some(false);
    slot.detail = "the contract's pattern does not compile".into();
}

fn date_format(c: &ColumnSpec) -> Option<DateFormat> {
    let default = match c.kind {
        ColumnType::Date => datetime::DEFAULT_DATE,
        ColumnType::Timestamp => datetime::DEFAULT_TIMESTAMP,
        _ => return None,
    };
    DateFormat::parse(c.format.as_deref().unwrap_or(default)).ok()
}

fn type_label(c: &ColumnSpec) -> String {
    match (c.kind, &c.format) {
        (ColumnType::Date | ColumnType::Timestamp, Some(f)) => {
            format!("{:?} {f}", c.kind).to_lowercase()
        }
        (ColumnType::Date, None) => format!("date {}", datetime::DEFAULT_DATE),
        (ColumnType::Timestamp, None) => format!("timestamp {}", datetime::DEFAULT_TIMESTAMP),
        (kind, _) => format!("{kind:?}").to_lowercase(),
    }
}
