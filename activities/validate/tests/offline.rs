//! The offline command (`lakegate validate`): exit codes, table resolution, both output forms,
//! and planted PHI that must not appear in any of them.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use lakegate_validate::{ValidateOptions, render_table, run_offline, validate_with};

const CONTRACT: &str = "dataset: ehr
tables:
  - name: patients
    keys: ['**/patients*.csv', '**/patients*.csv.gz']
    columns:
      - { name: patient_id, required: true, identifier: true }
      - { name: gender }
      - { name: birth_date, type: date }
      - { name: note }
    rules:
      - { rule: allowed_values, column: gender, values: [F, M, U] }
      - { rule: regex, column: patient_id, pattern: '^P[0-9]+$' }
      - { rule: max_length, column: note, max: 10 }
      - { rule: unique, column: patient_id }
      - { rule: phi }
  - name: visits
    keys: ['**/visits*.csv']
    columns:
      - { name: visit_id, required: true }
";

/// Distinctive values planted in every failing position; none may reach any output.
const SENTINELS: [&str; 6] = [
    "ZZSENTINELNAME",
    "123-45-6789",
    "zz.sentinel@example.org",
    "(555) 867-5309",
    "PZZ999",
    "1911-11-11",
];

fn planted() -> String {
    format!(
        "patient_id,gender,birth_date,note\n\
         {id},{name},{dob}x,{ssn}\n\
         P1,{name},{dob},{mail} {phone}\n\
         P1,F,2001-01-01,MRN 00{digits}\n\
         P2,M\n",
        id = SENTINELS[4],
        name = SENTINELS[0],
        dob = SENTINELS[5],
        ssn = SENTINELS[1],
        mail = SENTINELS[2],
        phone = SENTINELS[3],
        digits = "7777777",
    )
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("ehr.yaml");
    std::fs::write(&contract, CONTRACT).unwrap();
    (dir, contract)
}

fn offline(contract: &Path, files: &[PathBuf], json: bool) -> (i32, String) {
    let mut out = Vec::new();
    let code = run_offline(contract, files, json, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn assert_no_sentinel(text: &str) {
    for s in SENTINELS.iter().chain(&["7777777", "ZZSENTINEL"]) {
        assert!(!text.contains(s), "{s} leaked into:\n{text}");
    }
}

#[test]
fn exit_codes_and_table_resolution() {
    let (dir, contract) = setup();
    let good = dir.path().join("patients_1.csv");
    std::fs::write(
        &good,
        "patient_id,gender,birth_date,note\nP1,F,1980-01-01,ok\n",
    )
    .unwrap();
    let bad = dir.path().join("patients_2.csv");
    std::fs::write(
        &bad,
        "patient_id,gender,birth_date,note\nP1,X,1980-01-01,ok\n",
    )
    .unwrap();
    let visits = dir.path().join("visits.csv");
    std::fs::write(&visits, "visit_id\nV1\n").unwrap();
    let gz = dir.path().join("patients_3.csv.gz");
    std::fs::write(
        &gz,
        gzip(b"patient_id,gender,birth_date,note\nP1,F,1980-01-01,ok\n"),
    )
    .unwrap();

    let (code, out) = offline(
        &contract,
        &[good.clone(), visits.clone(), gz.clone()],
        false,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS  dataset ehr  table visits"), "{out}");
    let (code, out) = offline(&contract, &[good.clone(), bad.clone()], false);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("allowed_values"))
        .unwrap();
    let cells: Vec<&str> = line.split_whitespace().take(6).collect();
    assert_eq!(
        cells,
        ["allowed_values", "gender", "error", "FAILED", "1", "1"],
        "{out}"
    );

    // Keys written for the landing zone still pick the table of a local file by its name.
    let landing = dir.path().join("landing.yaml");
    std::fs::write(
        &landing,
        CONTRACT
            .replace("'**/patients*.csv'", "'landing/*/ehr/patients*.csv'")
            .replace("'**/visits*.csv'", "'landing/*/ehr/visits*.csv'"),
    )
    .unwrap();
    let (code, out) = offline(&landing, &[visits.clone(), good.clone()], false);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("table visits") && out.contains("table patients"),
        "{out}"
    );

    let unknown = dir.path().join("labs.csv");
    std::fs::write(&unknown, "x\n1\n").unwrap();
    let (code, out) = offline(&contract, &[good.clone(), unknown], false);
    assert_eq!(code, 2);
    assert!(out.contains("no table of dataset ehr"), "{out}");
    // A missing file is named as missing, not as a path no table matches.
    let (code, out) = offline(&contract, &[dir.path().join("missing.csv")], false);
    assert_eq!(code, 2);
    assert!(out.contains("error: file not found"), "{out}");

    std::fs::write(
        &contract,
        "dataset: ehr\ntables:\n  - name: t\n    colums: []\n",
    )
    .unwrap();
    let (code, out) = offline(&contract, std::slice::from_ref(&good), false);
    assert_eq!(code, 2);
    assert!(out.contains("ehr.yaml:4:"), "{out}");

    // One table: any file goes to it, whatever its name.
    std::fs::write(
        &contract,
        "dataset: d\ntables:\n  - name: only\n    columns: [{ name: visit_id }]\n",
    )
    .unwrap();
    let (code, out) = offline(&contract, &[visits], true);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json[0]["report"]["table"], "only");
    assert_eq!(json[0]["report"]["verdict"], "pass");
}

