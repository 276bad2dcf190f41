//! The cross-file and history rules of the OMOP example contract (examples/omop/omop.yaml) end to
//! end: a real Temporal dev server, a worker and a local lake, files derived from the example's
//! generated sample and sent through `IngestFileWorkflow` one landing folder each (so no file is
//! another's batch). It shows what issue 16's "done when" asks for: mixed-precision timestamps
//! pass; an orphan reference is quarantined with its count and first row numbers, and the planted
//! orphan value reaches no history; the same bytes under another name are a `duplicate_file`; a
//! collapsed daily file is a `row_count_anomaly`; a file approved from quarantine serves the
//! references of later files, and once retracted it no longer does.

use lakegate_activities::{RetractStart, start_retract};
use lakegate_models::{RetractInput, RetractPhase};
use lakegate_tests::runs::{self, promoted, quarantined};
use lakegate_tests::{TestEnv, generate_example, repo_root};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::WorkflowGetResultOptions;

/// The orphan visit ids planted in the condition file start so (one distinct id per row: the
/// rule lists the row where each missing value first appears); cell values, so no history may
/// hold them.
const ORPHAN_VISIT: &str = "731904628";
/// Data rows (1-based) of the condition file that get the orphan visit.
const ORPHAN_ROWS: [u64; 3] = [5, 9, 40];

fn sample(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("examples/omop/sample").join(name)).unwrap()
}

/// The header and data lines of a sample CSV.
fn lines(name: &str) -> (String, Vec<String>) {
    let text = sample(name);
    let mut lines = text.lines().map(str::to_owned);
    let header = lines.next().unwrap();
    (header, lines.collect())
}

fn csv(header: &str, rows: &[String]) -> Vec<u8> {
    let mut out = format!("{header}\n");
    for row in rows {
        out.push_str(row);
        out.push('\n');
    }
    out.into_bytes()
}

/// `row` with its comma-separated field `index` replaced.
fn with_field(row: &str, index: usize, value: &str) -> String {
    let mut fields: Vec<&str> = row.split(',').collect();
    fields[index] = value;
    fields.join(",")
}

