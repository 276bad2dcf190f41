use std::io::Read;
use std::time::Instant;

use lakegate_models::{RuleOutcome, Severity, ValidationReport, Verdict};
use sha2::{Digest, Sha256};

use crate::{Contract, TableContract};

/// How many failing row numbers a rule keeps; every failure is still counted.
pub const MAX_ROWS_PER_RULE: usize = 20;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The stream itself failed (not the file's content): worth retrying.
    #[error("reading the file failed: {0}")]
    Read(#[from] std::io::Error),
}

/// Reads `reader` to the end and checks it against `table` of `contract`.
pub fn validate<R: Read>(
    contract: &Contract,
    table: &TableContract,
    reader: R,
) -> Result<ValidationReport, ValidateError> {
    let started = Instant::now();
    let mut hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut rules = Vec::new();
    let mut rows = 0u64;
    {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(&mut hashing);
        let header: Vec<String> = match csv.headers() {
            Ok(h) => h.iter().map(str::to_owned).collect(),
            Err(e) => return csv_failure(e, contract, table, started, hashing),
        };
        let expected: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let header_ok = header == expected;
        rules.push(RuleOutcome {
            rule: "header_matches".into(),
            column: None,
            severity: Severity::Error,
            passed: header_ok,
            failures: u64::from(!header_ok),
            first_rows: Vec::new(),
            detail: if header_ok {
                format!("{} columns as declared", expected.len())
            } else {
                let missing: Vec<&str> = expected
                    .iter()
                    .copied()
                    .filter(|c| !header.iter().any(|h| h == c))
                    .collect();
                format!(
                    "header differs from the contract; missing columns: [{}]",
                    missing.join(", ")
                )
            },
        });
        let required: Vec<(usize, &str)> = table
            .columns
            .iter()
            .filter(|c| c.required)
            .filter_map(|c| {
                header
                    .iter()
                    .position(|h| *h == c.name)
                    .map(|i| (i, c.name.as_str()))
            })
            .collect();
        let mut required_failures = vec![(0u64, Vec::new()); required.len()];
        let mut record = csv::ByteRecord::new();
        loop {
            match csv.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return csv_failure(e, contract, table, started, hashing),
            }
            rows += 1;
            for (slot, (index, _)) in required_failures.iter_mut().zip(&required) {
                if record
                    .get(*index)
                    .is_none_or(|v| v.iter().all(u8::is_ascii_whitespace))
                {
                    slot.0 += 1;
                    if slot.1.len() < MAX_ROWS_PER_RULE {
                        slot.1.push(rows);
                    }
                }
            }
        }
        for ((failures, first_rows), (_, column)) in required_failures.into_iter().zip(&required) {
            rules.push(RuleOutcome {
                rule: "required".into(),
                column: Some((*column).to_owned()),
                severity: Severity::Error,
                passed: failures == 0,
                failures,
                first_rows,
                detail: format!("{failures} rows with an empty value"),
            });
        }
    }
    // Drain whatever the CSV reader did not need so the checksum covers the whole object.
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    Ok(finish(contract, table, rules, rows, started, hashing))
}

fn csv_failure<R: Read>(
    error: csv::Error,
    contract: &Contract,
    table: &TableContract,
    started: Instant,
    mut hashing: HashingReader<R>,
) -> Result<ValidationReport, ValidateError> {
    if let csv::ErrorKind::Io(_) = error.kind() {
        let csv::ErrorKind::Io(io) = error.into_kind() else {
            unreachable!()
        };
        return Err(ValidateError::Read(io));
    }
    let row = error.position().map_or(0, |p| p.record());
    std::io::copy(&mut hashing, &mut std::io::sink())?;
    let rule = RuleOutcome {
        rule: "csv_parses".into(),
        column: None,
        severity: Severity::Error,
        passed: false,
        failures: 1,
        first_rows: vec![row],
        detail: match error.kind() {
            csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".into(),
            _ => "the file is not valid CSV".into(),
        },
    };
    Ok(finish(contract, table, vec![rule], row, started, hashing))
}

fn finish<R>(
    contract: &Contract,
    table: &TableContract,
    rules: Vec<RuleOutcome>,
    rows: u64,
    started: Instant,
    hashing: HashingReader<R>,
) -> ValidationReport {
    let verdict = if rules
        .iter()
        .any(|r| !r.passed && r.severity == Severity::Error)
    {
        Verdict::Fail
    } else {
        Verdict::Pass
    };
    ValidationReport {
        dataset: contract.dataset.clone(),
        table: table.name.clone(),
        verdict,
        rules,
        bytes: hashing.bytes,
        rows,
        sha256: hex::encode(hashing.hasher.finalize()),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const CONTRACT: &str = "
dataset: ehr
tables:
  - name: patients
    keys: ['landing/**/patients*.csv']
    columns:
      - { name: id, required: true }
      - { name: gender }
";

    fn run(data: &str) -> ValidationReport {
        let contract = Contract::parse(CONTRACT, Path::new("ehr.yaml")).unwrap();
        let table = &contract.tables[0];
        validate(&contract, table, data.as_bytes()).unwrap()
    }

    #[test]
    fn good_file_passes() {
        let r = run("id,gender\n1,F\n2,M\n");
        assert_eq!(r.verdict, Verdict::Pass);
        assert_eq!(r.rows, 2);
    }

    #[test]
    fn empty_required_value_names_row_and_column_not_value() {
        let r = run("id,gender\n1,F\n ,SENTINEL_JANE\n");
        assert_eq!(r.verdict, Verdict::Fail);
        let failed: Vec<_> = r.failed_rules().collect();
        assert_eq!(failed[0].rule, "required");
        assert_eq!(failed[0].column.as_deref(), Some("id"));
        assert_eq!(failed[0].first_rows, vec![2]);
        assert!(!serde_json::to_string(&r).unwrap().contains("SENTINEL"));
    }

    #[test]
    fn wrong_header_fails() {
        let r = run("id,sex\n1,F\n");
        assert_eq!(r.quarantine_reason(), "header_matches");
    }
}
