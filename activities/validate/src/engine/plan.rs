//! Rule planning: a table contract becomes numbered rule slots (failure counts and the first K
//! failing rows), file-level checks run at the end, and per-column lists of cell checks.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use super::batch::Batch;
use super::keys::{CollectedKeys, ReferenceProbe};
use super::line::Span;
use super::memo::Memo;
use super::report::show;
use super::seen::Seen;
use super::slot::Slot;
use super::stored::SharedHash;
use super::{DEFAULT_MAX_DISTINCT, Limits, ValidateOptions};
use crate::TableContract;
use crate::contract::{
    CaseRule, ColumnSpec, ColumnType, CompareOp, Encoding, FormatKind, HeaderMode, Level,
    PhiPolicy, RuleSpec, UnseenPaths, When,
};
use crate::datetime::{self, DateFormat, TimeParser};
use crate::phi::{self, Scanner};

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
        seen: Seen,
        max: u64,
        saturated: bool,
    },
    Completeness {
        min_ratio: f64,
        present: u64,
        /// The last row counted, so an array path counts a line once however many elements.
        last_row: u64,
    },
}

/// A `when` clause, evaluated once per row before its cells are checked.
#[derive(Debug)]
pub(super) struct Cond {
    /// Index into `State::cols` of the deciding column.
    pub(super) col: usize,
    pub(super) values: Vec<Vec<u8>>,
    pub(super) holds: bool,
}

/// A `compare` rule, evaluated at the end of each row from the parsed values it kept.
#[derive(Debug)]
pub(super) struct Compare {
    pub(super) a: usize,
    pub(super) b: usize,
    pub(super) op: CompareOp,
    pub(super) when: Option<usize>,
    pub(super) slot: usize,
}

#[derive(Debug)]
pub(super) struct ColPlan {
    pub(super) spec_name: String,
    /// JSON path segments for NDJSON.
    pub(super) path: Vec<String>,
    pub(super) kind: ColumnType,
    pub(super) date: Option<TimeParser>,
    /// The path has a `*` segment: every element of the array there is a value.
    pub(super) wildcard: bool,
    /// Some line had this path (NDJSON), for the `declared_paths` check.
    pub(super) seen: bool,
    /// Slot in `State::row_values` where this cell's parsed value is kept for `compare`.
    pub(super) row_value: Option<usize>,
    /// Field position in the record; None when the header lacks the column.
    pub(super) index: Option<usize>,
    pub(super) absent: bool,
    /// Checked by the other thread of a split (see `split`).
    pub(super) delegated: bool,
    /// Each check with its slot and its `when` condition (index into `State::conds`).
    pub(super) checks: Vec<(CellCheck, usize, Option<usize>)>,
    pub(super) phi: Option<usize>,
    /// Index into `State::scanners` (meaningful when `phi` is set).
    pub(super) scanner: usize,
    pub(super) phi_hits: [u64; crate::phi::DETECTORS],
    pub(super) needs_number: bool,
    /// A `date_range` or `compare` reads the instant of a date or time value; without one,
    /// a value is only checked against its format, and its days are not counted.
    pub(super) needs_time: bool,
    /// Index into `State::collected`: the column's values feed the key index.
    pub(super) collect: Option<usize>,
    /// Index into `State::probes`: the column `references` another table's.
    pub(super) reference: Option<usize>,
    /// The checks that keep state across values (`unique`, `completeness`), by index into
    /// `checks`: the per-value tally visits these alone, not every check to match each.
    pub(super) tallies: Vec<usize>,
    /// Nothing to do with the column's values: no check, no PHI scan, no keys.
    pub(super) idle: bool,
    /// Verdicts of values seen before; off where a verdict depends on more than the value.
    pub(super) memo: Memo,
}

