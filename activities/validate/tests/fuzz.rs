//! Arbitrary bytes never panic the CSV or NDJSON validators, compressed or not, and the report
//! stays consistent with what was read.

mod common;

use common::*;
use std::sync::LazyLock;

use lakegate_validate::{Contract, Limits, ValidateOptions, validate_with};
use proptest::prelude::*;

const CSV: &str = "dataset: d\ntables:\n  - name: t\n    format: { null_values: [NA] }\n    columns:\n      - { name: id, required: true, identifier: true }\n      - { name: n, type: decimal }\n      - { name: d, type: date }\n      - { name: s }\n    rules:\n      - { rule: unique, column: id, max_distinct: 8 }\n      - { rule: range, column: n, min: 0, max: 10 }\n      - { rule: regex, column: s, pattern: '^[a-z]+$' }\n      - { rule: max_length, column: s, max: 3 }\n      - { rule: completeness, column: s, min_ratio: 0.5 }\n      - { rule: phi }\n";
const NDJSON: &str = "dataset: d\ntables:\n  - name: t\n    format: { kind: fhir, resource_type: Patient }\n    columns:\n      - { name: id, required: true }\n      - { name: birthDate, type: date }\n      - { name: name.0.family }\n    rules:\n      - { rule: phi }\n      - { rule: allowed_values, column: name.0.family, values: [a, b] }\n";

static CSV_C: LazyLock<Contract> = LazyLock::new(|| contract(CSV));
static NDJSON_C: LazyLock<Contract> = LazyLock::new(|| contract(NDJSON));

/// Small limits so that arbitrary inputs also reach the overlong and bomb paths.
fn opts() -> ValidateOptions {
    ValidateOptions {
        limits: Limits {
            max_record_bytes: 64,
            max_fields: 8,
            ratio_grace_bytes: 256,
            max_compression_ratio: 4,
            ..Limits::default()
        },
        ..ValidateOptions::default()
    }
}

/// Bytes with a bias toward the characters that matter to the parsers.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    const INTERESTING: &[u8] = b",\"\n\r{}[]:\0\xEF1a@-";
    let byte = any::<(u8, u8)>().prop_map(|(pick, b)| {
        if pick < 160 {
            INTERESTING[usize::from(pick) % INTERESTING.len()]
        } else {
            b
        }
    });
    prop::collection::vec(byte, 0..600)
}

fn check(c: &Contract, data: &[u8]) {
    for bytes in [data.to_vec(), gzip(data)] {
        let r = validate_with(c, &c.tables[0], &bytes[..], &opts())
            .expect("in-memory streams do not fail");
        assert_eq!(r.bytes, bytes.len() as u64);
        for o in &r.rules {
            assert!(o.first_rows.len() <= ValidateOptions::default().max_rows_per_rule);
            // CSV rows are data records; NDJSON rows are line numbers, blank lines included.
            let lines = memchr_count(data) + 1;
            assert!(
                o.first_rows.iter().all(|&row| row <= r.rows.max(lines)),
                "{o:?} rows {}",
                r.rows
            );
        }
    }
}

fn memchr_count(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn csv_never_panics(data in bytes()) {
        check(&CSV_C, &data);
    }

    #[test]
    fn ndjson_never_panics(data in bytes()) {
        check(&NDJSON_C, &data);
    }

    #[test]
    fn csv_with_a_valid_header_never_panics(body in bytes()) {
        let mut data = b"id,n,d,s\n".to_vec();
        data.extend(body);
        check(&CSV_C, &data);
    }

    #[test]
    fn fhir_lines_never_panic(body in bytes()) {
        let mut data = b"{\"resourceType\":\"Patient\",\"id\":\"1\",\"name\":[{\"family\":\"".to_vec();
        data.extend(body);
        check(&NDJSON_C, &data);
    }
}
