//! The streaming validator: one pass over the stored bytes that hashes them, decompresses gzip
//! under a limit, parses CSV (csv-core, with bounded buffers) or NDJSON (bounded lines), and feeds
//! every cell through the column's checks. Memory is fixed by [`Limits`] plus the documented
//! uniqueness sets; nothing grows with the file.

use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;
use std::time::Instant;

use lakegate_models::{RuleOutcome, Severity, ValidationReport, Verdict};
use sha2::{Digest, Sha256};

use crate::contract::{
    CaseRule, ColumnSpec, ColumnType, Compression, Encoding, FormatKind, HeaderMode, Level,
    PhiPolicy, RuleSpec,
};
use crate::datetime::{self, DateFormat};
use crate::phi::{self, Scanner};
use crate::{Contract, TableContract};

/// How many failing row numbers a rule keeps by default; every failure is still counted.
pub const MAX_ROWS_PER_RULE: usize = 20;

/// Distinct values a `unique` rule tracks when the contract does not say.
pub const DEFAULT_MAX_DISTINCT: u64 = 1_000_000;

const BUF: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The stream itself failed (not the file's content): worth retrying.
    #[error("reading the file failed: {0}")]
    Read(#[from] io::Error),
    /// The store announced a size and the stream ended elsewhere: a transport problem, retry.
    #[error("the stream delivered {read} bytes, the store announced {expected}")]
    SizeMismatch { expected: u64, read: u64 },
}

/// Bounds that keep a hostile or broken file from taking unbounded memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest CSV record or NDJSON line kept for checking; longer ones fail `record_length`.
    pub max_record_bytes: usize,
    /// Most fields in one CSV record; more fail `record_length`.
    pub max_fields: usize,
    /// Most bytes a gzip file may inflate to.
    pub max_decompressed_bytes: u64,
    /// Most inflated bytes per stored byte, checked once `ratio_grace_bytes` have been inflated
    /// (a small, very regular file legitimately compresses well).
    pub max_compression_ratio: u64,
    pub ratio_grace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
            max_fields: 4096,
            max_decompressed_bytes: 64 << 30,
            max_compression_ratio: 200,
            ratio_grace_bytes: 16 << 20,
        }
    }
}

/// What the caller knows about the object besides its bytes.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// Landing key or file path; its last segment feeds `file_name` and `extension`, and a
    /// `.gz` ending selects gzip under `compression: auto`.
    pub name: Option<String>,
    /// Size the store announced; a stream of another length is a retryable error.
    pub size: Option<u64>,
    /// Lower-case hex SHA-256 of files already onboarded, for `duplicate_file`.
    pub known_checksums: BTreeSet<String>,
    /// K: failing row numbers kept per rule.
    pub max_rows_per_rule: usize,
    pub limits: Limits,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            name: None,
            size: None,
            known_checksums: BTreeSet::new(),
            max_rows_per_rule: MAX_ROWS_PER_RULE,
            limits: Limits::default(),
        }
    }
}

/// Reads `reader` to the end and checks it against `table` of `contract`, with default options.
pub fn validate<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
) -> Result<ValidationReport, ValidateError> {
    validate_with(contract, table, reader, &ValidateOptions::default())
}

