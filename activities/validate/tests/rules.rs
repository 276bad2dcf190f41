//! Every rule with a file that passes it and one that fails it, checking the rule id, the
//! column, the failing row numbers and the verdict a steward relies on.

mod common;

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

#[test]
fn ndjson_and_fhir_resources() {
    let y = "dataset: f\ntables:\n  - name: p\n    format: { kind: fhir, resource_type: Patient }\n    columns:\n      - { name: id, required: true }\n      - { name: birthDate, type: date }\n      - { name: name.0.family }\n";
    let good = "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"birthDate\":\"1984-03-07\",\"name\":[{\"family\":\"Doe\"}]}\n\n{\"resourceType\":\"Patient\",\"id\":\"p2\"}\n";
    let bad = "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n{\"resourceType\":\"Observation\",\"id\":\"o1\"}\n{\"resourceType\":\"Patient\"}\n";
    let r = run(y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    assert_eq!(r.rows, 2);
    let r = run(y, &gzip(good.as_bytes()));
    assert!(failed(&r).is_empty(), "gzip NDJSON: {:#?}", r.rules);
    assert_eq!(r.rows, 2);
    let r = run(y, bad.as_bytes());
    // No line has birthDate or name.0.family: a warning, the verdict is the other rules'.
    assert_eq!(
        failed(&r),
        ["fhir_resource", "declared_paths", "required(id)"]
    );
    assert_eq!(outcome(&r, "fhir_resource", None).first_rows, [2, 3]);
    let r = run(
        y,
        b"{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n[1,2]\n{oops\n",
    );
    assert_eq!(failed(&r), ["json_parses", "declared_paths"]);
    assert_eq!(outcome(&r, "json_parses", None).first_rows, [2, 3]);
    let r = run(
        y,
        b"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"birthDate\":\"07/03/1984\"}\n",
    );
    assert_eq!(failed(&r), ["declared_paths", "type(birthDate)"]);
}

#[test]
fn gzip_by_magic_and_by_extension() {
    let y = table("      - { name: id, required: true }", "      []");
    let r = run(&y, &gzip(b"id\n1\n\n2\n"));
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    assert_eq!(r.rows, 2);
    assert!(outcome(&r, "gzip", None).passed);
    let r = run(&y, &gzip(b"id\n1\n \n"));
    assert_eq!(outcome(&r, "required", Some("id")).first_rows, [2]);
    // A .gz name on bytes that are not gzip is a named failure, not an error.
    let opts = ValidateOptions {
        name: Some("a/b.csv.gz".into()),
        ..Default::default()
    };
    let r = run_opts(&y, b"id\n1\n", &opts);
    assert_eq!(failed(&r), ["gzip", "not_empty", "header_matches"]);
}

#[test]
fn phi_detectors_and_column_policies() {
    let cols = "      - { name: id, identifier: true }\n      - { name: note }\n      - { name: ok, phi: allowed }\n      - { name: dob, type: date }";
    let y = table(cols, "      - { rule: phi }");
    case(
        &y,
        "id,note,ok,dob\n123-45-6789,stable,jane@x.org,1984-03-07\n",
        "id,note,ok,dob\n1,ssn 123-45-6789,a,1984-03-07\n2,fine,b,\n3,(555) 123-4567,c,\n4,j@example.com,d,\n5,MRN 1234567,e,\n6,seen 03/07/1984,f,\n",
        "phi",
        Some("note"),
        &[1, 3, 4, 5, 6],
    );
    let r = run(&y, b"id,note,ok,dob\n1,123-45-6789 j@x.org,a,\n");
    assert_eq!(
        outcome(&r, "phi", Some("note")).detail,
        "identifier-like values: ssn 1, email 1"
    );
    // Without the phi rule, only columns marked forbidden are scanned.
    let y = table(
        "      - { name: a }\n      - { name: b, phi: forbidden }",
        "      []",
    );
    case(
        &y,
        "a,b\n123-45-6789,x\n",
        "a,b\n1,123-45-6789\n",
        "phi",
        Some("b"),
        &[1],
    );
    // Detector selection, a source-specific MRN pattern and warn severity.
    let y = table(
        "      - { name: a }",
        "      - { rule: phi, detectors: [mrn], mrn_pattern: '^H[0-9]{4}$', severity: warn }",
    );
    let r = run(&y, b"a\n123-45-6789\nH1234\n");
    assert_eq!(
        (failed(&r), r.verdict),
        (vec!["phi(a)".to_owned()], Verdict::Pass)
    );
    assert_eq!(outcome(&r, "phi", Some("a")).first_rows, [2]);
}

#[test]
fn first_rows_are_capped_at_k_but_every_failure_counts() {
    let y = table("      - { name: id, required: true }", "      []");
    let data = format!("id\n{}", " \n".repeat(100));
    let opts = ValidateOptions {
        max_rows_per_rule: 3,
        ..Default::default()
    };
    let r = run_opts(&y, data.as_bytes(), &opts);
    let o = outcome(&r, "required", Some("id"));
    assert_eq!((o.failures, o.first_rows.clone()), (100, vec![1, 2, 3]));
}

#[test]
fn rows_bytes_and_checksum_describe_the_stored_object() {
    let y = table(ID, "      []");
    let data = b"id\n1\n2\n";
    let r = run(&y, data);
    assert_eq!((r.rows, r.bytes), (2, data.len() as u64));
    use sha2::Digest;
    assert_eq!(r.sha256, hex::encode(sha2::Sha256::digest(data)));
    let gz = gzip(data);
    let r2 = run(&y, &gz);
    assert_eq!((r2.rows, r2.bytes), (2, gz.len() as u64));
    assert_ne!(
        r.sha256, r2.sha256,
        "the checksum is of the bytes as stored"
    );
}

#[test]
fn a_contract_built_in_code_with_a_bad_pattern_fails_the_rule_instead_of_panicking() {
    use lakegate_validate::{Level, RuleSpec};
    let mut c = contract(&table("      - { name: v }", "      []"));
    c.tables[0].rules.push(RuleSpec::Regex {
        column: "v".into(),
        pattern: "(".into(),
        when: None,
        severity: Level::Error,
    });
    c.tables[0].rules.push(RuleSpec::Phi {
        detectors: None,
        mrn_pattern: Some("[".into()),
        severity: Level::Warn,
    });
    let r = lakegate_validate::validate(&c, &c.tables[0], &b"v\n1\n"[..]).unwrap();
    assert_eq!(failed(&r), ["phi(v)", "regex(v)"]);
    assert_eq!(
        outcome(&r, "regex", Some("v")).detail,
        "the contract's pattern does not compile"
    );
}
