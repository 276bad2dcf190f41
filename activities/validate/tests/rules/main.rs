//! Every rule with a file that passes it and one that fails it, checking the rule id, the
//! column, the failing row numbers and the verdict a steward relies on.

mod cells;
#[path = "../common/mod.rs"]
mod common;
mod formats;

use common::*;
use lakegate_models::{Severity, Verdict};
use lakegate_validate::ValidateOptions;

/// `good` passes every rule; `bad` fails exactly `rule(column)` at `rows`, and the file fails.
fn case(yaml: &str, good: &str, bad: &str, rule: &str, column: Option<&str>, rows: &[u64]) {
    case_opts(
        yaml,
        good,
        bad,
        rule,
        column,
        rows,
        &ValidateOptions::default(),
    );
}

fn case_opts(
    yaml: &str,
    good: &str,
    bad: &str,
    rule: &str,
    column: Option<&str>,
    rows: &[u64],
    o: &ValidateOptions,
) {
    let r = run_opts(yaml, good.as_bytes(), o);
    assert!(
        failed(&r).is_empty(),
        "good file failed {:?}: {:#?}",
        failed(&r),
        r.rules
    );
    assert_eq!(r.verdict, Verdict::Pass);
    assert!(outcome(&r, rule, column).passed);
    let r = run_opts(yaml, bad.as_bytes(), o);
    let want = match column {
        Some(c) => format!("{rule}({c})"),
        None => rule.to_owned(),
    };
    assert_eq!(failed(&r), vec![want], "{:#?}", r.rules);
    let o = outcome(&r, rule, column);
    assert_eq!(o.first_rows, rows, "{o:?}");
    assert_eq!(
        r.verdict,
        if o.severity == Severity::Error {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    );
}

fn table(columns: &str, rules: &str) -> String {
    format!(
        "dataset: t\ntables:\n  - name: t\n    keys: ['**/*.csv']\n    columns:\n{columns}\n    rules:\n{rules}\n"
    )
}

const ID: &str = "      - { name: id }";

#[test]
fn file_name_and_extension() {
    let y = table(
        ID,
        "      - { rule: file_name, pattern: '^patients_[0-9]{8}\\.csv$' }",
    );
    let good = ValidateOptions {
        name: Some("landing/a/patients_20260101.csv".into()),
        ..Default::default()
    };
    let bad = ValidateOptions {
        name: Some("landing/a/patients.csv".into()),
        ..Default::default()
    };
    assert!(failed(&run_opts(&y, b"id\n1\n", &good)).is_empty());
    assert_eq!(failed(&run_opts(&y, b"id\n1\n", &bad)), ["file_name"]);
    // Without a name the rule cannot be evaluated, and says so instead of failing the file.
    let skipped = run(&y, b"id\n1\n");
    assert!(
        outcome(&skipped, "file_name", None)
            .detail
            .contains("skipped")
    );

    let y = table(ID, "      - { rule: extension, allowed: [csv, csv.gz] }");
    let good = ValidateOptions {
        name: Some("x/p.CSV".into()),
        ..Default::default()
    };
    let bad = ValidateOptions {
        name: Some("x/p.txt".into()),
        ..Default::default()
    };
    assert!(failed(&run_opts(&y, b"id\n1\n", &good)).is_empty());
    assert_eq!(failed(&run_opts(&y, b"id\n1\n", &bad)), ["extension"]);
}

#[test]
fn size_bounds() {
    case(
        &table(ID, "      - { rule: size, min_bytes: 5, max_bytes: 10 }"),
        "id\n1\n2\n",
        "id\n1\n2\n3\n4\n",
        "size",
        None,
        &[],
    );
}

#[test]
fn not_empty_is_built_in_and_can_be_a_warning() {
    let y = table(ID, "      []");
    case(&y, "id\n1\n", "id\n", "not_empty", None, &[]);
    let r = run(
        &table(ID, "      - { rule: not_empty, severity: warn }"),
        b"id\n",
    );
    assert_eq!(failed(&r), ["not_empty"]);
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn utf8_with_bom_accepted() {
    let y = table(ID, "      []");
    let r = run(&y, "\u{feff}id\n1\n\u{e9}\n".as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let r = run(&y, b"id\n1\n\xe9t\xe9\n");
    assert_eq!(failed(&r), ["utf8"]);
    assert_eq!(outcome(&r, "utf8", None).first_rows, [2]);
    let latin1 = "dataset: t\ntables:\n  - name: t\n    format: { encoding: latin-1 }\n    columns: [{ name: id }]\n";
    assert!(failed(&run(latin1, b"id\n1\n\xe9t\xe9\n")).is_empty());
}

#[test]
fn header_modes_and_case() {
    let cols = "      - { name: a }\n      - { name: b }";
    case(
        &table(cols, "      []"),
        "a,b\n1,2\n",
        "b,a\n2,1\n",
        "header_matches",
        None,
        &[0],
    );
    let y = table(cols, "      - { rule: header_matches, mode: ordered }");
    case(
        &y,
        "a,x,b\n1,0,2\n",
        "b,x,a\n2,0,1\n",
        "header_matches",
        None,
        &[0],
    );
    let y = table(cols, "      - { rule: header_matches, mode: subset }");
    case(
        &y,
        "b,x,a\n2,0,1\n",
        "b,x\n2,0\n",
        "header_matches",
        None,
        &[0],
    );
    let y = table(cols, "      - { rule: header_matches, case: insensitive }");
    case(&y, "A,B\n1,2\n", "A,C\n1,2\n", "header_matches", None, &[0]);
    // A column missing from the header cannot be checked; its own rules say so.
    let y = table(
        "      - { name: a }\n      - { name: b, required: true }",
        "      []",
    );
    let r = run(&y, b"a\n1\n");
    assert_eq!(failed(&r), ["header_matches", "required(b)"]);
    assert_eq!(
        outcome(&r, "required", Some("b")).detail,
        "column is missing from the file"
    );
}

#[test]
fn wrong_delimiter_is_named() {
    let y = table("      - { name: a }\n      - { name: b }", "      []");
    let r = run(&y, b"a;b\n1;2\n");
    assert_eq!(failed(&r), ["header_matches"]);
    assert!(
        outcome(&r, "header_matches", None)
            .detail
            .contains("delimiter"),
        "{:?}",
        r.rules
    );
}

#[test]
fn row_count_bounds() {
    case(
        &table(ID, "      - { rule: row_count, min: 2, max: 3 }"),
        "id\n1\n2\n",
        "id\n1\n",
        "row_count",
        None,
        &[],
    );
}

#[test]
fn duplicate_file_by_checksum() {
    let y = table(ID, "      - { rule: duplicate_file }");
    let first = run(&y, b"id\n1\n");
    let opts = ValidateOptions {
        known_checksums: [first.sha256.to_uppercase()].into(),
        ..Default::default()
    };
    case_opts(&y, "id\n2\n", "id\n1\n", "duplicate_file", None, &[], &opts);
}