/// Reads `reader` to the end and checks it against `table` of `contract`. Malformed content is a
/// failed rule in the report; only a failing stream is an `Err`.
pub fn validate_with<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
    opts: &ValidateOptions,
) -> Result<ValidationReport, ValidateError> {
    let started = Instant::now();
    let compressed = Rc::new(Cell::new(0u64));
    let stream_failed = Rc::new(Cell::new(false));
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
        bytes: compressed.clone(),
        failed: stream_failed.clone(),
    };
    let mut st = State::new(table, opts);
    // A stored size past an error-level `size` bound decides the verdict before a byte is read:
    // a 5 GB upload to a 10 MB table must not cost a 5 GB read (and its checksum) to refuse.
    if let Some(size) = opts.size
        && st.file_checks.iter().any(|(check, s)| {
            matches!(check, FileCheck::Size(_, Some(max)) if size > *max)
                && st.slots[*s].severity == Level::Error
        })
    {
        let mut rules = st.finish(size, "");
        rules.retain(|r| r.rule == "size");
        for r in &mut rules {
            r.detail.push_str("; refused before reading");
        }
        return Ok(ValidationReport {
            dataset: contract.dataset.clone(),
            table: table.name.clone(),
            verdict: Verdict::Fail,
            rules,
            bytes: 0,
            rows: 0,
            // Not computed: nothing was read.
            sha256: String::new(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            etag: None,
        });
    }
    {
        // Two bytes are enough to tell gzip; read them even from a stream that trickles.
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match hashing.read(&mut magic[got..])? {
                0 => break,
                n => got += n,
            }
        }
        let gzip = match table.format.compression {
            Compression::Gzip => true,
            Compression::None => false,
            Compression::Auto => {
                opts.name
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".gz"))
                    || magic[..got] == [0x1f, 0x8b]
            }
        };
        let mut raw =
            BufReader::with_capacity(BUF, io::Cursor::new(&magic[..got]).chain(&mut hashing));
        let result = if gzip {
            st.gzip = Some(Slot::new("gzip", None, Level::Error));
            st.limit = Some(Slot::new("decompression_limit", None, Level::Error));
            let limited = LimitReader {
                inner: flate2::bufread::MultiGzDecoder::new(raw),
                inflated: 0,
                compressed: compressed.clone(),
                limits: opts.limits,
            };
            st.run(&mut BufReader::with_capacity(BUF, limited))
        } else {
            st.run(&mut raw)
        };
        if let Err(e) = result {
            if stream_failed.get() {
                return Err(ValidateError::Read(e));
            }
            let limit_hit = e.get_ref().is_some_and(|inner| inner.is::<LimitExceeded>());
            match (limit_hit, st.limit.as_mut(), st.gzip.as_mut()) {
                (true, Some(slot), _) => {
                    slot.failures = 1;
                    slot.detail = format!(
                        "stopped inflating past {} bytes or {}x the stored size",
                        opts.limits.max_decompressed_bytes, opts.limits.max_compression_ratio
                    );
                }
                (false, _, Some(slot)) => {
                    slot.failures = 1;
                    slot.detail = format!(
                        "the gzip stream is corrupt or truncated after {} data rows",
                        st.rows
                    );
                }
                _ => return Err(ValidateError::Read(e)),
            }
        }
    }
    // Drain what the parser did not need (or could not read) so the checksum covers the object.
    io::copy(&mut hashing, &mut io::sink())?;
    let bytes = compressed.get();
    if let Some(expected) = opts.size
        && expected != bytes
    {
        return Err(ValidateError::SizeMismatch {
            expected,
            read: bytes,
        });
    }
    let sha256 = hex::encode(hashing.hasher.finalize());
    let rules = st.finish(bytes, &sha256);
    let verdict = if rules
        .iter()
        .any(|r| !r.passed && r.severity == Severity::Error)
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    Ok(ValidationReport {
        dataset: contract.dataset.clone(),
        table: table.name.clone(),
        verdict,
        rules,
        bytes,
        rows: st.rows,
        sha256,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        etag: None,
    })
}

/// One rule being evaluated: failures are counted in full, row numbers kept up to K.
#[derive(Debug)]
struct Slot {
    id: &'static str,
    column: Option<String>,
    severity: Level,
    failures: u64,
    first_rows: Vec<u64>,
    detail: String,
    /// Set when passing is decided by something other than "no failing row" (completeness).
    decided: Option<bool>,
}

