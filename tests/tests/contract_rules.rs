//! The cross-file and history rules of the OMOP example contract (examples/omop/omop.yaml) end to
//! end: a real Temporal dev server, a worker and a local lake, files derived from the example's
//! generated sample and sent through `IngestFileWorkflow` one landing folder each (so no file is
//! another's batch). It shows what issue 16's "done when" asks for: mixed-precision timestamps
//! pass; an orphan reference is quarantined with its count and first row numbers, and the planted
//! orphan value reaches no history; the same bytes under another name are a `duplicate_file`; a
//! collapsed daily file is a `row_count_anomaly`; a file approved from quarantine serves the
//! references of later files, and once retracted it no longer does.

use std::time::Duration;

use lakegate::client;
use lakegate_activities::{RetractStart, start_retract};
use lakegate_models::{
    Decision, IngestPhase, IngestStatus, RetractInput, RetractPhase, ReviewOutcome, ReviewSignal,
    RuleOutcome,
};
use lakegate_tests::{TestEnv, repo_root, runs, venv};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::WorkflowGetResultOptions;

const WAIT: Duration = Duration::from_secs(120);
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

/// Lands `body` at `key`, runs its ingest until it settles; its id and status.
async fn ingest(env: &TestEnv, key: &str, body: &[u8]) -> (String, IngestStatus) {
    let input = env.land(key, body).await.unwrap();
    let id = runs::start(env, input).await;
    let status = client::wait_for_status(&env.client, &id, WAIT, runs::settled)
        .await
        .unwrap();
    (id, status)
}

async fn promoted(env: &TestEnv, key: &str, body: &[u8]) -> String {
    let (id, status) = ingest(env, key, body).await;
    assert_eq!(
        status.phase,
        IngestPhase::Promoted,
        "{key}: {:#?}",
        failed(&status)
    );
    id
}

/// The failed rules of a settled ingest.
fn failed(status: &IngestStatus) -> Vec<RuleOutcome> {
    status
        .report
        .as_ref()
        .map(|r| r.rules.iter().filter(|o| !o.passed).cloned().collect())
        .unwrap_or_default()
}

/// Quarantined, failing exactly the rules `rules` (by id).
async fn quarantined(
    env: &TestEnv,
    key: &str,
    body: &[u8],
    rules: &[&str],
) -> (String, Vec<RuleOutcome>) {
    let (id, status) = ingest(env, key, body).await;
    assert_eq!(
        status.phase,
        IngestPhase::AwaitingReview,
        "{key}: {:#?}",
        status.report.map(|r| r.rules)
    );
    let failed = failed(&status);
    let ids: Vec<&str> = failed.iter().map(|o| o.rule.as_str()).collect();
    assert_eq!(ids, rules, "{key}: {failed:#?}");
    (id, failed)
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
    let review = ReviewSignal {
        decision: Decision::Approve,
        reviewer: "dana".into(),
        reason: "holiday: a short day".into(),
    };
    let answer = client::review(&env.client, &collapsed_id, &review)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(answer, ReviewOutcome::Promoted { .. }),
        "{answer:?}"
    );
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
    let scan = env
        .scan_for_leaks(&[ORPHAN_VISIT.to_owned()])
        .await
        .unwrap();
    assert!(
        scan.histories >= 12,
        "the scan read {} histories",
        scan.histories
    );
    assert!(scan.encrypted > 0, "the scan decrypted no payload");
    scan.ensure_clean().unwrap();
}

/// The committed samples are what their generators write (from the project's virtualenv, with
/// their defaults): a generator changed without its sample, or a sample edited by hand, fails
/// here instead of drifting from what the tests above and the docs describe.
#[test]
fn example_samples_are_what_their_generators_write() {
    for example in ["omop", "fhir"] {
        let dir = repo_root().join("examples").join(example);
        let out = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(venv().join("bin/python"))
            .arg(dir.join("generate.py"))
            .arg("--out")
            .arg(out.path())
            .status()
            .unwrap();
        assert!(status.success(), "{example}/generate.py failed");
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
