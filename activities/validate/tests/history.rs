//! ZIP and address detection through the engine (which columns are scanned), and the history
//! and cross-file rules as the ingest activity decides them: `history::apply` and reference
//! probes over `validate_full`.

mod common;

use common::*;
use lakegate_models::Verdict;
use lakegate_validate::history::{TableHistory, apply};
use lakegate_validate::{ValidateOptions, key_hash, validate_full};

const NOTES: &str = "dataset: t\ntables:\n  - name: t\n    keys: ['**/*.csv']\n    columns:\n      - { name: id, type: integer, identifier: true }\n      - { name: result, type: decimal }\n      - { name: code }\n      - { name: note }\n    rules:\n      - { rule: phi }\n";

#[test]
fn zip_and_address_fire_in_free_text_only() {
    let clean = "id,result,code\n1,12345,54321\n2,02139.5,10001\n";
    let r = run(
        &NOTES.replace("      - { name: note }\n", ""),
        clean.as_bytes(),
    );
    assert!(
        failed(&r).is_empty(),
        "a five-digit lab value or code is no ZIP: {:?}",
        failed(&r)
    );
    let data = "id,result,code,note\n1,12345,A1,seen today\n2,1.5,B2,lives at 12 Elm Street\n3,2,C3,\"moved to Boston, MA 02139\"\n";
    let r = run(NOTES, data.as_bytes());
    let o = outcome(&r, "phi", Some("note"));
    assert_eq!(o.first_rows, [2, 3]);
    assert!(
        o.detail.contains("zip 1") && o.detail.contains("address 1"),
        "{}",
        o.detail
    );
    assert!(
        !o.detail.contains("Elm") && !o.detail.contains("02139"),
        "{}",
        o.detail
    );
    assert!(outcome(&r, "phi", Some("code")).passed);
}

fn omop_like() -> String {
    "dataset: t\ntables:\n  - name: person\n    keys: ['**/person*.csv']\n    columns:\n      - { name: person_id, type: integer }\n      - { name: year, type: integer }\n    rules:\n      - { rule: duplicate_file }\n      - { rule: row_count_anomaly, min_history: 3 }\n      - { rule: schema_drift }\n      - { rule: header_matches, mode: subset }\n  - name: visit\n    keys: ['**/visit*.csv']\n    columns:\n      - { name: visit_id, type: integer }\n      - name: person_id\n        type: integer\n        references: { table: person, column: person_id }\n".into()
}

#[test]
fn history_rules_are_not_planned_offline() {
    let c = contract(&omop_like());
    let r =
        lakegate_validate::validate(&c, &c.tables[0], &b"person_id,year\n1,1980\n"[..]).unwrap();
    assert!(
        r.rules
            .iter()
            .all(|o| o.rule != "row_count_anomaly" && o.rule != "schema_drift")
    );
    let r =
        lakegate_validate::validate(&c, &c.tables[1], &b"visit_id,person_id\n1,99\n"[..]).unwrap();
    assert!(
        r.rules.iter().all(|o| o.rule != "references"),
        "no index offline"
    );
}

#[test]
fn history_apply_decides_duplicate_anomaly_and_drift() {
    let c = contract(&omop_like());
    let t = &c.tables[0];
    let opts = ValidateOptions::default();
    let v = validate_full(
        &c,
        t,
        &b"person_id,year,extra\n1,1980,x\n2,1990,y\n"[..],
        &opts,
    )
    .unwrap();
    assert_eq!(
        v.header.as_deref(),
        Some(&["person_id".to_owned(), "year".into(), "extra".into()][..])
    );
    let mut report = v.report.clone();
    apply(
        t,
        &mut report,
        v.header.as_deref(),
        &TableHistory::default(),
    );
    assert_eq!(report.verdict, Verdict::Pass, "{:?}", failed(&report));
    assert!(
        outcome(&report, "row_count_anomaly", None)
            .detail
            .contains("not checked")
    );

    let history = TableHistory {
        recent_rows: vec![1000, 990, 1010, 1005],
        last_header: Some(vec!["person_id".into(), "year".into(), "gone".into()]),
        duplicate: true,
    };
    let mut report = v.report.clone();
    apply(t, &mut report, v.header.as_deref(), &history);
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(
        failed(&report),
        ["duplicate_file", "row_count_anomaly", "schema_drift"]
    );
    let drift = &outcome(&report, "schema_drift", None).detail;
    // Undeclared names are counted, never shown: they may be a data row.
    assert!(
        drift.contains("1 column(s) gained [1 undeclared], 1 lost [1 undeclared]"),
        "{drift}"
    );
    assert!(
        outcome(&report, "row_count_anomaly", None)
            .detail
            .contains("2 data rows")
    );
}

#[test]
fn reference_probes_count_orphans_and_their_first_rows() {
    let c = contract(&omop_like());
    let opts = ValidateOptions {
        check_references: true,
        ..ValidateOptions::default()
    };
    let data = "visit_id,person_id\n1,10\n2,11\n3,99\n4,10\n5,98\n6,99\n7,\n";
    let mut v = validate_full(&c, &c.tables[1], data.as_bytes(), &opts).unwrap();
    assert_eq!(v.references.len(), 1);
    let mut probe = v.references.pop().unwrap();
    assert_eq!(probe.pending(), 4);
    let mut run = vec![key_hash(b"10"), key_hash(b"11"), key_hash(b"12")];
    run.sort_unstable();
    probe.mark_found(&run);
    let o = probe.outcome(20);
    assert!(!o.passed);
    assert_eq!(o.failures, 3, "rows 3, 5 and 6 have orphan values");
    assert_eq!(o.first_rows, [3, 5]);
    assert!(!o.detail.contains("99"), "{}", o.detail);

    // The person table's key column is collected for the index when asked.
    let opts = ValidateOptions {
        index_columns: c.tables[0].referenced_columns(&c),
        ..ValidateOptions::default()
    };
    let v = validate_full(
        &c,
        &c.tables[0],
        &b"person_id,year\n10,1\n11,2\n10,3\n"[..],
        &opts,
    )
    .unwrap();
    assert_eq!(v.keys.len(), 1);
    assert_eq!(v.keys[0].hashes.len(), 2, "distinct and sorted");
    assert!(v.keys[0].hashes.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn contract_rejects_references_to_unknown_tables_and_columns() {
    for (target, want) in [
        ("{ table: nope, column: person_id }", "does not declare"),
        ("{ table: person, column: nope }", "not a declared column"),
    ] {
        let y = omop_like().replace("{ table: person, column: person_id }", target);
        let e = lakegate_validate::Contract::parse(&y, std::path::Path::new("c.yaml")).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}
