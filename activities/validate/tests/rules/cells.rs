//! Rules on cell values: presence, types, patterns, ranges, lengths, uniqueness, completeness
//! and row shape.

use lakegate_models::Verdict;

use crate::common::*;
use crate::{case, table};

#[test]
fn required_not_null_not_blank() {
    let y = table(
        "      - { name: id, required: true }\n      - { name: x }",
        "      []",
    );
    case(
        &y,
        "id,x\n1,a\n",
        "id,x\n1,a\n  ,b\n,c\n",
        "required",
        Some("id"),
        &[2, 3],
    );
    let y = table(
        "      - { name: id }\n      - { name: x }",
        "      - { rule: not_null, column: x }",
    );
    case(
        &y,
        "id,x\n1, \n",
        "id,x\n1,a\n2,\n",
        "not_null",
        Some("x"),
        &[2],
    );
    let y = table(
        "      - { name: id }\n      - { name: x }",
        "      - { rule: not_blank, column: x }",
    );
    case(
        &y,
        "id,x\n1,a\n",
        "id,x\n1,a\n2, \n",
        "not_blank",
        Some("x"),
        &[2],
    );
    // Tokens listed in null_values count as missing.
    let y = "dataset: t\ntables:\n  - name: t\n    format: { null_values: [NULL] }\n    columns: [{ name: id, required: true }]\n";
    case(y, "id\n1\n", "id\n1\nNULL\n", "required", Some("id"), &[2]);
}

#[test]
fn types_parse() {
    let col = |t: &str| table(&format!("      - {{ name: v, type: {t} }}"), "      []");
    case(
        &col("integer"),
        "v\n-12\n+3\n\n",
        "v\n1\n1.5\n99999999999999999999\n",
        "type",
        Some("v"),
        &[2, 3],
    );
    case(
        &col("decimal"),
        "v\n-1.5\n3\n.5\n",
        "v\n1e5\n1.2.3\n",
        "type",
        Some("v"),
        &[1, 2],
    );
    case(
        &col("boolean"),
        "v\ntrue\nN\n0\n",
        "v\nmaybe\n",
        "type",
        Some("v"),
        &[1],
    );
    case(
        &col("date"),
        "v\n2024-02-29\n",
        "v\n2023-02-29\n29/02/2024\n",
        "type",
        Some("v"),
        &[1, 2],
    );
    let y = table(
        "      - { name: v, type: timestamp, format: '%d/%m/%Y %H:%M' }",
        "      []",
    );
    case(
        &y,
        "v\n07/03/1984 13:05\n",
        "v\n1984-03-07T13:05:00\n",
        "type",
        Some("v"),
        &[1],
    );
    let y = table(
        "      - { name: v, type: integer }",
        "      - { rule: type, column: v, severity: warn }",
    );
    let r = run(&y, b"v\nx\n");
    assert_eq!(
        (failed(&r), r.verdict),
        (vec!["type(v)".to_owned()], Verdict::Pass)
    );
}

#[test]
fn regex_allowed_values() {
    let y = table(
        "      - { name: v }",
        "      - { rule: regex, column: v, pattern: '^[A-Z][0-9]{2}$' }",
    );
    case(
        &y,
        "v\nI10\n\n",
        "v\nI10\ni10\nI100\n",
        "regex",
        Some("v"),
        &[2, 3],
    );
    let y = table(
        "      - { name: v }",
        "      - { rule: allowed_values, column: v, values: [F, M, U] }",
    );
    case(
        &y,
        "v\nF\nM\n",
        "v\nF\nf\nX\n",
        "allowed_values",
        Some("v"),
        &[2, 3],
    );
    let y = table(
        "      - { name: v }",
        "      - { rule: allowed_values, column: v, values: [F, M], case: insensitive }",
    );
    case(
        &y,
        "v\nf\nM\n",
        "v\nf\nX\n",
        "allowed_values",
        Some("v"),
        &[2],
    );
}

#[test]
fn numeric_and_date_ranges() {
    let y = table(
        "      - { name: v, type: decimal }",
        "      - { rule: range, column: v, min: 0, max: 130.5 }",
    );
    case(
        &y,
        "v\n0\n130.5\n",
        "v\n-1\n50\n131\n",
        "range",
        Some("v"),
        &[1, 3],
    );
    let y = table(
        "      - { name: v, type: date }",
        "      - { rule: date_range, column: v, min: '1900-01-01', max: '2026-12-31' }",
    );
    case(
        &y,
        "v\n1900-01-01\n2026-12-31\n",
        "v\n1899-12-31\n2027-01-01\n",
        "date_range",
        Some("v"),
        &[1, 2],
    );
}

#[test]
fn max_length_counts_characters() {
    let y = table(
        "      - { name: v }",
        "      - { rule: max_length, column: v, max: 3 }",
    );
    case(
        &y,
        "v\nabc\n\u{e9}\u{e9}\u{e9}\n",
        "v\nabcd\n",
        "max_length",
        Some("v"),
        &[1],
    );
}

#[test]
fn unique_within_file_and_its_bound() {
    let y = table(
        "      - { name: k }\n      - { name: v }",
        "      - { rule: unique, column: v }",
    );
    // Missing values are not duplicates of each other.
    case(
        &y,
        "k,v\n1,1\n2,2\n3,\n4,\n",
        "k,v\n1,1\n2,2\n3,1\n4,2\n",
        "unique",
        Some("v"),
        &[3, 4],
    );
    let y = table(
        "      - { name: v }",
        "      - { rule: unique, column: v, max_distinct: 2 }",
    );
    let r = run(&y, b"v\n1\n2\n3\n3\n1\n");
    let o = outcome(&r, "unique", Some("v"));
    assert_eq!(
        o.first_rows,
        [5],
        "past the bound only tracked values are caught"
    );
    assert!(o.detail.contains("tracking limit"), "{o:?}");
}

#[test]
fn completeness_threshold() {
    // Two columns: csv skips empty lines, so a one-column file cannot hold an empty value.
    let y = table(
        "      - { name: k }\n      - { name: v }",
        "      - { rule: completeness, column: v, min_ratio: 0.75 }",
    );
    let r = run(&y, b"k,v\n1,1\n2,2\n3,3\n4,\n");
    assert!(outcome(&r, "completeness", Some("v")).passed);
    let r = run(&y, b"k,v\n1,1\n2,2\n3,\n4,\n");
    let o = outcome(&r, "completeness", Some("v"));
    assert!(!o.passed);
    assert_eq!(o.failures, 2);
    assert!(o.detail.starts_with("50.00%"), "{o:?}");
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn ragged_rows() {
    let y = table("      - { name: a }\n      - { name: b }", "      []");
    case(
        &y,
        "a,b\n1,2\n",
        "a,b\n1,2\n1\n1,2,3\n",
        "column_count",
        None,
        &[2, 3],
    );
    let headerless = "dataset: t\ntables:\n  - name: t\n    format: { header: false, delimiter: \"\\t\" }\n    columns: [{ name: a }, { name: b }]\n";
    case(
        headerless,
        "1\t2\n",
        "1\t2\n3\n",
        "column_count",
        None,
        &[2],
    );
}
