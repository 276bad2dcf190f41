//! A corpus of broken files, generated here: each one ends in a named failed rule, never a
//! panic, a hang or an `Err` (which would make the workflow retry a file that cannot get better).

mod common;

use std::io::{self, Read};
use std::sync::LazyLock;

use common::*;
use lakegate_models::Verdict;
use lakegate_validate::{Limits, ValidateError, ValidateOptions, validate_with};

use lakegate_validate::corpus;

static CSV: LazyLock<String> =
    LazyLock::new(|| corpus::contract_yaml("ehr", corpus::CSV_TABLE, "t", None));
static NDJSON: LazyLock<String> =
    LazyLock::new(|| corpus::contract_yaml("ehr", corpus::NDJSON_TABLE, "t", None));

fn fails_with(yaml: &str, data: &[u8], rule: &str) -> Vec<String> {
    let r = run(yaml, data);
    let f = failed(&r);
    assert!(
        f.iter().any(|n| n == rule),
        "expected {rule} among {f:?}: {:#?}",
        r.rules
    );
    assert_eq!(r.verdict, Verdict::Fail);
    f
}

#[test]
fn ragged_rows() {
    let f = fails_with(&CSV, &corpus::ragged_rows(), "column_count");
    assert_eq!(f, ["column_count"]);
}

#[test]
fn unbalanced_quotes() {
    fails_with(&CSV, &corpus::unbalanced_quotes(), "balanced_quotes");
}

#[test]
fn latin1_bytes() {
    assert_eq!(fails_with(&CSV, &corpus::latin1(), "utf8"), ["utf8"]);
}

#[test]
fn utf8_bom_passes_utf16_does_not() {
    let r = run(&CSV, b"\xef\xbb\xbfid,dx,seen\n1,a,2024-01-01\n");
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    fails_with(&CSV, &corpus::utf16(), "no_nul_bytes");
}

#[test]
fn nul_bytes() {
    let r = run(&CSV, &corpus::nul_csv());
    assert_eq!(failed(&r), ["no_nul_bytes"]);
    assert_eq!(outcome(&r, "no_nul_bytes", None).first_rows, [1]);
    fails_with(&NDJSON, &corpus::nul_ndjson(), "no_nul_bytes");
}

#[test]
fn empty_file() {
    assert_eq!(
        fails_with(&CSV, b"", "not_empty"),
        ["not_empty", "header_matches"]
    );
    assert_eq!(fails_with(&NDJSON, b"", "not_empty"), ["not_empty"]);
}

#[test]
fn header_only() {
    assert_eq!(
        fails_with(&CSV, &corpus::header_only(), "not_empty"),
        ["not_empty"]
    );
    assert_eq!(fails_with(&CSV, b"id,dx,seen", "not_empty"), ["not_empty"]);
}

#[test]
fn wrong_delimiter() {
    let r = run(&CSV, &corpus::wrong_delimiter());
    // Rules on columns the header lacks fail too: the file holds none of their values.
    assert_eq!(failed(&r), ["header_matches", "required(id)", "type(seen)"]);
    assert!(
        outcome(&r, "header_matches", None)
            .detail
            .contains("delimiter ','"),
        "{:?}",
        r.rules
    );
    assert_eq!(
        outcome(&r, "required", Some("id")).detail,
        "column is missing from the file"
    );
}

#[test]
fn long_line_is_bounded() {
    let opts = ValidateOptions {
        limits: Limits {
            max_record_bytes: 1024,
            ..Limits::default()
        },
        ..Default::default()
    };
    let r = run_opts(&CSV, &corpus::long_csv_record(10_000), &opts);
    assert_eq!(failed(&r), ["record_length"]);
    assert_eq!(
        (
            outcome(&r, "record_length", None).first_rows.clone(),
            r.rows
        ),
        (vec![1], 2)
    );
    let r = run_opts(&NDJSON, &corpus::long_ndjson_line(10_000), &opts);
    assert_eq!(failed(&r), ["record_length"]);
    // Too many fields is the same failure: a record that cannot be held.
    let opts = ValidateOptions {
        limits: Limits {
            max_fields: 64,
            ..Limits::default()
        },
        ..Default::default()
    };
    assert_eq!(
        failed(&run_opts(&CSV, &corpus::many_fields(500), &opts)),
        ["record_length"]
    );
}

#[test]
fn deeply_nested_json() {
    fails_with(&NDJSON, &corpus::deep_array(), "json_parses");
    fails_with(&NDJSON, &corpus::deep_field(), "json_parses");
}

#[test]
fn truncated_gzip() {
    let gz = corpus::valid_gzip();
    let r = run(&CSV, &corpus::truncated_gzip());
    let f = failed(&r);
    assert!(f.starts_with(&["gzip".to_owned()]), "{f:?}");
    assert_eq!(
        r.bytes,
        gz.len() as u64 - 12,
        "the checksum still covers every stored byte"
    );
    // Garbage after the magic number.
    assert_eq!(failed(&run(&CSV, &corpus::gzip_garbage()))[0], "gzip");
}