impl Slot {
    fn new(id: &'static str, column: Option<&str>, severity: Level) -> Self {
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
    fn hit(&mut self, row: u64, k: usize) {
        self.failures += 1;
        if self.first_rows.len() < k {
            self.first_rows.push(row);
        }
    }

    fn into_outcome(self) -> RuleOutcome {
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
enum FileCheck {
    NotEmpty,
    FileName(regex::Regex, String),
    Extension(Vec<String>),
    Size(Option<u64>, Option<u64>),
    RowCount(Option<u64>, Option<u64>),
    Duplicate,
}

#[derive(Debug)]
enum CellCheck {
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
struct ColPlan {
    spec_name: String,
    /// JSON path segments for NDJSON.
    path: Vec<String>,
    kind: ColumnType,
    date: Option<DateFormat>,
    /// Field position in the record; None when the header lacks the column.
    index: Option<usize>,
    absent: bool,
    checks: Vec<(CellCheck, usize)>,
    phi: Option<usize>,
    phi_hits: [u64; 5],
    needs_number: bool,
}

/// Parsed form of a non-null cell, computed once per cell for every check that needs it.
struct Typed {
    ok: bool,
    number: Option<f64>,
    time: Option<i64>,
}

struct State<'a> {
    table: &'a TableContract,
    k: usize,
    limits: Limits,
    name: Option<&'a str>,
    known: &'a BTreeSet<String>,
    slots: Vec<Slot>,
    file_checks: Vec<(FileCheck, usize)>,
    cols: Vec<ColPlan>,
    scanner: Option<&'a Scanner>,
    /// Per-run key for the uniqueness hash, so crafted collisions cannot be planned.
    seed: u64,
    null_values: Vec<Vec<u8>>,
    // Built-in row-level slots.
    utf8: Option<usize>,
    header: Option<(usize, HeaderMode, CaseRule)>,
    column_count: Option<usize>,
    parses: usize,
    nul: usize,
    record_length: usize,
    fhir: Option<usize>,
    gzip: Option<Slot>,
    limit: Option<Slot>,
    rows: u64,
    header_seen: bool,
    /// Off only in tests, to compare the fast CSV path with csv-core alone.
    fast_csv: bool,
    expected_fields: usize,
}

impl<'a> State<'a> {
    fn new(table: &'a TableContract, opts: &'a ValidateOptions) -> Self {
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

    fn run(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        match self.table.format.kind {
            FormatKind::Csv => self.run_csv(input),
            FormatKind::Ndjson | FormatKind::Fhir => self.run_ndjson(input),
        }
    }

    fn run_csv(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        let f = &self.table.format;
        let quote = f.quote as u8;
        let mut core = csv_core::ReaderBuilder::new()
            .delimiter(f.delimiter as u8)
            .quote(quote)
            .build();
        let mut out = vec![0u8; (64 * 1024).min(self.limits.max_record_bytes).max(1)];
        let mut ends = vec![0usize; 64.min(self.limits.max_fields).max(1)];
        let (mut outlen, mut endlen) = (0, 0);
        let (mut overlong, mut quotes, mut nul) = (false, 0u64, false);
        let delimiter = f.delimiter as u8;
        // Whether csv-core sits at a record start in its plain state, so lines may bypass it.
        // Not before its first read: that is where it strips a byte-order mark.
        let mut core_idle = false;
        loop {
            let buf = input.fill_buf()?;
            if core_idle && self.fast_csv {
                let taken = self.fast_lines(buf, delimiter, quote, &mut out, &mut ends);
                if taken > 0 {
                    input.consume(taken);
                    continue;
                }
            }
            let (res, nin, nout, nend) =
                core.read_record(buf, &mut out[outlen..], &mut ends[endlen..]);
            let consumed = &buf[..nin];
            // Only a record that csv-core ended on an LF leaves it plainly at a record start
            // (after a CR it waits to see whether an LF follows).
            core_idle =
                res == csv_core::ReadRecordResult::Record && consumed.last() == Some(&b'\n');
            quotes += memchr::memchr_iter(quote, consumed).count() as u64;
            nul |= memchr::memchr(0, consumed).is_some();
            input.consume(nin);
            outlen += nout;
            endlen += nend;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if out.len() < self.limits.max_record_bytes {
                        let grown = (out.len() * 2).min(self.limits.max_record_bytes.max(1));
                        out.resize(grown, 0);
                    } else {
                        // Keep parsing to find the record's end, but stop keeping its bytes.
                        overlong = true;
                        outlen = 0;
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if ends.len() < self.limits.max_fields {
                        let grown = (ends.len() * 2).min(self.limits.max_fields.max(1));
                        ends.resize(grown, 0);
                    } else {
                        overlong = true;
                        endlen = 0;
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    self.csv_record(
                        &out[..outlen],
                        &ends[..endlen],
                        overlong,
                        quotes % 2 == 1,
                        nul,
                    );
                    (outlen, endlen, overlong, quotes, nul) = (0, 0, false, 0, false);
                }
                csv_core::ReadRecordResult::End => return Ok(()),
            }
        }
    }

    /// The fast path for the common record: one line, no CR inside, fields either plain or
    /// quoted without doubled quotes. Validates every such whole line at the start of `buf` and
    /// returns the bytes it took; anything else (a quote inside a field, an escaped quote, a
    /// field spanning lines, an over-long record, a line cut by the buffer) stops it, and
    /// csv-core reads that record, so both paths give the same fields.
    fn fast_lines(
        &mut self,
        buf: &[u8],
        delim: u8,
        quote: u8,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> usize {
        let mut taken = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[taken..]) {
            let mut line = &buf[taken..taken + nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                taken += nl + 1;
                continue;
            }
            if line.len() > self.limits.max_record_bytes || memchr::memchr(b'\r', line).is_some() {
                break;
            }
            let Some(fields) = split_line(line, delim, quote, out, ends, self.limits.max_fields)
            else {
                break;
            };
            let nul = memchr::memchr(0, line).is_some();
            let (data, ends_used) = (&out[..ends[fields - 1]], &ends[..fields]);
            self.csv_record(data, ends_used, false, false, nul);
            taken += nl + 1;
        }
        taken
    }

    fn csv_record(
        &mut self,
        data: &[u8],
        ends: &[usize],
        overlong: bool,
        odd_quotes: bool,
        nul: bool,
    ) {
        let is_header = !self.header_seen && self.table.format.header;
        let row = if is_header { 0 } else { self.rows + 1 };
        if !is_header {
            self.rows = row;
        }
        let first = !self.header_seen;
        self.header_seen = true;
        let k = self.k;
        if odd_quotes {
            self.slots[self.parses].hit(row, k);
        }
        if nul {
            self.slots[self.nul].hit(row, k);
        }
        if overlong {
            self.slots[self.record_length].hit(row, k);
            if is_header && let Some((slot, ..)) = self.header {
                self.slots[slot].hit(0, k);
                self.slots[slot].detail = "the header record is too long to read".into();
                for c in &mut self.cols {
                    c.absent = true;
                }
            }
            return;
        }
        let utf8_ok = std::str::from_utf8(data).is_ok();
        if !utf8_ok && let Some(s) = self.utf8 {
            self.slots[s].hit(row, k);
        }
        // Fields live in `data`, delimited by `ends`; a BOM is only meaningful on the first one.
        let bom = if first
            && data.starts_with(b"\xEF\xBB\xBF")
            && ends.first().is_some_and(|&e| e >= 3)
        {
            3
        } else {
            0
        };
        let field = |i: usize| -> Option<&[u8]> {
            let end = *ends.get(i)?;
            let start = if i == 0 { bom } else { ends[i - 1] };
            data.get(start..end)
        };
        if is_header {
            let names: Vec<String> = (0..ends.len())
                .map(|i| String::from_utf8_lossy(field(i).unwrap_or_default()).into_owned())
                .collect();
            self.expected_fields = names.len();
            self.check_header(&names);
            return;
        }
        if let Some(s) = self.column_count
            && ends.len() != self.expected_fields
        {
            self.slots[s].hit(row, k);
        }
        for c in 0..self.cols.len() {
            if self.cols[c].absent {
                continue;
            }
            let v = self.cols[c].index.and_then(field);
            self.check_cell(c, v, row);
        }
    }

    fn check_header(&mut self, names: &[String]) {
        let Some((slot, mode, case)) = self.header else {
            return;
        };
        let eq = |a: &str, b: &str| match case {
            CaseRule::Sensitive => a == b,
            CaseRule::Insensitive => a.eq_ignore_ascii_case(b),
        };
        let mut missing = Vec::new();
        let mut positions = Vec::new();
        for plan in &mut self.cols {
            match names.iter().position(|n| eq(n, &plan.spec_name)) {
                Some(i) => {
                    plan.index = Some(i);
                    positions.push(i);
                }
                None => {
                    plan.absent = true;
                    missing.push(plan.spec_name.clone());
                }
            }
        }
        let declared = self.cols.len();
        let in_order = positions.windows(2).all(|w| w[0] < w[1]);
        let extra = names.len().saturating_sub(positions.len());
        let ok = missing.is_empty()
            && match mode {
                HeaderMode::Exact => extra == 0 && in_order && names.len() == declared,
                HeaderMode::Ordered => in_order,
                HeaderMode::Subset => true,
            };
        let s = &mut self.slots[slot];
        if ok {
            s.detail = format!("{declared} declared columns found ({mode:?} match)").to_lowercase();
            return;
        }
        s.hit(0, self.k);
        // Only contract names and counts: a header-less file's first line would be a data row.
        let mut why = vec![format!(
            "file has {} columns, contract declares {declared}",
            names.len()
        )];
        if !missing.is_empty() {
            why.push(format!("missing: [{}]", missing.join(", ")));
        }
        if extra > 0 && mode == HeaderMode::Exact {
            why.push(format!("{extra} undeclared columns"));
        }
        if !in_order && mode != HeaderMode::Subset {
            why.push("columns are out of the declared order".into());
        }
        if names.len() == 1 && declared > 1 {
            why.push(format!(
                "one field only: is the delimiter {:?} right?",
                self.table.format.delimiter
            ));
        }
        s.detail = why.join("; ");
    }

    fn run_ndjson(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        let max = self.limits.max_record_bytes;
        let mut line = Vec::with_capacity(4096);
        let (mut overlong, mut nul, mut number) = (false, false, 0u64);
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                if !line.is_empty() || overlong {
                    number += 1;
                    self.json_line(&line, number, overlong, nul);
                }
                return Ok(());
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            let piece = &buf[..take];
            nul |= memchr::memchr(0, piece).is_some();
            if !overlong {
                if line.len() + piece.len() > max {
                    overlong = true;
                    line.clear();
                } else {
                    line.extend_from_slice(piece);
                }
            }
            input.consume(take + usize::from(done));
            if done {
                number += 1;
                self.json_line(&line, number, overlong, nul);
                line.clear();
                (overlong, nul) = (false, false);
                if line.capacity() > 1 << 20 {
                    line.shrink_to(4096);
                }
            }
        }
    }

    fn json_line(&mut self, line: &[u8], number: u64, overlong: bool, nul: bool) {
        let first = !self.header_seen;
        let mut line = line;
        if first && line.starts_with(b"\xEF\xBB\xBF") {
            line = &line[3..];
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if !overlong && line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.header_seen = true;
        self.rows += 1;
        let k = self.k;
        if nul {
            self.slots[self.nul].hit(number, k);
        }
        if overlong {
            self.slots[self.record_length].hit(number, k);
            return;
        }
        let transcoded;
        let text: &[u8] = if self.table.format.encoding == Encoding::Latin1 {
            transcoded = line.iter().map(|&b| b as char).collect::<String>();
            transcoded.as_bytes()
        } else if std::str::from_utf8(line).is_err() {
            if let Some(s) = self.utf8 {
                self.slots[s].hit(number, k);
            }
            return;
        } else {
            line
        };
        let value: serde_json::Value = match serde_json::from_slice(text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                self.slots[self.parses].hit(number, k);
                return;
            }
        };
        if let Some(s) = self.fhir {
            let declared = self.table.format.resource_type.as_deref();
            let rt = value.get("resourceType").and_then(|v| v.as_str());
            let id_ok = value
                .get("id")
                .and_then(|v| v.as_str())
                .is_some_and(|id| !id.is_empty());
            let rt_ok = rt.is_some_and(|rt| !rt.is_empty() && declared.is_none_or(|d| d == rt));
            if !(id_ok && rt_ok) {
                self.slots[s].hit(number, k);
            }
        }
        for c in 0..self.cols.len() {
            let cell = lookup(&value, &self.cols[c].path);
            let bytes: Option<std::borrow::Cow<[u8]>> = match cell {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.as_bytes().into()),
                Some(serde_json::Value::Bool(b)) => {
                    Some(if *b { &b"true"[..] } else { &b"false"[..] }.into())
                }
                Some(serde_json::Value::Number(n)) => Some(n.to_string().into_bytes().into()),
                Some(other) => Some(other.to_string().into_bytes().into()),
            };
            self.check_cell(c, bytes.as_deref(), number);
        }
    }

    #[inline]
    fn check_cell(&mut self, c: usize, v: Option<&[u8]>, row: u64) {
        let k = self.k;
        let plan = &mut self.cols[c];
        let v = match v {
            Some(v) if !v.is_empty() && !self.null_values.iter().any(|n| n == v) => v,
            _ => {
                for (check, s) in &plan.checks {
                    if matches!(
                        check,
                        CellCheck::Required | CellCheck::NotNull | CellCheck::NotBlank
                    ) {
                        self.slots[*s].hit(row, k);
                    }
                }
                return;
            }
        };
        let typed = if plan.kind == ColumnType::String {
            let number = if plan.needs_number {
                parse_f64(v)
            } else {
                None
            };
            Typed {
                ok: true,
                number,
                time: None,
            }
        } else {
            parse_typed(plan.kind, plan.date.as_ref(), v, plan.needs_number)
        };
        for (check, s) in &mut plan.checks {
            let failed = match check {
                CellCheck::Required | CellCheck::NotBlank => v.iter().all(u8::is_ascii_whitespace),
                CellCheck::NotNull => false,
                CellCheck::Type => !typed.ok,
                CellCheck::Regex(re) => !re.is_match(v),
                CellCheck::Allowed { set, fold } => {
                    if *fold {
                        !set.iter().any(|a| a.eq_ignore_ascii_case(v))
                    } else {
                        !set.iter().any(|a| a == v)
                    }
                }
                CellCheck::Range(min, max) => match typed.number {
                    Some(n) => min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m),
                    // A bad number in a typed column is the type rule's failure, not this one's.
                    None => plan.kind == ColumnType::String,
                },
                CellCheck::DateRange(min, max) => typed
                    .time
                    .is_some_and(|t| min.is_some_and(|m| t < m) || max.is_some_and(|m| t > m)),
                CellCheck::MaxLength(max) => {
                    let chars = v.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64;
                    chars > *max
                }
                CellCheck::Unique {
                    seen,
                    max,
                    saturated,
                } => {
                    let h = hash_value(self.seed, v);
                    if seen.contains(&h) {
                        true
                    } else {
                        if (seen.len() as u64) < *max {
                            seen.insert(h);
                        } else {
                            *saturated = true;
                        }
                        false
                    }
                }
                CellCheck::Completeness { present, .. } => {
                    *present += 1;
                    false
                }
            };
            if failed {
                self.slots[*s].hit(row, k);
            }
        }
        // A value that parsed as the declared non-string type cannot be a free-text identifier.
        if let (Some(s), Some(scanner)) = (plan.phi, self.scanner)
            && !(plan.kind != ColumnType::String && typed.ok)
        {
            let skip_dob = matches!(plan.kind, ColumnType::Date | ColumnType::Timestamp);
            if scanner.scan(v, skip_dob, &mut plan.phi_hits) {
                self.slots[s].hit(row, k);
            }
        }
    }

    fn finish(&mut self, bytes: u64, sha256: &str) -> Vec<RuleOutcome> {
        let rows = self.rows;
        for (check, s) in std::mem::take(&mut self.file_checks) {
            let slot = &mut self.slots[s];
            let (ok, detail) = match check {
                FileCheck::NotEmpty => (rows > 0, format!("{rows} data rows")),
                FileCheck::FileName(re, pattern) => match self.name {
                    Some(n) => (
                        re.is_match(last_segment(n)),
                        format!("file name must match {pattern}"),
                    ),
                    None => (true, "skipped: no file name was given".into()),
                },
                FileCheck::Extension(allowed) => match self.name {
                    Some(n) => {
                        let n = last_segment(n).to_ascii_lowercase();
                        let ok = allowed
                            .iter()
                            .any(|e| n.ends_with(&format!(".{}", e.to_ascii_lowercase())));
                        (
                            ok,
                            format!("extension must be one of [{}]", allowed.join(", ")),
                        )
                    }
                    None => (true, "skipped: no file name was given".into()),
                },
                FileCheck::Size(min, max) => (
                    min.is_none_or(|m| bytes >= m) && max.is_none_or(|m| bytes <= m),
                    format!(
                        "{bytes} bytes stored, bounds [{}, {}]",
                        show(&min),
                        show(&max)
                    ),
                ),
                FileCheck::RowCount(min, max) => (
                    min.is_none_or(|m| rows >= m) && max.is_none_or(|m| rows <= m),
                    format!("{rows} data rows, bounds [{}, {}]", show(&min), show(&max)),
                ),
                FileCheck::Duplicate => {
                    let dup = self.known.iter().any(|k| k.eq_ignore_ascii_case(sha256));
                    (
                        !dup,
                        if dup {
                            "a file with the same SHA-256 was already onboarded"
                        } else {
                            "new content"
                        }
                        .into(),
                    )
                }
            };
            if !ok {
                slot.failures = 1;
            }
            slot.detail = detail;
        }
        for plan in &mut self.cols {
            for (check, s) in &plan.checks {
                let slot = &mut self.slots[*s];
                match check {
                    CellCheck::Completeness { min_ratio, present } => {
                        let ratio = if rows == 0 {
                            1.0
                        } else {
                            *present as f64 / rows as f64
                        };
                        slot.failures = rows - present.min(&rows);
                        slot.first_rows.clear();
                        slot.decided = Some(ratio >= *min_ratio);
                        slot.detail = format!(
                            "{:.2}% non-null, at least {:.2}% required",
                            ratio * 100.0,
                            min_ratio * 100.0
                        );
                    }
                    CellCheck::Unique {
                        seen,
                        max,
                        saturated,
                    } => {
                        slot.detail = if *saturated {
                            format!(
                                "duplicates among the first {max} distinct values (tracking limit reached)"
                            )
                        } else {
                            format!("{} distinct values", seen.len())
                        };
                    }
                    CellCheck::Required | CellCheck::NotNull | CellCheck::NotBlank => {
                        slot.detail = format!("{} rows without a value", slot.failures);
                    }
                    _ => {}
                }
            }
            if let Some(s) = plan.phi {
                let found: Vec<String> = phi::ALL
                    .iter()
                    .zip(plan.phi_hits)
                    .filter(|(_, n)| *n > 0)
                    .map(|(d, n)| format!("{} {n}", phi::name(*d)))
                    .collect();
                self.slots[s].detail = if found.is_empty() {
                    "no identifier-like values".into()
                } else {
                    format!("identifier-like values: {}", found.join(", "))
                };
            }
            if plan.absent {
                let slots: Vec<usize> = plan
                    .checks
                    .iter()
                    .map(|(_, s)| *s)
                    .chain(plan.phi)
                    .collect();
                for s in slots {
                    let slot = &mut self.slots[s];
                    slot.failures = 1;
                    slot.detail = "column is missing from the file".into();
                }
            }
        }
        if let Some((slot, ..)) = self.header
            && !self.header_seen
        {
            let s = &mut self.slots[slot];
            s.failures = 1;
            s.detail = "no header: the file has no records".into();
        }
        for (s, what) in [
            (self.utf8, "rows with bytes that are not UTF-8"),
            (Some(self.nul), "rows with NUL bytes"),
            (
                Some(self.parses),
                match self.table.format.kind {
                    FormatKind::Csv => "records with an unbalanced quote",
                    _ => "lines that are not a JSON object",
                },
            ),
            (
                Some(self.record_length),
                match self.table.format.kind {
                    FormatKind::Csv => "records longer than the record limit",
                    _ => "lines longer than the record limit",
                },
            ),
            (
                self.column_count,
                "rows whose field count differs from the header's",
            ),
            (
                self.fhir,
                "lines without resourceType (of the declared type) and id",
            ),
        ] {
            if let Some(s) = s {
                let slot = &mut self.slots[s];
                slot.detail = format!("{} {what}", slot.failures);
                if slot.id == "record_length" {
                    slot.detail += &format!(
                        " ({} bytes / {} fields)",
                        self.limits.max_record_bytes, self.limits.max_fields
                    );
                }
            }
        }
        let mut out: Vec<RuleOutcome> = Vec::with_capacity(self.slots.len() + 2);
        out.extend(self.gzip.take().map(Slot::into_outcome));
        out.extend(self.limit.take().map(Slot::into_outcome));
        out.extend(self.slots.drain(..).map(Slot::into_outcome));
        out
    }
}

/// Splits one line (no terminator) into `out`/`ends` the way csv-core would, or None when the
/// line needs csv-core (quote inside a plain field, doubled quote, text after a closing quote, a
/// quoted field that does not close on this line, more than `max_fields` fields).
fn split_line(
    line: &[u8],
    delim: u8,
    quote: u8,
    out: &mut Vec<u8>,
    ends: &mut Vec<usize>,
    max_fields: usize,
) -> Option<usize> {
    if out.len() < line.len() {
        out.resize(line.len(), 0);
    }
    let mut n = 0;
    let mut len = 0;
    let mut push = |field: &[u8], n: &mut usize, len: &mut usize| -> Option<()> {
        if *n >= max_fields {
            return None;
        }
        out[*len..*len + field.len()].copy_from_slice(field);
        *len += field.len();
        if ends.len() <= *n {
            ends.resize((*n + 1).max(ends.len() * 2), 0);
        }
        ends[*n] = *len;
        *n += 1;
        Some(())
    };
    let mut i = 0;
    loop {
        if line.get(i) == Some(&quote) {
            let close = i + 1 + memchr::memchr(quote, &line[i + 1..])?;
            push(&line[i + 1..close], &mut n, &mut len)?;
            match line.get(close + 1) {
                None => return Some(n),
                Some(&b) if b == delim => i = close + 2,
                Some(_) => return None,
            }
        } else {
            match memchr::memchr2(delim, quote, &line[i..]) {
                None => {
                    push(&line[i..], &mut n, &mut len)?;
                    return Some(n);
                }
                Some(k) if line[i + k] == delim => {
                    push(&line[i..i + k], &mut n, &mut len)?;
                    i += k + 1;
                }
                Some(_) => return None,
            }
        }
        if i == line.len() {
            push(&[], &mut n, &mut len)?;
            return Some(n);
        }
    }
}

/// `Contract::parse` rejects bad patterns; a contract built in code can still carry one, and
/// then the rule fails instead of the validator panicking.
fn bad_pattern(slot: &mut Slot) {
    slot.decided = Some(false);
    slot.detail = "the contract's pattern does not compile".into();
}

fn lookup<'v>(value: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    let mut v = value;
    for seg in path {
        v = match v {
            serde_json::Value::Object(m) => m.get(seg)?,
            serde_json::Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
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

fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), ToString::to_string)
}