pub(super) struct State<'a> {
    pub(super) table: &'a TableContract,
    pub(super) opts: &'a ValidateOptions,
    pub(super) k: usize,
    pub(super) limits: Limits,
    pub(super) name: Option<&'a str>,
    pub(super) known: &'a BTreeSet<String>,
    pub(super) slots: Vec<Slot>,
    pub(super) file_checks: Vec<(FileCheck, usize)>,
    pub(super) cols: Vec<ColPlan>,
    /// The PHI scanners in use, indexed by `ColPlan::scanner`.
    pub(super) scanners: Vec<&'a Scanner>,
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
    pub(super) declared_paths: Option<usize>,
    pub(super) conds: Vec<Cond>,
    pub(super) compares: Vec<Compare>,
    pub(super) row_values: Vec<Option<f64>>,
    pub(super) gzip: Option<Slot>,
    pub(super) limit: Option<Slot>,
    pub(super) rows: u64,
    pub(super) header_seen: bool,
    /// Off only in tests, to compare the fast CSV path with csv-core alone.
    pub(super) fast_csv: bool,
    pub(super) expected_fields: usize,
    pub(super) collected: Vec<CollectedKeys>,
    pub(super) probes: Vec<ReferenceProbe>,
    /// The CSV header as read, for `schema_drift` (checked by the caller).
    pub(super) header_names: Option<Vec<String>>,
    /// CSV records whose cell checks are pending.
    pub(super) batch: Batch,
    /// Scratch space for a batch's hashed values.
    pub(super) hashes: Vec<u64>,
    /// Scratch space for one record's field bounds.
    pub(super) spans: Vec<Span>,
    /// Whether a large CSV file may be checked on two threads (off on one core, and in tests).
    pub(super) parallel: bool,
    /// The stored bytes' hash, when a checking thread is to take it over (on two cores).
    pub(super) hash: Option<Arc<SharedHash>>,
    /// How many times a checking thread started (for tests).
    pub(super) splits: u32,
    /// Every cell through the full path, to compare with the plain one (tests only).
    #[cfg(test)]
    pub(super) no_plain: bool,
    /// Batches between two looks at the threads' waits, and whether to act as if this
    /// thread had waited (a column moves to it) or the checking one had, one then the other,
    /// instead of on the waits measured (tests only: real waits are not reproducible).
    #[cfg(test)]
    pub(super) forced_gap: Option<(usize, bool)>,
}

