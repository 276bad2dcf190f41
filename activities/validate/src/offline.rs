//! What `lakegate validate --contract <file> <data-file>...` does, kept here so the binary only
//! parses arguments: the same engine, the same reports, rendered for a terminal or as JSON.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use lakegate_models::{Severity, ValidationReport, Verdict};

use crate::{Contract, TableContract, ValidateOptions, validate_with};

/// Renders a report as a plain-text table for a terminal. Like the report, it holds rule ids,
/// column names, counts and row numbers, never a cell value.
pub fn render_table(report: &ValidationReport) -> String {
    let mut out = String::new();
    let verdict = match report.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
    };
    let _ = writeln!(
        out,
        "{verdict}  dataset {}  table {}  rows {}  bytes {}  {} ms  sha256 {}",
        report.dataset, report.table, report.rows, report.bytes, report.duration_ms, report.sha256
    );
    let header = [
        "rule",
        "column",
        "severity",
        "result",
        "failures",
        "first rows",
        "detail",
    ];
    let rows: Vec<[String; 7]> = report
        .rules
        .iter()
        .map(|r| {
            let rows = r
                .first_rows
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let rows = if (r.first_rows.len() as u64) < r.failures && !r.first_rows.is_empty() {
                format!("{rows},...")
            } else {
                rows
            };
            [
                r.rule.clone(),
                r.column.clone().unwrap_or_else(|| "-".into()),
                match r.severity {
                    Severity::Error => "error".into(),
                    Severity::Warn => "warn".into(),
                },
                if r.passed {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
                r.failures.to_string(),
                if rows.is_empty() { "-".into() } else { rows },
                r.detail.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; 7]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 6 {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        let _ = writeln!(out, "  {}", l.trim_end());
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

/// The offline command: validates each file against the contract at `contract_path` and writes
/// one table per file (or one JSON array of `{file, report}` / `{file, error}` when `json`).
/// Returns the process exit code: 0 all passed, 1 a file failed, 2 a bad contract or an
/// unreadable file (or one whose table cannot be told).
pub fn run_offline(
    contract_path: &Path,
    files: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
) -> i32 {
    let contract = match Contract::load(contract_path) {
        Ok(c) => c,
        Err(e) => {
            let _ = if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({ "contract": contract_path, "error": e.to_string() })
                )
            } else {
                writeln!(out, "error: bad contract: {e}")
            };
            return 2;
        }
    };
    let mut code = 0;
    let mut entries = Vec::new();
    for file in files {
        // Opened first, so a missing file is reported as such rather than as a path no table
        // matches.
        let result = std::fs::File::open(file)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => "file not found".to_owned(),
                _ => format!("cannot open: {e}"),
            })
            .and_then(|f| Ok((f, table_for(&contract, file)?)))
            .and_then(|(f, table)| {
                let opts = ValidateOptions {
                    name: Some(file.to_string_lossy().into_owned()),
                    size: f.metadata().ok().map(|m| m.len()),
                    ..ValidateOptions::default()
                };
                validate_with(&contract, table, f, &opts).map_err(|e| format!("cannot read: {e}"))
            });
        match result {
            Ok(report) => {
                if report.verdict == Verdict::Fail {
                    code = code.max(1);
                }
                if json {
                    entries.push(serde_json::json!({ "file": file, "report": report }));
                } else {
                    let _ = writeln!(out, "{}\n{}", file.display(), render_table(&report));
                }
            }
            Err(reason) => {
                code = 2;
                if json {
                    entries.push(serde_json::json!({ "file": file, "error": reason }));
                } else {
                    let _ = writeln!(out, "{}\nerror: {reason}\n", file.display());
                }
            }
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into())
        );
    }
    code
}

/// The table whose key patterns match the path, or its file name; failing that, whose key globs'
/// last segment (`patients*.csv` of `landing/*/ehr/patients*.csv`) matches the file name, since a
/// local file does not sit under `landing/`; the only table when none does.
fn table_for<'c>(contract: &'c Contract, file: &Path) -> Result<&'c TableContract, String> {
    let full = file.to_string_lossy();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if let Some(t) = contract
        .tables
        .iter()
        .find(|t| t.matches_key(&full) || t.matches_key(&name))
    {
        return Ok(t);
    }
    let last_segment_matches = |t: &&TableContract| {
        t.keys.iter().any(|k| {
            let tail = k.rsplit('/').next().unwrap_or(k);
            globset::Glob::new(tail).is_ok_and(|g| g.compile_matcher().is_match(name.as_ref()))
        })
    };
    if let Some(t) = contract.tables.iter().find(last_segment_matches) {
        return Ok(t);
    }
    match contract.tables.as_slice() {
        [only] => Ok(only),
        tables => Err(format!(
            "no table of dataset {} has a key pattern matching this path; tables: [{}]",
            contract.dataset,
            tables
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
