//! `lakegate contract draft`: a first contract from sample files. Each column gets the
//! narrowest type all its sampled values parse as (by the validator's own parsers, so the draft
//! passes on its sample), `required` when never null, `identifier` for id-like names whose
//! values are all distinct, and rules for low-cardinality values, numeric bounds and unique
//! candidates; NDJSON and FHIR files get one column per path seen, arrays as `*`. Every guess
//! carries a `# guess:` comment, so a steward knows what to check.
//!
//! Memory is bounded: only the first `sample_rows` records of each file are read, at most
//! [`MAX_PATHS`] paths are kept, and the output says how much was sampled.

mod infer;
mod render;
mod sample;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use infer::ColumnStats;

/// Paths kept per NDJSON table; a wider document is cut there (and the draft says so).
pub const MAX_PATHS: usize = 500;

/// What to draft, and how much of each file to read.
#[derive(Debug, Clone)]
pub struct DraftOptions {
    pub dataset: String,
    /// Every file feeds this table; without it, each file's name before its first `.` names one.
    pub table: Option<String>,
    /// Records read from each file (the sample); the rest of the file is not read.
    pub sample_rows: u64,
    /// Most distinct values a column may have to get an `allowed_values` rule.
    pub max_allowed_values: usize,
}

impl DraftOptions {
    pub fn new(dataset: &str) -> Self {
        Self {
            dataset: dataset.to_owned(),
            table: None,
            sample_rows: 10_000,
            max_allowed_values: 12,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DraftError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {reason}")]
    Unusable { path: PathBuf, reason: String },
    #[error("no files to draft from")]
    NoFiles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Csv(u8),
    Ndjson,
}

/// One table being drafted from its files.
struct TableDraft {
    name: String,
    kind: Kind,
    key_patterns: Vec<String>,
    columns: Vec<ColumnStats>,
    rows: u64,
    files: usize,
    truncated: bool,
    skipped: u64,
    paths_cut: bool,
    /// NDJSON lines all had a `resourceType` and an `id`: FHIR, of these types.
    fhir_types: Option<std::collections::BTreeSet<String>>,
    latin1: bool,
    null_tokens: std::collections::BTreeSet<String>,
}

/// Drafts a contract (YAML text, with comments) from sample files.
pub fn draft(files: &[PathBuf], opts: &DraftOptions) -> Result<String, DraftError> {
    if files.is_empty() {
        return Err(DraftError::NoFiles);
    }
    let mut tables: BTreeMap<String, TableDraft> = BTreeMap::new();
    let formats = infer::compiled_formats();
    let scanner = infer::scanner().ok_or(DraftError::NoFiles)?;
    for path in files {
        let read = |source| DraftError::Read {
            path: path.clone(),
            source,
        };
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (stem, ext) = file_name.split_once('.').unwrap_or((&file_name, ""));
        let ext_plain = ext.trim_end_matches(".gz");
        let kind = if matches!(ext_plain, "ndjson" | "jsonl" | "json") {
            Kind::Ndjson
        } else {
            Kind::Csv(sample::sniff_delimiter(path).map_err(read)?)
        };
        let name = opts.table.clone().unwrap_or_else(|| table_name(stem));
        let table = tables.entry(name.clone()).or_insert_with(|| TableDraft {
            name,
            kind,
            key_patterns: Vec::new(),
            columns: Vec::new(),
            rows: 0,
            files: 0,
            truncated: false,
            skipped: 0,
            paths_cut: false,
            fhir_types: (kind == Kind::Ndjson).then(Default::default),
            latin1: false,
            null_tokens: Default::default(),
        });
        if table.kind != kind {
            return Err(DraftError::Unusable {
                path: path.clone(),
                reason: format!("table {} mixes CSV and NDJSON files", table.name),
            });
        }
        let suffix = if ext.is_empty() {
            String::new()
        } else {
            format!(".{ext}")
        };
        let pattern = format!("landing/*/{}/{stem}*{suffix}", opts.dataset);
        if !table.key_patterns.contains(&pattern) {
            table.key_patterns.push(pattern);
        }
        let coverage = match kind {
            Kind::Csv(d) => sample_csv(table, path, d, opts.sample_rows, &formats, &scanner)?,
            Kind::Ndjson => {
                sample_ndjson(table, path, opts.sample_rows, &formats, &scanner).map_err(read)?
            }
        };
        table.files += 1;
        table.rows += coverage.rows;
        table.truncated |= coverage.truncated;
        table.skipped += coverage.skipped;
    }
    Ok(render::contract(opts, files.len(), tables.values()))
}

fn table_name(stem: &str) -> String {
    let name: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() {
        "table".into()
    } else {
        name
    }
}

/// Tokens sources write for "no value"; declared as `null_values` when a sample has them.
const NULL_TOKENS: [&str; 3] = ["NULL", "null", "\\N"];

fn sample_csv(
    table: &mut TableDraft,
    path: &Path,
    delimiter: u8,
    limit: u64,
    formats: &[crate::datetime::DateFormat],
    scanner: &crate::phi::Scanner,
) -> Result<sample::Coverage, DraftError> {
    let mut header: Vec<String> = Vec::new();
    let mut problem = None;
    // Rows of earlier files come first, so a column counts each row once across files.
    let base = table.rows;
    let cov = sample::csv(path, delimiter, limit, |row, fields| {
        if row == 0 {
            header = fields
                .iter()
                .map(|f| {
                    String::from_utf8_lossy(f)
                        .trim_start_matches('\u{feff}')
                        .to_owned()
                })
                .collect();
            if table.columns.is_empty() {
                table.columns = header.iter().map(|h| ColumnStats::new(h)).collect();
            } else if table.columns.iter().map(|c| &c.name).ne(header.iter()) {
                problem = Some("its header differs from the table's other files".to_owned());
            }
            return;
        }
        if problem.is_some() {
            return;
        }
        for (col, v) in table.columns.iter_mut().zip(fields) {
            if std::str::from_utf8(v).is_err() {
                table.latin1 = true;
            }
            if let Some(t) = NULL_TOKENS.iter().find(|t| t.as_bytes() == &v[..]) {
                table.null_tokens.insert((*t).to_owned());
                continue;
            }
            if !v.is_empty() {
                col.add(base + row, v, formats, scanner);
            }
        }
    })
    .map_err(|source| DraftError::Read {
        path: path.to_owned(),
        source,
    })?;
    if header.is_empty() {
        problem = Some("no header line".into());
    }
    match problem {
        Some(reason) => Err(DraftError::Unusable {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(cov),
    }
}

fn sample_ndjson(
    table: &mut TableDraft,
    path: &Path,
    limit: u64,
    formats: &[crate::datetime::DateFormat],
    scanner: &crate::phi::Scanner,
) -> io::Result<sample::Coverage> {
    let mut line = table.rows;
    let mut index: BTreeMap<String, usize> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    sample::ndjson(path, limit, |value| {
        line += 1;
        if let Some(types) = &mut table.fhir_types {
            let rt = value.get("resourceType").and_then(|v| v.as_str());
            let id = value.get("id").and_then(|v| v.as_str());
            match (rt, id) {
                (Some(rt), Some(id)) if !rt.is_empty() && !id.is_empty() => {
                    types.insert(rt.to_owned());
                }
                _ => table.fhir_types = None,
            }
        }
        let mut leaves = Vec::new();
        flatten(value, String::new(), &mut leaves);
        for (path, v) in leaves {
            let i = match index.get(&path) {
                Some(i) => *i,
                None if table.columns.len() < MAX_PATHS => {
                    table.columns.push(ColumnStats::new(&path));
                    index.insert(path, table.columns.len() - 1);
                    table.columns.len() - 1
                }
                None => {
                    table.paths_cut = true;
                    continue;
                }
            };
            if let Some(v) = v {
                table.columns[i].add(line, &v, formats, scanner);
            }
        }
    })
}

/// Every scalar in a JSON document with its dotted path, arrays as `*`; a JSON null is a path
/// with no value. The bytes are those the validator checks (`engine::ndjson::scalar`).
fn flatten(v: &serde_json::Value, path: String, out: &mut Vec<(String, Option<Vec<u8>>)>) {
    let join = |seg: &str| {
        if path.is_empty() {
            seg.to_owned()
        } else {
            format!("{path}.{seg}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, e) in m {
                // A key with a dot or named `*` cannot be said as a path.
                if !k.contains('.') && k != "*" && !k.is_empty() {
                    flatten(e, join(k), out);
                }
            }
        }
        serde_json::Value::Array(a) => {
            for e in a {
                flatten(e, join("*"), out);
            }
        }
        serde_json::Value::Null => out.push((path, None)),
        serde_json::Value::String(s) => out.push((path, Some(s.as_bytes().to_vec()))),
        serde_json::Value::Bool(b) => out.push((path, Some(b.to_string().into_bytes()))),
        serde_json::Value::Number(n) => out.push((path, Some(n.to_string().into_bytes()))),
    }
}