#[test]
fn json_output_is_the_engine_report() {
    let (dir, contract) = setup();
    let file = dir.path().join("patients_9.csv");
    std::fs::write(&file, planted()).unwrap();
    let (code, out) = offline(&contract, std::slice::from_ref(&file), true);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = contract_from(&contract);
    let f = std::fs::File::open(&file).unwrap();
    let opts = ValidateOptions {
        name: Some(file.to_string_lossy().into()),
        ..Default::default()
    };
    let mut direct = validate_with(&c, &c.tables[0], f, &opts).unwrap();
    let mut offline: lakegate_models::ValidationReport =
        serde_json::from_value(json[0]["report"].clone()).unwrap();
    (direct.duration_ms, offline.duration_ms) = (0, 0);
    assert_eq!(
        direct, offline,
        "the CLI and the workflow see the same report"
    );
}

fn contract_from(path: &Path) -> lakegate_validate::Contract {
    lakegate_validate::Contract::load(path).unwrap()
}

#[test]
fn planted_phi_never_reaches_a_report_a_table_or_an_error() {
    let (dir, contract) = setup();
    let data = planted();
    let file = dir.path().join("patients_5.csv");
    std::fs::write(&file, &data).unwrap();

    let r = run(CONTRACT, data.as_bytes());
    let failing = failed(&r);
    for rule in [
        "allowed_values(gender)",
        "regex(patient_id)",
        "type(birth_date)",
        "max_length(note)",
        "unique(patient_id)",
        "phi(note)",
        "column_count",
    ] {
        assert!(
            failing.iter().any(|f| f == rule),
            "{rule} should fail: {failing:?}"
        );
    }
    assert_no_sentinel(&serde_json::to_string(&r).unwrap());
    assert_no_sentinel(&render_table(&r));
    assert_no_sentinel(&format!("{r:?}"));
    assert_no_sentinel(&offline(&contract, std::slice::from_ref(&file), false).1);
    assert_no_sentinel(&offline(&contract, std::slice::from_ref(&file), true).1);

    // Sentinels in the header of a header-less mistake, and in gzip and NDJSON, too.
    let shifted = dir.path().join("patients_6.csv");
    std::fs::write(
        &shifted,
        data.lines().skip(1).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    assert_no_sentinel(&offline(&contract, &[shifted], false).1);
    let gz = dir.path().join("patients_7.csv.gz");
    let mut broken = gzip(data.as_bytes());
    broken.truncate(broken.len() / 2);
    std::fs::write(&gz, broken).unwrap();
    assert_no_sentinel(&offline(&contract, &[gz], true).1);
    let ndjson = "dataset: d\ntables:\n  - name: t\n    format: { kind: fhir, resource_type: Patient }\n    columns: [{ name: id }, { name: text }]\n    rules: [{ rule: phi }]\n";
    let lines = format!(
        "{{\"resourceType\":\"{n}\",\"id\":\"{s}\",\"text\":\"{m}\"}}\n{{\"{n}\":1}}\n{n}\n",
        n = SENTINELS[0],
        s = SENTINELS[1],
        m = SENTINELS[2]
    );
    let r = run(ndjson, lines.as_bytes());
    assert!(!failed(&r).is_empty());
    assert_no_sentinel(&serde_json::to_string(&r).unwrap());
    assert_no_sentinel(&render_table(&r));
}