fn last_segment(key: &str) -> &str {
    key.rsplit(['/', '\\']).next().unwrap_or(key)
}

fn parse_typed(kind: ColumnType, date: Option<&DateFormat>, v: &[u8], needs_number: bool) -> Typed {
    match kind {
        ColumnType::Integer => {
            let n = parse_i64(v);
            Typed {
                ok: n.is_some(),
                number: n.filter(|_| needs_number).map(|n| n as f64),
                time: None,
            }
        }
        ColumnType::Decimal => {
            let ok = is_decimal(v);
            Typed {
                ok,
                number: (ok && needs_number).then(|| parse_f64(v)).flatten(),
                time: None,
            }
        }
        ColumnType::Boolean => Typed {
            ok: is_bool(v),
            number: None,
            time: None,
        },
        ColumnType::Date | ColumnType::Timestamp => {
            let time = date.and_then(|f| f.eval(v));
            Typed {
                ok: time.is_some(),
                number: None,
                time,
            }
        }
        ColumnType::String => Typed {
            ok: true,
            number: None,
            time: None,
        },
    }
}

/// Sign and digits that fit in an i64; parsed by hand because the float parser it replaces
/// took a twentieth of the validator's time on integer range checks.
fn parse_i64(v: &[u8]) -> Option<i64> {
    let (negative, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(i64::from(d))?;
    }
    if negative { Some(n) } else { n.checked_neg() }
}