impl<'a> State<'a> {
    pub(super) fn new(table: &'a TableContract, opts: &'a ValidateOptions) -> Self {
        let f = &table.format;
        let mut st = State {
            table,
            opts,
            k: opts.max_rows_per_rule,
            limits: Limits {
                max_record_bytes: opts.limits.max_record_bytes.min(super::MAX_RECORD_BYTES),
                ..opts.limits
            },
            name: opts.name.as_deref(),
            known: &opts.known_checksums,
            slots: Vec::new(),
            file_checks: Vec::new(),
            cols: Vec::new(),
            scanners: Vec::new(),
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
            declared_paths: None,
            conds: Vec::new(),
            compares: Vec::new(),
            row_values: Vec::new(),
            gzip: None,
            limit: None,
            rows: 0,
            header_seen: false,
            fast_csv: true,
            expected_fields: table.columns.len(),
            collected: Vec::new(),
            probes: Vec::new(),
            header_names: None,
            batch: Batch::default(),
            hashes: Vec::new(),
            spans: Vec::new(),
            parallel: true,
            hash: None,
            splits: 0,
            #[cfg(test)]
            no_plain: false,
            #[cfg(test)]
            forced_gap: None,
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
                let level = match table.unseen_paths {
                    UnseenPaths::Warn => Some(Level::Warn),
                    UnseenPaths::Error => Some(Level::Error),
                    UnseenPaths::Off => None,
                };
                if let Some(level) = level
                    && !table.columns.is_empty()
                {
                    st.slots.push(Slot::new("declared_paths", None, level));
                    st.declared_paths = Some(st.slots.len() - 1);
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
                wildcard: c.name.split('.').any(|s| s == "*"),
                seen: false,
                row_value: None,
                index: (!f.header || f.kind != FormatKind::Csv).then_some(position),
                absent: false,
                delegated: false,
                checks: Vec::new(),
                phi: None,
                scanner: 0,
                phi_hits: [0; crate::phi::DETECTORS],
                needs_number: false,
                needs_time: false,
                collect: None,
                reference: None,
                tallies: Vec::new(),
                idle: false,
                memo: Memo::default(),
            };
            if opts.index_columns.contains(&c.name) {
                plan.collect = Some(st.collected.len());
                st.collected.push(CollectedKeys::new(&c.name));
            }
            if opts.check_references
                && let Some(r) = &c.references
            {
                plan.reference = Some(st.probes.len());
                st.probes.push(ReferenceProbe::new(&c.name, r));
            }
            if c.required {
                let s = add(&mut st, "required", Some(&c.name));
                plan.checks.push((CellCheck::Required, s, None));
            }
            if c.kind != ColumnType::String {
                let s = add(&mut st, "type", Some(&c.name));
                st.slots[s].detail = format!("values that do not parse as {}", type_label(c));
                plan.checks.push((CellCheck::Type, s, None));
            }
            // An identifier column runs only the detectors it opted into with `scan`.
            let scanned = match (c.phi, c.identifier) {
                (Some(PhiPolicy::Allowed), _) => false,
                (_, true) => !c.scan.is_empty(),
                (Some(PhiPolicy::Forbidden), false) => true,
                (None, false) => phi_rule.is_some(),
            };
            if scanned {
                let (detectors, mrn, severity) = match phi_rule {
                    Some((d, m, s)) => {
                        (d.clone().unwrap_or_else(|| phi::ALL.to_vec()), m.clone(), s)
                    }
                    None => (phi::ALL.to_vec(), None, Level::Error),
                };
                // Identifier columns run only their opted-in detectors, with a scanner of their
                // own; every other column shares the table's (compiled once per table).
                let scanner = if c.identifier {
                    c.scanner.get_or_init(|| Scanner::new(&c.scan, None).ok())
                } else {
                    table
                        .phi_scanner
                        .get_or_init(|| Scanner::new(&detectors, mrn.as_deref()).ok())
                }
                .as_ref();
                st.slots.push(Slot::new("phi", Some(&c.name), severity));
                if let Some(scanner) = scanner {
                    plan.phi = Some(st.slots.len() - 1);
                    plan.scanner = st.scanners.len();
                    st.scanners.push(scanner);
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
                || id == "type"
                // History rules need the lake's index: the ingest activity decides them.
                || matches!(id, "row_count_anomaly" | "schema_drift");
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
            let when = rule.when().and_then(|w| st.cond(w));
            if let RuleSpec::Compare {
                column, op, other, ..
            } = rule
            {
                st.slots[s].detail = format!("rows where not {column} {} {other}", op.symbol());
                if let (Some(a), Some(b)) = (st.row_value(column), st.row_value(other)) {
                    st.compares.push(Compare {
                        a,
                        b,
                        op: *op,
                        when,
                        slot: s,
                    });
                }
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
                    plan.needs_time = true;
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
                    seen: Seen::default(),
                    max: max_distinct.unwrap_or(DEFAULT_MAX_DISTINCT),
                    saturated: false,
                },
                RuleSpec::Completeness { min_ratio, .. } => CellCheck::Completeness {
                    min_ratio: *min_ratio,
                    present: 0,
                    last_row: u64::MAX,
                },
                _ => continue,
            };
            plan.checks.push((check, s, when));
        }
        for plan in &mut st.cols {
            plan.tallies = (0..plan.checks.len())
                .filter(|&j| {
                    matches!(
                        plan.checks[j].0,
                        CellCheck::Unique { .. } | CellCheck::Completeness { .. }
                    )
                })
                .collect();
            plan.idle = plan.checks.is_empty()
                && plan.phi.is_none()
                && plan.collect.is_none()
                && plan.reference.is_none()
                && plan.row_value.is_none();
            // A verdict is a bit per check; `when` and `compare` read other cells of the row.
            let value_only = plan.checks.len() <= 64
                && plan.checks.iter().all(|(.., when)| when.is_none())
                && plan.row_value.is_none();
            if !value_only {
                plan.memo = Memo::off();
            } else if plan.kind != ColumnType::String
                && !plan
                    .checks
                    .iter()
                    .any(|(check, ..)| matches!(check, CellCheck::Regex(_)))
            {
                // A typed value that parses is never scanned, and its checks are a parse
                // and a few compares: about what a lookup costs once the table has outgrown
                // the first-level cache. The bench's dates of 26 years (9,500 values) took
                // 16-25 us a batch remembered and 11-14 checked afresh; of 3 and 10 years,
                // the same either way.
                plan.memo.forget_when_large();
            } else if !plan
                .checks
                .iter()
                .any(|(check, ..)| matches!(check, CellCheck::Regex(_)))
            {
                // Text: its checks are compares and set lookups too, and the PHI scan's
                // prefilter, unless its values keep needing the scan's patterns. The bench's
                // `zip3` (1,000 values of three digits) took 9-10 us a batch remembered.
                plan.memo.forget_unless_scanned();
            }
        }
        st
    }

    /// Every value checked afresh (only tests, to compare with the memo on).
    #[cfg(test)]
    pub(super) fn memo_off(&mut self) {
        for plan in &mut self.cols {
            plan.memo = Memo::off();
        }
    }

    /// The per-row condition for a `when` clause; None for a column the table lacks (only a
    /// contract built in code can say so; `Contract::parse` rejects it).
    fn cond(&mut self, w: &When) -> Option<usize> {
        let col = self.cols.iter().position(|p| p.spec_name == w.column)?;
        self.conds.push(Cond {
            col,
            values: w.values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            holds: false,
        });
        Some(self.conds.len() - 1)
    }

    /// The `row_values` slot where a column's parsed value is kept for `compare`.
    fn row_value(&mut self, column: &str) -> Option<usize> {
        let plan = self.cols.iter_mut().find(|p| p.spec_name == column)?;
        if plan.row_value.is_none() {
            plan.needs_number = true;
            plan.needs_time = true;
            plan.row_value = Some(self.row_values.len());
            self.row_values.push(None);
        }
        plan.row_value
    }

    /// Decides the row's `when` conditions from its raw cells, before any cell is checked.
    #[inline]
    pub(super) fn begin_row<'v>(&mut self, cell: impl Fn(&ColPlan) -> Option<&'v [u8]>) {
        for cond in &mut self.conds {
            let v = cell(&self.cols[cond.col]);
            cond.holds = v.is_some_and(|v| cond.values.iter().any(|a| a == v));
        }
    }

