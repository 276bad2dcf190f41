//! The streaming validator: one pass over the stored bytes that hashes them, decompresses gzip
//! under a limit, parses CSV (csv-core, with bounded buffers) or NDJSON (bounded lines), and feeds
//! every cell through the column's checks. Memory is fixed by [`Limits`] plus the documented
//! uniqueness sets; nothing grows with the file.
//!
//! Where things live: this module holds the public API and its limits; `stored` reads, counts
//! and hashes the stored bytes (on a second thread for a large file); `input` decodes gzip
//! under its bomb guards; `plan` turns a table contract into rule slots
//! and per-column checks; `csv` and `ndjson` parse records; `cells` checks one value;
//! `report` turns the slots into rule outcomes.

mod batch;
mod cells;
pub(crate) use cells::{is_bool, is_decimal, parse_i64};
mod chunk;
mod csv;
pub(crate) use csv::grow;
mod input;
mod keys;
#[cfg(test)]
mod lent_tests;
mod line;
mod memo;
mod ndjson;
mod plan;
mod report;
mod seen;
mod slot;
mod split;
mod stored;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

use lakegate_models::{Severity, ValidationReport, Verdict};
use sha2::Digest;

use crate::contract::Level;
use crate::{Contract, TableContract};
pub use keys::{CollectedKeys, MAX_INDEXED_KEYS, ReferenceProbe, key_hash, set_outcome};
use plan::{FileCheck, State};
use stored::{SharedHash, StoredBytes};

/// How many failing row numbers a rule keeps by default; every failure is still counted.
pub const MAX_ROWS_PER_RULE: usize = 20;

/// Distinct values a `unique` rule tracks when the contract does not say.
pub const DEFAULT_MAX_DISTINCT: u64 = 1_000_000;

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
/// The most `max_record_bytes` may say: a longer bound is taken as this one (field offsets
/// within a batch are 32-bit).
pub const MAX_RECORD_BYTES: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest CSV record or NDJSON line kept for checking; longer ones fail `record_length`.
    /// At most [`MAX_RECORD_BYTES`].
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
    /// Columns whose values [`validate_full`] hands back hashed, for the lake's key index
    /// (the columns other tables reference).
    pub index_columns: Vec<String>,
    /// Track the values of `references` columns for the caller to probe ([`validate_full`]).
    /// Off, `references` is not checked (offline there is no index to check it against).
    pub check_references: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        Self {
            name: None,
            size: None,
            known_checksums: BTreeSet::new(),
            max_rows_per_rule: MAX_ROWS_PER_RULE,
            limits: Limits::default(),
            index_columns: Vec::new(),
            check_references: false,
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
/// failed rule in the report; only a failing stream is an `Err`. A file larger than one read
/// buffer is hashed on a second thread while this one parses.
pub fn validate_with<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
    opts: &ValidateOptions,
) -> Result<ValidationReport, ValidateError> {
    validate_inner(contract, table, reader, opts, Threads::for_machine()).map(|v| v.report)
}

/// What [`validate_full`] gives besides the report: what the lake's indexes need, which never
/// enters a payload (hashed key values, the header as read).
#[derive(Debug, Clone)]
pub struct Validated {
    pub report: ValidationReport,
    /// One entry per `index_columns` column the table declares.
    pub keys: Vec<CollectedKeys>,
    /// One per `references` column, when `check_references` is set: probe them with the
    /// referenced table's key runs, then turn them into outcomes.
    pub references: Vec<ReferenceProbe>,
    /// The CSV header as read (None for NDJSON or a header-less format).
    pub header: Option<Vec<String>>,
}

/// [`validate_with`], also collecting what the history and cross-file rules need.
pub fn validate_full<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
    opts: &ValidateOptions,
) -> Result<Validated, ValidateError> {
    validate_inner(contract, table, reader, opts, Threads::for_machine())
}

/// Which threads a large file may use besides the reading one.
#[derive(Debug, Clone, Copy)]
struct Threads {
    hashing: bool,
    checking: bool,
}

impl Threads {
    /// A checking thread from two cores, a hashing thread only with a third (see `stored`).
    fn for_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Threads {
            hashing: cores >= 3,
            checking: cores >= 2,
        }
    }
}

/// `validate_with`, with the threads the machine allows or those a test chooses.
fn validate_inner<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
    opts: &ValidateOptions,
    threads: Threads,
) -> Result<Validated, ValidateError> {
    validate_hashed(
        contract,
        table,
        reader,
        opts,
        threads,
        Arc::new(SharedHash::default()),
    )
}

/// `validate_inner` with the stored bytes' hash given, for tests to see where it ran.
fn validate_hashed<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
    opts: &ValidateOptions,
    threads: Threads,
    hash: Arc<SharedHash>,
) -> Result<Validated, ValidateError> {
    let started = Instant::now();
    let mut stored = StoredBytes::new(reader, threads.hashing, hash.clone());
    let mut st = State::new(table, opts);
    st.parallel = threads.checking;
    // Without a thread of its own, hashing moves to the checking thread when one runs.
    if !threads.hashing {
        st.hash = Some(hash);
    }
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
        let report = ValidationReport {
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
        };
        return Ok(Validated {
            report,
            keys: Vec::new(),
            references: Vec::new(),
            header: None,
        });
    }
    input::decode(&mut st, &mut stored, table, opts)?;
    // Drain what the parser did not need (or could not read) so the checksum covers the object.
    stored.drain()?;
    let bytes = stored.bytes.get();
    if let Some(expected) = opts.size
        && expected != bytes
    {
        return Err(ValidateError::SizeMismatch {
            expected,
            read: bytes,
        });
    }
    let sha256 = hex::encode(stored.finish()?.finalize());
    let rules = st.finish(bytes, &sha256);
    let verdict = if rules
        .iter()
        .any(|r| !r.passed && r.severity == Severity::Error)
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    let mut keys = std::mem::take(&mut st.collected);
    keys.iter_mut().for_each(CollectedKeys::finish);
    st.probes.iter_mut().for_each(ReferenceProbe::finish);
    Ok(Validated {
        report: ValidationReport {
            dataset: contract.dataset.clone(),
            table: table.name.clone(),
            verdict,
            rules,
            bytes,
            rows: st.rows,
            sha256,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            etag: None,
        },
        keys,
        references: std::mem::take(&mut st.probes),
        header: st.header_names.take(),
    })
}