fn is_decimal(v: &[u8]) -> bool {
    let body = match v.first() {
        Some(b'+' | b'-') => &v[1..],
        _ => v,
    };
    let mut dot = false;
    let mut digits = 0;
    for &b in body {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    digits > 0
}

fn is_bool(v: &[u8]) -> bool {
    const WORDS: [&[u8]; 10] = [
        b"true", b"false", b"t", b"f", b"yes", b"no", b"y", b"n", b"1", b"0",
    ];
    v.len() <= 5 && WORDS.iter().any(|w| w.eq_ignore_ascii_case(v))
}

fn parse_f64(v: &[u8]) -> Option<f64> {
    std::str::from_utf8(v)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
}

/// A keyed 64-bit hash of a cell for the uniqueness set: 8 bytes per step with a
/// multiply-fold mix (the folded-multiply construction of wyhash/foldhash). SipHash cost a
/// tenth of the validator's time; two distinct values collide with probability about 2^-64,
/// which would report one false duplicate.
fn hash_value(seed: u64, v: &[u8]) -> u64 {
    const P: u64 = 0x9E37_79B9_7F4A_7C15;
    let fold = |a: u64, b: u64| {
        let m = u128::from(a) * u128::from(b);
        (m as u64) ^ ((m >> 64) as u64)
    };
    let mut h = seed ^ (v.len() as u64).wrapping_mul(P);
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or_default());
        h = fold(h ^ w, P ^ seed.rotate_left(17));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = fold(h ^ u64::from_le_bytes(buf), P ^ seed.rotate_left(29));
    }
    fold(h, P)
}

