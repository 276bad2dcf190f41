//! Loading contracts: the original minimal format still loads, bad contracts are rejected with
//! file, line and reason, and the committed JSON Schema matches the Rust types.

mod common;

use std::path::Path;

use common::*;
use lakegate_models::Verdict;
use lakegate_validate::{
    ColumnType, Compression, Contract, ContractError, ContractSet, FormatKind,
};

/// The format the workspace skeleton shipped with, verbatim.
const MINIMAL: &str = "
dataset: ehr
description: Sample EHR extract
tables:
  - name: patients
    keys: ['landing/**/patients*.csv']
    columns:
      - { name: id, required: true }
      - { name: gender }
";

#[test]
fn minimal_format_still_loads_with_defaults() {
    let c = contract(MINIMAL);
    let t = &c.tables[0];
    assert_eq!(t.format.kind, FormatKind::Csv);
    assert_eq!(
        (t.format.delimiter, t.format.quote, t.format.header),
        (',', '"', true)
    );
    assert_eq!(t.format.compression, Compression::Auto);
    assert!(t.columns.iter().all(|c| c.kind == ColumnType::String));
    let set = ContractSet::from_contracts(vec![c.clone()]);
    assert_eq!(
        set.resolve("landing/x/ehr/patients_1.csv")
            .map(|(_, t)| t.name.as_str()),
        Some("patients")
    );
    assert!(set.resolve("landing/x/ehr/visits.csv").is_none());
    assert!(set.table("ehr", "patients").is_some());
}

#[test]
fn minimal_contract_behaves_as_before() {
    let c = contract(MINIMAL);
    let t = &c.tables[0];
    let r = lakegate_validate::validate(&c, t, &b"id,gender\n1,F\n2,M\n"[..]).unwrap();
    assert_eq!((r.verdict, r.rows), (Verdict::Pass, 2));
    let r = lakegate_validate::validate(&c, t, &b"id,gender\n1,F\n ,SENTINEL_JANE\n"[..]).unwrap();
    assert_eq!(r.quarantine_reason(), "required(id)");
    assert_eq!(r.failed_rules().next().unwrap().first_rows, [2]);
    assert!(!serde_json::to_string(&r).unwrap().contains("SENTINEL"));
    let r = lakegate_validate::validate(&c, t, &b"id,sex\n1,F\n"[..]).unwrap();
    assert_eq!(r.quarantine_reason(), "header_matches");
}

#[test]
fn format_is_inferred_from_json_lines_keys_when_not_declared() {
    let kind = |keys: &str| {
        contract(&format!("dataset: d\ntables:\n  - name: t\n{keys}\n")).tables[0]
            .format
            .kind
    };
    assert_eq!(
        kind("    keys: ['landing/*/ehr_fhir/Patient*.ndjson', 'a/*.jsonl.gz']"),
        FormatKind::Ndjson
    );
    assert_eq!(
        kind("    key_regex: ['^a/[0-9]+\\.ndjson\\.gz$']"),
        FormatKind::Ndjson
    );
    assert_eq!(kind("    keys: ['a/*.ndjson', 'a/*.csv']"), FormatKind::Csv);
    assert_eq!(kind("    keys: []"), FormatKind::Csv);
    assert_eq!(
        kind("    keys: ['a/*.ndjson']\n    format: { kind: csv }"),
        FormatKind::Csv
    );
    // The sample FHIR contract's shape: top-level elements as columns, no format.
    let c = contract(
        "dataset: f\ntables:\n  - name: patient\n    keys: ['landing/*/f/Patient*.ndjson']\n    columns:\n      - { name: resourceType, required: true }\n      - { name: id, required: true }\n      - { name: name }\n",
    );
    let r = lakegate_validate::validate(
        &c,
        &c.tables[0],
        &b"{\"resourceType\":\"Patient\",\"id\":\"1\",\"name\":[{\"family\":\"X\"}]}\n"[..],
    )
    .unwrap();
    assert_eq!(r.verdict, Verdict::Pass, "{:#?}", r.rules);
}