/// `n` visits of the sample's shape for persons `person_ids` (cycled), with visit ids from
/// `first_id`: new bytes every call that differs in its arguments.
fn visits_for(person_ids: &[u64], first_id: u64, n: usize) -> Vec<u8> {
    let (header, rows) = lines("visit_occurrence.csv");
    let rows: Vec<String> = rows
        .iter()
        .take(n)
        .enumerate()
        .map(|(i, row)| {
            let row = with_field(row, 0, &(first_id + i as u64).to_string());
            with_field(&row, 1, &person_ids[i % person_ids.len()].to_string())
        })
        .collect();
    csv(&header, &rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn omop_rules_catch_orphans_duplicates_and_collapsed_days_across_review_and_retract() {
    let env = TestEnv::start_with(&repo_root().join("examples/omop"), None)
        .await
        .unwrap();
    let (person_header, persons) = lines("person.csv");
    // The sample mixes timestamps with no fraction, one digit and six (birth_datetime) and with
    // `T`, a space and a fraction (visit_start_datetime): the promotions below are the proof
    // that one column takes them all.
    let text = sample("person.csv") + &sample("visit_occurrence.csv");
    for shape in [":00,", ":00.5,", ":00.123456,", "T", ":00.250,"] {
        assert!(
            text.contains(shape),
            "the sample has no {shape:?} timestamp"
        );
    }

    // Three days of persons make the history `row_count_anomaly` needs (min_history 3).
    promoted(
        &env,
        "landing/day1/omop/person.csv",
        &csv(&person_header, &persons),
    )
    .await;
    promoted(
        &env,
        "landing/day2/omop/person.csv",
        &csv(&person_header, &persons[..190]),
    )
    .await;
    promoted(
        &env,
        "landing/day3/omop/person.csv",
        &csv(&person_header, &persons[..195]),
    )
    .await;
    let visits = sample("visit_occurrence.csv").into_bytes();
    promoted(&env, "landing/day3/omop/visit_occurrence.csv", &visits).await;

    // Orphans: three conditions point at a visit no file holds.
    let (header, mut conditions) = lines("condition_occurrence.csv");
    for (n, row) in ORPHAN_ROWS.iter().enumerate() {
        let i = usize::try_from(*row).unwrap() - 1;
        conditions[i] = with_field(&conditions[i], 5, &format!("{ORPHAN_VISIT}{n}"));
    }
    let (_, failed) = quarantined(
        &env,
        "landing/day4/omop/condition_occurrence.csv",
        &csv(&header, &conditions),
        &["references"],
    )
    .await;
    let orphans = &failed[0];
    assert_eq!(orphans.column.as_deref(), Some("visit_occurrence_id"));
    assert_eq!(orphans.failures, ORPHAN_ROWS.len() as u64, "{orphans:?}");
    assert_eq!(orphans.first_rows, ORPHAN_ROWS, "{orphans:?}");
    assert!(!orphans.detail.contains(ORPHAN_VISIT), "{orphans:?}");
    // The same file with its orphans fixed passes: the rule is what quarantined it.
    let (_, fixed) = lines("condition_occurrence.csv");
    promoted(
        &env,
        "landing/day5/omop/condition_occurrence.csv",
        &csv(&header, &fixed),
    )
    .await;

    // The visits again, byte for byte, under another name and day.
    quarantined(
        &env,
        "landing/day6/omop/visit_occurrence_resent.csv",
        &visits,
        &["duplicate_file"],
    )
    .await;

    // A collapsed day: 20 persons where about 200 came, all of them new.
    let new_persons: Vec<u64> = (6001..=6020).collect();
    let collapsed: Vec<String> = persons[..20]
        .iter()
        .zip(&new_persons)
        .map(|(row, id)| with_field(row, 0, &id.to_string()))
        .collect();
    let (collapsed_id, _) = quarantined(
        &env,
        "landing/day7/omop/person.csv",
        &csv(&person_header, &collapsed),
        &["row_count_anomaly"],
    )
    .await;
    // Before approval, visits of the new persons are orphans.
    quarantined(
        &env,
        "landing/day8/omop/visit_occurrence.csv",
        &visits_for(&new_persons, 70_001, 30),
        &["references"],
    )
    .await;

    // A reviewer approves the collapsed day (a holiday): its persons are now onboarded.
    runs::approve(&env, &collapsed_id, "holiday: a short day").await;
    promoted(
        &env,
        "landing/day9/omop/visit_occurrence.csv",
        &visits_for(&new_persons, 71_001, 30),
    )
    .await;

    // Retracted, its persons are gone again: the next visits of them are orphans.
    let retract = RetractInput {
        ingest_workflow_id: collapsed_id.clone(),
        reviewer: "dana".into(),
        reason: "the short day was a broken export after all".into(),
    };
    let RetractStart::Started { workflow_id } =
        start_retract(&env.client, &env.config.task_queue, &retract)
            .await
            .unwrap()
    else {
        panic!("the retract of {collapsed_id} should be new");
    };
    let retracted = env
        .client
        .get_workflow_handle::<RetractWorkflow>(workflow_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(retracted.phase, RetractPhase::Retracted);
    let (_, failed) = quarantined(
        &env,
        "landing/day10/omop/visit_occurrence.csv",
        &visits_for(&new_persons, 72_001, 30),
        &["references"],
    )
    .await;
    assert_eq!(failed[0].column.as_deref(), Some("person_id"));
    assert_eq!(failed[0].failures, 30, "{:?}", failed[0]);

    // The orphan's value is in no history, stored or decrypted, and in no log.
    env.assert_no_leaks(ORPHAN_VISIT, 12).await;
}

/// The committed samples are what their generators write (from the project's virtualenv, with
/// their defaults): a generator changed without its sample, or a sample edited by hand, fails
/// here instead of drifting from what the tests above and the docs describe.
#[test]
fn example_samples_are_what_their_generators_write() {
    for example in ["omop", "fhir"] {
        let dir = repo_root().join("examples").join(example);
        let out = tempfile::tempdir().unwrap();
        generate_example(example, out.path(), &[]).unwrap();
        let names = |path: &std::path::Path| {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let written = names(out.path());
        assert_eq!(
            written,
            names(&dir.join("sample")),
            "{example}: files differ"
        );
        for name in written {
            let fresh = std::fs::read(out.path().join(&name)).unwrap();
            let committed = std::fs::read(dir.join("sample").join(&name)).unwrap();
            assert!(
                fresh == committed,
                "examples/{example}/sample/{name} is not what generate.py writes: \
                 regenerate it with `.venv/bin/python examples/{example}/generate.py`"
            );
        }
    }
}
