//! Formats past plain CSV (NDJSON, FHIR, gzip), PHI detectors, and what a report records about
//! its failures and the stored object.

use lakegate_models::Verdict;
use lakegate_validate::ValidateOptions;

use crate::common::*;
use crate::{ID, case, table};

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
