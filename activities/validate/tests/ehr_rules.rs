//! The rules real EHR extracts need: several timestamp formats and FHIR's partial dates, `*`
//! over NDJSON arrays, declared paths no line has, `compare`, `when`, and SSNs in identifier
//! columns. Each with a passing and a failing file.

mod common;

use common::*;
use lakegate_models::{Severity, Verdict};

fn csv(columns: &str, rules: &str) -> String {
    format!(
        "dataset: t\ntables:\n  - name: t\n    keys: ['**/*.csv']\n    columns:\n{columns}\n    rules:\n{rules}\n"
    )
}

fn ndjson(columns: &str, extra: &str) -> String {
    format!(
        "dataset: t\ntables:\n  - name: t\n    keys: ['**/*.ndjson']\n    format: {{ kind: fhir, resource_type: Patient }}\n{extra}    columns:\n{columns}\n"
    )
}

#[test]
fn mixed_precision_timestamps_pass_with_an_optional_fraction_or_several_formats() {
    let y = csv(
        "      - { name: at, type: timestamp, format: '%Y-%m-%dT%H:%M:%S%.f%z' }\n      - { name: day, type: date, formats: ['%Y-%m-%d', '%m/%d/%Y'] }",
        "      - { rule: date_range, column: day, min: '2000-01-01' }",
    );
    let good =
        "at,day\n2025-06-01T10:00:00Z,2025-06-01\n2025-06-01T10:00:00.123456+02:00,06/02/2025\n";
    let r = run(&y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let bad = "at,day\n2025-06-01T10:00:00.Z,2025-06-01\n2025-06-01T10:00:00Z,1999/06/02\n2025-06-01T10:00:00Z,06/02/1999\n";
    let r = run(&y, bad.as_bytes());
    assert_eq!(outcome(&r, "type", Some("at")).first_rows, [1]);
    assert_eq!(outcome(&r, "type", Some("day")).first_rows, [2]);
    // The US-format date is read by its own format, so date_range compares it as a date.
    assert_eq!(outcome(&r, "date_range", Some("day")).first_rows, [3]);
}

#[test]
fn the_type_detail_keeps_the_format_as_written() {
    let y = csv(
        "      - { name: at, type: timestamp, format: '%Y-%m-%dT%H:%M:%S%z' }",
        "      []",
    );
    let r = run(&y, b"at\nnope\n");
    let o = outcome(&r, "type", Some("at"));
    assert!(o.detail.contains("%Y-%m-%dT%H:%M:%S%z"), "{}", o.detail);
}

#[test]
fn fhir_dates_accept_partial_precisions_and_zones_and_date_range_applies() {
    let y = ndjson(
        "      - { name: birthDate, type: fhir_date }\n      - { name: meta.lastUpdated, type: fhir_datetime }",
        "    rules:\n      - { rule: date_range, column: birthDate, min: '1900-01-01' }\n",
    );
    let good = concat!(
        r#"{"resourceType":"Patient","id":"a","birthDate":"1984","meta":{"lastUpdated":"2025-06-01T10:00:00Z"}}"#,
        "\n",
        r#"{"resourceType":"Patient","id":"b","birthDate":"1984-03","meta":{"lastUpdated":"2025-06-01T10:00:00.123+02:00"}}"#,
        "\n",
        r#"{"resourceType":"Patient","id":"c","birthDate":"1984-03-07","meta":{"lastUpdated":"2025-06"}}"#,
        "\n",
    );
    let r = run(&y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let bad = concat!(
        r#"{"resourceType":"Patient","id":"a","birthDate":"1984-3","meta":{"lastUpdated":"2025-06-01T10:00:00"}}"#,
        "\n",
        r#"{"resourceType":"Patient","id":"b","birthDate":"1850","meta":{"lastUpdated":"2025-06-01T10:00Z"}}"#,
        "\n",
    );
    let r = run(&y, bad.as_bytes());
    assert_eq!(outcome(&r, "type", Some("birthDate")).first_rows, [1]);
    assert_eq!(
        outcome(&r, "type", Some("meta.lastUpdated")).first_rows,
        [1, 2]
    );
    assert_eq!(outcome(&r, "date_range", Some("birthDate")).first_rows, [2]);
}

#[test]
fn star_paths_check_every_element_and_count_a_line_once() {
    let y = ndjson(
        "      - { name: telecom.*.value, required: true }\n      - { name: telecom.*.system }",
        "    rules:\n      - { rule: allowed_values, column: telecom.*.system, values: [phone, email] }\n",
    );
    let good = concat!(
        r#"{"resourceType":"Patient","id":"a","telecom":[{"system":"phone","value":"x"},{"system":"email","value":"y"}]}"#,
        "\n"
    );
    let r = run(&y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let bad = concat!(
        // Two bad elements: the line counts once.
        r#"{"resourceType":"Patient","id":"a","telecom":[{"system":"fax","value":"x"},{"system":"pager","value":"y"}]}"#,
        "\n",
        // An element without a value, and one with: required fails for the line.
        r#"{"resourceType":"Patient","id":"b","telecom":[{"system":"phone"},{"system":"phone","value":"y"}]}"#,
        "\n",
        // No telecom at all: one null.
        r#"{"resourceType":"Patient","id":"c"}"#,
        "\n",
    );
    let r = run(&y, bad.as_bytes());
    let allowed = outcome(&r, "allowed_values", Some("telecom.*.system"));
    assert_eq!((allowed.failures, &allowed.first_rows[..]), (1, &[1][..]));
    let required = outcome(&r, "required", Some("telecom.*.value"));
    assert_eq!(required.first_rows, [2, 3]);
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn a_declared_path_no_line_has_is_a_warning_by_default_and_configurable() {
    let cols = "      - { name: birthdate }\n      - { name: gender }";
    let data = concat!(
        r#"{"resourceType":"Patient","id":"a","birthDate":"1984","gender":"female"}"#,
        "\n"
    );
    let r = run(&ndjson(cols, ""), data.as_bytes());
    let o = outcome(&r, "declared_paths", None);
    assert!(!o.passed && o.severity == Severity::Warn, "{o:?}");
    assert_eq!(o.failures, 1);
    assert!(o.detail.contains("birthdate") && !o.detail.contains("gender"));
    assert_eq!(r.verdict, Verdict::Pass);
    assert!(!o.detail.contains("female"), "no values in details");

    let r = run(&ndjson(cols, "    unseen_paths: error\n"), data.as_bytes());
    assert_eq!(r.verdict, Verdict::Fail);
    let r = run(&ndjson(cols, "    unseen_paths: off\n"), data.as_bytes());
    assert!(r.rules.iter().all(|o| o.rule != "declared_paths"));
    // A path present only as null was seen.
    let data = concat!(
        r#"{"resourceType":"Patient","id":"a","birthdate":null,"gender":"x"}"#,
        "\n"
    );
    assert!(
        outcome(
            &run(&ndjson(cols, ""), data.as_bytes()),
            "declared_paths",
            None
        )
        .passed
    );
}

#[test]
fn compare_two_columns_dates_and_numbers() {
    let y = csv(
        "      - { name: start, type: date }\n      - { name: end, type: date }\n      - { name: lo, type: integer }\n      - { name: hi, type: decimal }",
        "      - { rule: compare, column: end, op: '>=', other: start }\n      - { rule: compare, column: lo, op: '<', other: hi, severity: warn }",
    );
    let good = "start,end,lo,hi\n2025-01-01,2025-01-01,1,1.5\n2025-01-01,,2,\n";
    let r = run(&y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let bad = "start,end,lo,hi\n2025-01-02,2025-01-01,1,1.5\n2025-01-01,2025-01-03,3,2.5\n";
    let r = run(&y, bad.as_bytes());
    let dates = outcome(&r, "compare", Some("end"));
    assert_eq!(dates.first_rows, [1]);
    assert!(dates.detail.contains("end >= start"), "{}", dates.detail);
    assert_eq!(outcome(&r, "compare", Some("lo")).first_rows, [2]);
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn when_applies_a_rule_only_to_rows_with_the_given_value() {
    // The condition column comes after the checked one: conditions are decided per row first.
    let y = csv(
        "      - { name: code }\n      - { name: system }",
        "      - { rule: regex, column: code, pattern: '^[A-Z][0-9]{2}', when: { column: system, in: [ICD10CM] } }\n      - { rule: required, column: code, when: { column: system, in: [SNOMED] } }",
    );
    let good = "code,system\nE11.9,ICD10CM\n44054006,SNOMED\nwhatever,LOCAL\n,LOCAL\n";
    let r = run(&y, good.as_bytes());
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let bad = "code,system\n44054006,ICD10CM\n,SNOMED\nE11.9,SNOMED\n";
    let r = run(&y, bad.as_bytes());
    assert_eq!(outcome(&r, "regex", Some("code")).first_rows, [1]);
    assert_eq!(outcome(&r, "required", Some("code")).first_rows, [2]);
}

#[test]
fn contract_rejects_bad_compare_and_when() {
    use std::path::Path;
    let load = |rules: &str| {
        lakegate_validate::Contract::parse(
            &csv(
                "      - { name: a, type: date }\n      - { name: b }\n      - { name: n, type: integer }",
                rules,
            ),
            Path::new("t.yaml"),
        )
        .unwrap_err()
        .to_string()
    };
    assert!(load("      - { rule: compare, column: a, op: '<', other: zz }").contains("zz"));
    assert!(
        load("      - { rule: compare, column: a, op: '<', other: n }").contains("compare needs")
    );
    assert!(load("      - { rule: compare, column: a, op: '~', other: a }").contains("~"));
    assert!(
        load("      - { rule: regex, column: b, pattern: x, when: { column: zz, in: [x] } }")
            .contains("when: column zz")
    );
}

#[test]
fn identifier_columns_can_opt_into_the_ssn_detector() {
    let y = csv(
        "      - { name: mrn, identifier: true, scan: [ssn] }\n      - { name: other_id, identifier: true }",
        "      []",
    );
    let r = run(&y, b"mrn,other_id\nA100234,123-45-6789\n");
    assert!(failed(&r).is_empty(), "{:#?}", r.rules);
    let r = run(&y, b"mrn,other_id\nA100234,1\n123-45-6789,2\n");
    let o = outcome(&r, "phi", Some("mrn"));
    assert_eq!(o.first_rows, [2]);
    assert!(o.detail.contains("ssn 1"), "{}", o.detail);
    assert!(!o.detail.contains("6789"));
}
