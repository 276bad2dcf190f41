//! The history and cross-file rules on the examples (examples/omop, examples/fhir), through
//! the same steps as `validate_and_promote`: validate, [`check_file`], promote, [`record`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use lakegate_models::{ContractMatch, ValidationReport, Verdict, keys};
use lakegate_validate::{ContractSet, ValidateOptions, validate_full};

use super::mem_store::MemStore;
use super::*;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn sample(dataset: &str, file: &str) -> String {
    std::fs::read_to_string(examples().join(dataset).join("sample").join(file)).unwrap()
}

struct Lake {
    store: Arc<dyn ObjectStore>,
    contracts: ContractSet,
    clock: u64,
}

impl Lake {
    fn new(dataset: &str) -> Self {
        Self {
            store: Arc::new(MemStore::default()),
            contracts: ContractSet::load_dir(&examples().join(dataset)).unwrap(),
            clock: 1_700_000_000_000,
        }
    }

    /// Lands `body` at `landing/<day>/<dataset>/<name>` (`folder` is `<dataset>/<day>`; one
    /// folder is one batch) without onboarding it.
    async fn land(&self, folder: &str, name: &str, body: &str) -> String {
        let (dataset, day) = folder.split_once('/').unwrap();
        let key = format!("landing/{day}/{dataset}/{name}");
        self.store
            .put(&key, Bytes::from(body.to_owned()))
            .await
            .unwrap();
        key
    }

    /// What `validate_and_promote` does with a landed file: validate, decide the history and
    /// cross-file rules, and on a pass promote it and record it in the index.
    async fn onboard(&mut self, key: &str, day: &str) -> ValidationReport {
        let body = {
            let mut s = self.store.get(key).await.unwrap();
            let mut v = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut s, &mut v)
                .await
                .unwrap();
            v
        };
        let (contract, table) = self.contracts.resolve(key).expect("a table claims the key");
        let opts = ValidateOptions {
            name: Some(key.into()),
            index_columns: table.referenced_columns(contract),
            check_references: true,
            ..ValidateOptions::default()
        };
        let mut validated = validate_full(contract, table, &body[..], &opts).unwrap();
        let to = keys::raw_destination(
            &ContractMatch {
                dataset: contract.dataset.clone(),
                table: table.name.clone(),
            },
            day,
            key,
        );
        check_file(&self.store, &self.contracts, key, &[&to], &mut validated)
            .await
            .unwrap();
        if validated.report.verdict == Verdict::Pass {
            self.store.move_object(key, &to).await.unwrap();
            self.clock += 1;
            let (dataset, table) = (
                validated.report.dataset.clone(),
                validated.report.table.clone(),
            );
            record(
                self.store.as_ref(),
                &dataset,
                &table,
                &entry_of(&validated, &to),
                &validated.keys,
                self.clock,
            )
            .await
            .unwrap();
        }
        validated.report
    }

    async fn land_and_onboard(&mut self, day: &str, name: &str, body: &str) -> ValidationReport {
        let key = self.land(day, name, body).await;
        self.onboard(&key, day).await
    }
}

fn failed(r: &ValidationReport) -> Vec<String> {
    let failed = r.rules.iter().filter(|o| !o.passed);
    failed.map(lakegate_models::RuleOutcome::id).collect()
}

fn outcome<'r>(
    r: &'r ValidationReport,
    rule: &str,
    column: Option<&str>,
) -> &'r lakegate_models::RuleOutcome {
    r.rules
        .iter()
        .find(|o| o.rule == rule && o.column.as_deref() == column)
        .unwrap_or_else(|| panic!("no {rule} {column:?} in {:?}", r.rules))
}

