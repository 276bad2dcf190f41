//! The malformed-file corpus: broken files a sender really produces (ragged rows, wrong
//! encodings, truncated gzip, bombs), each with the rule that must name it. The engine's own
//! tests (`tests/malformed.rs`) and the end-to-end hostile-input test run the same files, so a
//! case added here is checked both offline and through a real worker.
//!
//! Behind the `testing` feature: test data, not part of the engine.

use std::io::Write;

/// CSV table the corpus is written against (three columns, one required, one a date).
pub const CSV_TABLE: &str = "  - name: t\n    columns:\n      - { name: id, required: true }\n      - { name: dx }\n      - { name: seen, type: date }\n";
/// FHIR NDJSON table the corpus is written against.
pub const NDJSON_TABLE: &str = "  - name: t\n    format: { kind: fhir, resource_type: Patient }\n    columns:\n      - { name: id, required: true }\n";

/// A contract of one table: `dataset: <dataset>`, then `table` (one of the constants above),
/// with `keys` added to the table when given.
pub fn contract_yaml(dataset: &str, table: &str, name: &str, keys: Option<&str>) -> String {
    let mut table = table.replacen("name: t", &format!("name: {name}"), 1);
    if let Some(glob) = keys {
        table = table.replacen('\n', &format!("\n    keys: [\"{glob}\"]\n"), 1);
    }
    format!("dataset: {dataset}\ntables:\n{table}")
}

/// Which corpus table a file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Csv,
    Ndjson,
}

/// One broken file: a name for reports, its table, its bytes, and the rule that must fail under
/// the engine's default limits.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub name: &'static str,
    pub kind: Kind,
    pub data: Vec<u8>,
    pub rule: &'static str,
}

pub fn ragged_rows() -> Vec<u8> {
    b"id,dx,seen\n1,a,2024-01-01\n2,b\n3,c,2024-01-01,extra\n".to_vec()
}

pub fn unbalanced_quotes() -> Vec<u8> {
    b"id,dx,seen\n1,\"a,2024-01-01\n2,b,2024-01-01\n".to_vec()
}

pub fn latin1() -> Vec<u8> {
    b"id,dx,seen\n1,caf\xe9,2024-01-01\n".to_vec()
}

pub fn utf16() -> Vec<u8> {
    "\u{feff}id,dx,seen\n1,a,2024-01-01\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

pub fn nul_csv() -> Vec<u8> {
    b"id,dx,seen\n1,a\0b,2024-01-01\n".to_vec()
}

pub fn nul_ndjson() -> Vec<u8> {
    b"{\"resourceType\":\"Patient\",\"id\":\"\0\"}\n".to_vec()
}

pub fn header_only() -> Vec<u8> {
    b"id,dx,seen\n".to_vec()
}

pub fn wrong_delimiter() -> Vec<u8> {
    b"id;dx;seen\n1;a;2024-01-01\n".to_vec()
}

/// A CSV whose first record holds a field of `len` bytes.
pub fn long_csv_record(len: usize) -> Vec<u8> {
    let mut data = b"id,dx,seen\n1,".to_vec();
    data.extend(std::iter::repeat_n(b'x', len));
    data.extend(b",2024-01-01\n2,a,2024-01-01\n");
    data
}

/// An NDJSON file whose first line is longer than `len` bytes.
pub fn long_ndjson_line(len: usize) -> Vec<u8> {
    let mut data = b"{\"resourceType\":\"Patient\",\"id\":\"".to_vec();
    data.extend(std::iter::repeat_n(b'x', len));
    data.extend(b"\"}\n{\"resourceType\":\"Patient\",\"id\":\"2\"}\n");
    data
}

/// A CSV whose first record has `fields + 1` fields.
pub fn many_fields(fields: usize) -> Vec<u8> {
    format!("id,dx,seen\n{}\n1,a,2024-01-01\n", ",".repeat(fields)).into_bytes()
}

pub fn deep_array() -> Vec<u8> {
    format!("{}\n", "[".repeat(100_000)).into_bytes()
}

pub fn deep_field() -> Vec<u8> {
    format!(
        "{{\"resourceType\":\"Patient\",\"id\":\"1\",\"x\":{}{}}}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    )
    .into_bytes()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// A small valid CSV, gzipped.
pub fn valid_gzip() -> Vec<u8> {
    gzip(b"id,dx,seen\n1,a,2024-01-01\n2,b,2024-01-01\n")
}

/// A gzip file cut 12 bytes short (its trailer and some data missing).
pub fn truncated_gzip() -> Vec<u8> {
    let gz = valid_gzip();
    gz[..gz.len() - 12].to_vec()
}

/// gzip magic and header, then bytes that are not deflate.
pub fn gzip_garbage() -> Vec<u8> {
    let mut bad = valid_gzip()[..10].to_vec();
    bad.extend(b"not deflate at all");
    bad
}

/// 40 MiB of zeros in well under 200 KiB: past the default inflation ratio.
pub fn gzip_bomb() -> Vec<u8> {
    gzip(&vec![b'0'; 40 << 20])
}

/// Every case, with the rule that names it under the default limits (a record past 1 MiB,
/// more than 4,096 fields).
pub fn all() -> Vec<Malformed> {
    use Kind::{Csv, Ndjson};
    let case = |name, kind, data, rule| Malformed {
        name,
        kind,
        data,
        rule,
    };
    vec![
        case("ragged_rows", Csv, ragged_rows(), "column_count"),
        case(
            "unbalanced_quotes",
            Csv,
            unbalanced_quotes(),
            "balanced_quotes",
        ),
        case("latin1", Csv, latin1(), "utf8"),
        case("utf16", Csv, utf16(), "no_nul_bytes"),
        case("nul_csv", Csv, nul_csv(), "no_nul_bytes"),
        case("nul_ndjson", Ndjson, nul_ndjson(), "no_nul_bytes"),
        case("empty_csv", Csv, Vec::new(), "not_empty"),
        case("empty_ndjson", Ndjson, Vec::new(), "not_empty"),
        case("header_only", Csv, header_only(), "not_empty"),
        case("wrong_delimiter", Csv, wrong_delimiter(), "header_matches"),
        case(
            "long_csv_record",
            Csv,
            long_csv_record((1 << 20) + 1),
            "record_length",
        ),
        case(
            "long_ndjson_line",
            Ndjson,
            long_ndjson_line((1 << 20) + 1),
            "record_length",
        ),
        case("many_fields", Csv, many_fields(5000), "record_length"),
        case("deep_array", Ndjson, deep_array(), "json_parses"),
        case("deep_field", Ndjson, deep_field(), "json_parses"),
        case("truncated_gzip", Csv, truncated_gzip(), "gzip"),
        case("gzip_garbage", Csv, gzip_garbage(), "gzip"),
        case("gzip_bomb", Csv, gzip_bomb(), "decompression_limit"),
    ]
}