    /// Evaluates the row's `compare` rules from the values its cells kept.
    #[inline]
    pub(super) fn end_row(&mut self, row: u64) {
        if self.compares.is_empty() {
            return;
        }
        for c in &self.compares {
            if c.when.is_some_and(|w| !self.conds[w].holds) {
                continue;
            }
            if let (Some(a), Some(b)) = (self.row_values[c.a], self.row_values[c.b])
                && !c.op.holds(a, b)
            {
                self.slots[c.slot].hit(row, self.k);
            }
        }
        self.row_values.fill(None);
    }
}

/// `Contract::parse` rejects bad patterns; a contract built in code can still carry one, and
/// then the rule fails instead of the validator panicking.
fn bad_pattern(slot: &mut Slot) {
    slot.decided = Some(false);
    slot.detail = "the contract's pattern does not compile".into();
}

fn date_format(c: &ColumnSpec) -> Option<TimeParser> {
    let default = match c.kind {
        ColumnType::Date => datetime::DEFAULT_DATE,
        ColumnType::Timestamp => datetime::DEFAULT_TIMESTAMP,
        ColumnType::FhirDate => return Some(TimeParser::FhirDate),
        ColumnType::FhirDateTime => return Some(TimeParser::FhirDateTime),
        _ => return None,
    };
    let mut formats: Vec<DateFormat> = formats_of(c)
        .filter_map(|f| DateFormat::parse(f).ok())
        .collect();
    if c.format.is_none() && c.formats.is_empty() {
        formats.extend(DateFormat::parse(default).ok());
    }
    Some(TimeParser::Formats(formats))
}

fn formats_of(c: &ColumnSpec) -> impl Iterator<Item = &str> {
    c.format.iter().chain(&c.formats).map(String::as_str)
}

/// The type as the contract says it, formats as written (a steward searching the contract for
/// `%Y-%m-%dT%H:%M:%S%z` must find it).
fn type_label(c: &ColumnSpec) -> String {
    let kind = match c.kind {
        ColumnType::FhirDate => return "FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)".into(),
        ColumnType::FhirDateTime => return "FHIR dateTime".into(),
        other => other.name(),
    };
    let formats: Vec<&str> = formats_of(c).collect();
    match (c.kind, formats.is_empty()) {
        (ColumnType::Date, true) => format!("date {}", datetime::DEFAULT_DATE),
        (ColumnType::Timestamp, true) => format!("timestamp {}", datetime::DEFAULT_TIMESTAMP),
        (ColumnType::Date | ColumnType::Timestamp, false) => {
            format!("{kind} {}", formats.join(" or "))
        }
        _ => kind.into(),
    }
}