/// Drops every `n`-th data row (after the first `skip`): a different file of about the same size.
fn thinned(csv: &str, n: usize, skip: usize) -> String {
    let mut lines = csv.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        if i < skip || !(i - skip).is_multiple_of(n) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn omop_sample_onboards_in_order_and_mixed_precision_passes() {
    let mut lake = Lake::new("omop");
    for (name, file) in [
        ("person.csv", "person.csv"),
        ("visit_occurrence.csv", "visit_occurrence.csv"),
        ("condition_occurrence.csv", "condition_occurrence.csv"),
    ] {
        let r = lake
            .land_and_onboard("omop/d1", name, &sample("omop", file))
            .await;
        assert_eq!(r.verdict, Verdict::Pass, "{name}: {:?}", failed(&r));
        assert!(failed(&r).is_empty(), "{name}: {:?}", failed(&r));
    }
    let visits = sample("omop", "visit_occurrence.csv");
    assert!(visits.contains(":00.250,") && visits.contains("T") && visits.contains(" 0"));
}

#[tokio::test]
async fn orphan_references_fail_with_count_and_first_rows() {
    let mut lake = Lake::new("omop");
    lake.land_and_onboard("omop/d1", "person.csv", &sample("omop", "person.csv"))
        .await;
    lake.land_and_onboard(
        "omop/d1",
        "visit_occurrence.csv",
        &sample("omop", "visit_occurrence.csv"),
    )
    .await;
    let mut conditions = sample("omop", "condition_occurrence.csv");
    // Rows 801..=805 point at visits nobody onboarded; 806 at a person nobody onboarded.
    for i in 0..5 {
        conditions.push_str(&format!(
            "99000{i},1001,1,2025-01-01,,7777{i},I10,ICD10CM\n"
        ));
    }
    conditions.push_str("990009,424242,1,2025-01-01,,50001,I10,ICD10CM\n");
    let r = lake
        .land_and_onboard("omop/d2", "condition_occurrence.csv", &conditions)
        .await;
    assert_eq!(r.verdict, Verdict::Fail);
    let o = outcome(&r, "references", Some("visit_occurrence_id"));
    assert!(!o.passed);
    assert_eq!(o.failures, 5);
    assert_eq!(o.first_rows, [801, 802, 803, 804, 805]);
    let o = outcome(&r, "references", Some("person_id"));
    assert_eq!((o.failures, o.first_rows.as_slice()), (1, &[806][..]));
    assert!(
        !o.detail.contains("424242"),
        "no value in the report: {}",
        o.detail
    );
}

#[tokio::test]
async fn references_are_satisfied_by_a_file_of_the_same_batch() {
    let mut lake = Lake::new("omop");
    // The visit file is onboarded while its persons still wait in the same folder.
    lake.land("omop/d1", "person.csv", &sample("omop", "person.csv"))
        .await;
    let r = lake
        .land_and_onboard(
            "omop/d1",
            "visit_occurrence.csv",
            &sample("omop", "visit_occurrence.csv"),
        )
        .await;
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", failed(&r));
    // Without the batch, the same visits are orphans.
    let mut alone = Lake::new("omop");
    let r = alone
        .land_and_onboard(
            "omop/d1",
            "visit_occurrence.csv",
            &sample("omop", "visit_occurrence.csv"),
        )
        .await;
    assert_eq!(outcome(&r, "references", Some("person_id")).failures, 600);
}

#[tokio::test]
async fn a_duplicate_resent_under_another_name_and_day_is_caught() {
    let mut lake = Lake::new("omop");
    let persons = sample("omop", "person.csv");
    let r = lake
        .land_and_onboard("omop/d1", "person.csv", &persons)
        .await;
    assert_eq!(r.verdict, Verdict::Pass);
    let r = lake
        .land_and_onboard("omop/d9", "person_2025-06-09_resend.csv", &persons)
        .await;
    assert_eq!(failed(&r), ["duplicate_file"]);
    // Retracting the first file takes it out of the index: the same bytes are new again.
    let first = keys::raw_destination(
        &ContractMatch {
            dataset: "omop".into(),
            table: "person".into(),
        },
        "omop/d1",
        "landing/d1/omop/person.csv",
    );
    remove_file(lake.store.as_ref(), "omop", "person", &first)
        .await
        .unwrap();
    remove_file(lake.store.as_ref(), "omop", "person", &first)
        .await
        .unwrap();
    let key = lake.land("omop/d10", "person_again.csv", &persons).await;
    let r = lake.onboard(&key, "omop/d10").await;
    assert!(failed(&r).is_empty(), "{:?}", failed(&r));
}

#[tokio::test]
async fn a_retracted_copy_leaves_its_approved_twin_a_duplicate() {
    let mut lake = Lake::new("omop");
    let persons = sample("omop", "person.csv");
    let first = lake
        .land_and_onboard("omop/d1", "person.csv", &persons)
        .await;
    assert_eq!(first.verdict, Verdict::Pass);
    // The same bytes approved from quarantine under another name: recorded like a promotion.
    let twin = "raw/omop/person/ingest_date=2025-06-02/person_twin.csv";
    let entry = FileEntry {
        key: twin.into(),
        sha256: first.sha256.clone(),
        rows: first.rows,
        header: None,
        ..FileEntry::default()
    };
    record(lake.store.as_ref(), "omop", "person", &entry, &[], 1)
        .await
        .unwrap();
    // The twin, which the checksum entry now names, is retracted: the first file still holds
    // the bytes, so sending them again is still a duplicate.
    remove_file(lake.store.as_ref(), "omop", "person", twin)
        .await
        .unwrap();
    let r = lake
        .land_and_onboard("omop/d3", "person_third.csv", &persons)
        .await;
    assert_eq!(failed(&r), ["duplicate_file"]);
}

#[tokio::test]
async fn a_collapsed_row_count_is_caught_against_the_last_files() {
    let mut lake = Lake::new("omop");
    let persons = sample("omop", "person.csv");
    for day in 0..4 {
        let body = thinned(&persons, 40, day);
        let r = lake
            .land_and_onboard(&format!("omop/d{day}"), "person.csv", &body)
            .await;
        assert!(failed(&r).is_empty(), "day {day}: {:?}", failed(&r));
    }
    // A tenth of the usual rows.
    let collapsed: String = persons.lines().take(21).map(|l| format!("{l}\n")).collect();
    let r = lake
        .land_and_onboard("omop/d5", "person.csv", &collapsed)
        .await;
    assert_eq!(failed(&r), ["row_count_anomaly"]);
    let o = outcome(&r, "row_count_anomaly", None);
    assert!(o.detail.contains("20 data rows"), "{}", o.detail);
}

#[tokio::test]
async fn recording_a_promotion_twice_writes_one_entry() {
    let lake = Lake::new("omop");
    let entry = FileEntry {
        key: "raw/omop/person/ingest_date=d/p.csv".into(),
        sha256: "ab".repeat(32),
        rows: 10,
        header: None,
        key_columns: vec!["person_id".into()],
        ..FileEntry::default()
    };
    let keys = [lakegate_validate::CollectedKeys {
        column: "person_id".into(),
        hashes: vec![1, 2, 3],
        truncated: false,
    }];
    for now in [1, 2] {
        record(lake.store.as_ref(), "omop", "person", &entry, &keys, now)
            .await
            .unwrap();
    }
    let objects = lake.store.list("index/omop/").await.unwrap();
    assert_eq!(
        objects.len(),
        4,
        "{:?}",
        objects.iter().map(|o| &o.key).collect::<Vec<_>>()
    );
    let h = history(lake.store.as_ref(), "omop", "person", "", &[], 10)
        .await
        .unwrap();
    assert_eq!(h.recent_rows, [10]);
}

#[tokio::test]
async fn fhir_mixed_precision_passes_and_orphan_subjects_fail() {
    let mut lake = Lake::new("fhir");
    let r = lake
        .land_and_onboard(
            "fhir/d1",
            "Patient.ndjson",
            &sample("fhir", "Patient.ndjson"),
        )
        .await;
    assert!(failed(&r).is_empty(), "{:?}", failed(&r));
    let observations = sample("fhir", "Observation.ndjson");
    for precision in ["\"2025\"", "\"2025-", ".5+01:00\"", ":00Z\"", ".123456Z\""] {
        assert!(observations.contains(precision), "sample lacks {precision}");
    }
    let r = lake
        .land_and_onboard("fhir/d1", "Observation.ndjson", &observations)
        .await;
    assert!(failed(&r).is_empty(), "{:?}", failed(&r));
    let orphan = observations.replacen("Patient/pat-00", "Patient/gone-00", 3);
    let r = lake
        .land_and_onboard("fhir/d2", "Observation_2.ndjson", &orphan)
        .await;
    let o = outcome(&r, "references", Some("subject.reference"));
    assert_eq!(o.failures, 3, "{o:?}");
    assert_eq!(r.verdict, Verdict::Fail);
}