#[test]
fn gzip_bomb_is_stopped_by_the_ratio_limit() {
    let bomb = corpus::gzip_bomb();
    assert!(
        bomb.len() < 200 << 10,
        "a bomb compresses well: {}",
        bomb.len()
    );
    let r = run(&CSV, &bomb);
    let o = outcome(&r, "decompression_limit", None);
    assert!(!o.passed, "{:#?}", r.rules);
    assert_eq!(r.verdict, Verdict::Fail);
    // An absolute limit catches a bomb below the ratio too.
    let opts = ValidateOptions {
        limits: Limits {
            max_decompressed_bytes: 1 << 20,
            max_compression_ratio: u64::MAX,
            ..Limits::default()
        },
        ..Default::default()
    };
    let data: String = (0..100_000)
        .map(|i| format!("{i},a,2024-01-01\n"))
        .collect();
    let r = run_opts(&CSV, &gzip(format!("id,dx,seen\n{data}").as_bytes()), &opts);
    assert!(!outcome(&r, "decompression_limit", None).passed);
}

/// A stream that breaks after `ok` bytes, like a dropped connection.
struct Breaks<'a> {
    data: &'a [u8],
    ok: usize,
}

impl Read for Breaks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection reset",
            ));
        }
        let n = buf.len().min(self.ok).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.ok -= n;
        Ok(n)
    }
}

#[test]
fn a_broken_stream_is_an_error_to_retry_not_a_verdict() {
    let c = contract(&CSV);
    let data = b"id,dx,seen\n1,a,2024-01-01\n2,b,2024-01-01\n".repeat(1000);
    let e = validate_with(
        &c,
        &c.tables[0],
        Breaks {
            data: &data,
            ok: 5000,
        },
        &ValidateOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, ValidateError::Read(ref io) if io.kind() == io::ErrorKind::ConnectionReset),
        "{e:?}"
    );
    let gz = gzip(&data);
    let e = validate_with(
        &c,
        &c.tables[0],
        Breaks { data: &gz, ok: 100 },
        &ValidateOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, ValidateError::Read(_)), "{e:?}");
    let opts = ValidateOptions {
        size: Some(data.len() as u64 + 1),
        ..Default::default()
    };
    let e = validate_with(&c, &c.tables[0], &data[..], &opts).unwrap_err();
    assert!(matches!(e, ValidateError::SizeMismatch { .. }), "{e:?}");
}

#[test]
fn a_trickling_stream_gives_the_same_report() {
    /// One byte per read: exercises every buffer boundary in the parsers.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&b, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = b;
            self.0 = rest;
            Ok(1)
        }
    }
    let c = contract(&CSV);
    let data = b"\xef\xbb\xbfid,dx,seen\n1,\"a,\"\"b\"\"\",2024-01-01\n,b\n3,c,2024-13-01\r\n";
    let whole = validate_with(&c, &c.tables[0], &data[..], &ValidateOptions::default()).unwrap();
    let bytewise =
        validate_with(&c, &c.tables[0], Trickle(data), &ValidateOptions::default()).unwrap();
    assert_eq!(whole.rules, bytewise.rules);
    assert_eq!(
        failed(&whole),
        ["column_count", "required(id)", "type(seen)"]
    );
    let gz = gzip(data);
    let trickled_gz =
        validate_with(&c, &c.tables[0], Trickle(&gz), &ValidateOptions::default()).unwrap();
    assert_eq!(
        failed(&trickled_gz),
        ["column_count", "required(id)", "type(seen)"]
    );
}

#[test]
fn every_corpus_case_fails_with_its_rule_under_the_default_limits() {
    for case in corpus::all() {
        let yaml: &str = match case.kind {
            corpus::Kind::Csv => &CSV,
            corpus::Kind::Ndjson => &NDJSON,
        };
        let r = run(yaml, &case.data);
        assert!(
            failed(&r).iter().any(|f| f.starts_with(case.rule)),
            "{}: expected {} among {:?}",
            case.name,
            case.rule,
            failed(&r)
        );
    }
}

#[test]
fn a_size_past_the_contracts_bound_is_refused_without_reading() {
    let yaml = format!(
        "{}    rules:\n      - {{ rule: size, max_bytes: 1048576 }}\n",
        *CSV
    );
    let c = contract(&yaml);
    let five_gb = 5u64 << 30;
    // A stream that fails on the first read: the verdict must come from the size alone.
    let r = validate_with(
        &c,
        &c.tables[0],
        Breaks { data: b"", ok: 0 },
        &ValidateOptions {
            size: Some(five_gb),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (r.verdict, failed(&r)),
        (Verdict::Fail, vec!["size".to_owned()])
    );
    assert_eq!(r.bytes, 0);
    assert!(
        outcome(&r, "size", None)
            .detail
            .contains("5368709120 bytes"),
        "{:?}",
        r.rules
    );
}