#[test]
fn key_regex_resolves_too() {
    let c = contract(
        "dataset: d\ntables:\n  - name: t\n    key_regex: ['^landing/[a-z]+/d/t_[0-9]+\\.ndjson$']\n",
    );
    let set = ContractSet::from_contracts(vec![c]);
    assert!(set.resolve("landing/src/d/t_1.ndjson").is_some());
    assert!(set.resolve("landing/src/d/t_x.ndjson").is_none());
}

fn load_error(yaml: &str) -> (usize, String) {
    match Contract::parse(yaml, Path::new("bad.yaml")) {
        Err(ContractError::Invalid { path, line, reason }) => {
            assert_eq!(path, Path::new("bad.yaml"));
            (line, reason)
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn rejections_name_the_line_and_the_reason() {
    let (line, reason) = load_error("dataset: d\ntables:\n  - name: t\n    colums: []\n");
    assert_eq!(line, 4, "{reason}");
    assert!(reason.contains("colums"), "{reason}");

    let (line, reason) = load_error("dataset: d\ntables: [\n");
    assert!(line >= 2, "{line} {reason}");

    let yaml = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a }\n    rules:\n      - { rule: not_null, column: a }\n      - { rule: regex, column: b, pattern: x }\n";
    let (line, reason) = load_error(yaml);
    assert_eq!(line, 8, "{reason}");
    assert!(reason.contains("column b is not declared"), "{reason}");

    let yaml = "dataset: d\ntables:\n  - name: t\n    columns: [{ name: a }]\n    rules:\n      - rule: not_null\n        column: a\n      - rule: regex\n        column: a\n        patern: x\n";
    let (line, reason) = load_error(yaml);
    assert_eq!(line, 8, "{reason}");
    assert!(reason.contains("patern"), "{reason}");

    let yaml = "dataset: d\ntables:\n  - name: t\n    columns: [{ name: a }]\n    rules:\n      - { rule: regex, column: a, pattern: '(' }\n";
    assert_eq!(load_error(yaml).0, 6);

    let yaml = "dataset: d\ntables:\n  - name: t\n    columns:\n      - { name: a }\n      - { name: when, type: date, format: '%Y-%q' }\n";
    let (line, reason) = load_error(yaml);
    assert_eq!(line, 6, "{reason}");
    assert!(reason.contains("%q"), "{reason}");

    let yaml = "dataset: d\ntables:\n  - name: t\n    columns: [{ name: a }]\n    rules:\n      - { rule: date_range, column: a, min: '2020-01-01' }\n";
    assert!(load_error(yaml).1.contains("date or timestamp"));
    let yaml = "dataset: d\ntables:\n  - name: t\n    columns: [{ name: a }, { name: a }]\n";
    assert!(load_error(yaml).1.contains("declared twice"));
    let yaml = "dataset: d\ntables:\n  - name: t\n    format: { kind: ndjson }\n    rules: [{ rule: fhir_resource }]\n";
    assert!(load_error(yaml).1.contains("fhir"));
    let yaml = "dataset: d\ntables:\n  - name: t\n    keys: ['a/[']\n";
    assert_eq!(load_error(yaml).0, 4);
}

#[test]
fn load_dir_reports_the_failing_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), MINIMAL).unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "dataset: b\ntables:\n  - name: t\n    bogus: 1\n",
    )
    .unwrap();
    let e = ContractSet::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("b.yml:4:"), "{e}");
    std::fs::remove_file(dir.path().join("b.yml")).unwrap();
    assert_eq!(
        ContractSet::load_dir(dir.path()).unwrap().contracts().len(),
        1
    );
}

/// Regenerate with `LAKEGATE_UPDATE_SCHEMA=1 cargo test -p lakegate-validate --test contract`.
#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("contract.schema.json");
    let fresh = Contract::json_schema();
    if std::env::var_os("LAKEGATE_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with LAKEGATE_UPDATE_SCHEMA=1 cargo test -p lakegate-validate --test contract",
        path.display()
    );
}

#[test]
fn schema_describes_rules_and_formats() {
    let schema: serde_json::Value = serde_json::from_str(&Contract::json_schema()).unwrap();
    let text = schema.to_string();
    for word in [
        "completeness",
        "header_matches",
        "fhir_resource",
        "phi",
        "ndjson",
        "latin-1",
        "timestamp",
    ] {
        assert!(text.contains(word), "schema lacks {word}");
    }
}