/// Values reach the uniqueness set already hashed (keyed, per run), so the set's own hasher
/// only passes them through.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: Rc<Cell<u64>>,
    /// Set when the underlying stream failed, so its errors are told from decoding errors
    /// that arrive through the same `io::Error` channel.
    failed: Rc<Cell<bool>>,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.hasher.update(&buf[..n]);
                    self.bytes.set(self.bytes.get() + n as u64);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed.set(true);
                    return Err(e);
                }
            }
        }
    }
}

#[derive(Debug)]
struct LimitExceeded;

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("decompression limit exceeded")
    }
}

impl std::error::Error for LimitExceeded {}

/// Counts inflated bytes and stops a gzip bomb before it costs more than the limits allow.
struct LimitReader<R> {
    inner: R,
    inflated: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.inflated += n as u64;
        let l = &self.limits;
        let ratio_hit = self.inflated > l.ratio_grace_bytes
            && self.inflated / self.compressed.get().max(1) > l.max_compression_ratio;
        if self.inflated > l.max_decompressed_bytes || ratio_hit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;

    const CONTRACT: &str = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a, required: true }\n      - { name: b, type: integer }\n      - { name: c }\n    rules:\n      - { rule: max_length, column: c, max: 2 }\n      - { rule: unique, column: a }\n";

    /// Rows, then per rule: id, failures, first failing rows.
    type Seen = (u64, Vec<(&'static str, u64, Vec<u64>)>);

    /// Everything a report says about the content, from one path or the other.
    fn outcome(data: &[u8], fast: bool, buffer: usize) -> Seen {
        let contract = Contract::parse(CONTRACT, Path::new("t.yaml")).unwrap();
        let opts = ValidateOptions {
            limits: Limits {
                max_record_bytes: 40,
                max_fields: 6,
                ..Limits::default()
            },
            ..ValidateOptions::default()
        };
        let mut st = State::new(&contract.tables[0], &opts);
        st.fast_csv = fast;
        st.run(&mut BufReader::with_capacity(buffer, data)).unwrap();
        let slots = st
            .slots
            .iter()
            .map(|s| (s.id, s.failures, s.first_rows.clone()))
            .collect();
        (st.rows, slots)
    }

    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        const PIECES: &[&[u8]] = &[
            b",",
            b"\"",
            b"\"\"",
            b"\n",
            b"\r\n",
            b"\r",
            b"a",
            b"12",
            b"x y",
            b"\0",
            b"\xEF\xBB\xBF",
            b"a,b,c\n",
        ];
        prop::collection::vec(prop::sample::select(PIECES), 0..80).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn fast_csv_path_agrees_with_csv_core(body in csv_bytes(), buffer in 1usize..64) {
            let mut data = b"a,b,c\n".to_vec();
            data.extend(body);
            prop_assert_eq!(outcome(&data, true, buffer), outcome(&data, false, buffer));
            prop_assert_eq!(outcome(&data, true, 4096), outcome(&data, false, 4096));
        }
    }

    #[test]
    fn fast_path_splits_like_csv_core() {
        let data = b"a,b,c\n1,2,ab\n\"q\",3,\"\"\n\r\n4,,\n5,6,\"x,\"\r\n\"7\",8,\"a\"\"b\"\n9\n";
        assert_eq!(outcome(data, true, 4096), outcome(data, false, 4096));
        let (rows, _) = outcome(data, true, 4096);
        assert_eq!(rows, 6);
    }
}
