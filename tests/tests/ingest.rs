//! IngestFileWorkflow against a real Temporal dev server and a real local lake.
//!
//! Record the histories replayed by `replay.rs` with:
//! `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test ingest`

use std::time::Duration;

use lakegate::client::{self, StartedIngest};
use lakegate_models::{Decision, IngestPhase, Verdict, Zone};
use lakegate_tests::TestEnv;
use lakegate_tests::cli::temporal_ok;
use lakegate_tests::events::{count_events, encoded_message, run_failure};
use lakegate_tests::runs::{
    PHASE_WAIT as WAIT, awaiting_review as quarantined, ingest, review, start,
};
use lakegate_workflows::NO_CONTRACT_REASON;

const GOOD_PATIENTS: &[u8] = b"id,birthdate,gender\np1,1980-01-02,F\np2,1975-03-04,M\n";
/// Row 2 lacks its id; the gender cell holds a sentinel that must never leave the file.
const BAD_PATIENTS: &[u8] =
    b"id,birthdate,gender\np3,1990-05-06,F\n,1991-07-08,SENTINEL_PHI_7731\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_file_is_promoted_to_its_raw_partition() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients_2024.csv", GOOD_PATIENTS).await;
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();

    assert_eq!(outcome.phase, IngestPhase::Promoted);
    assert_eq!(outcome.zone, Zone::Raw);
    let report = outcome.report.as_ref().unwrap();
    assert_eq!((report.verdict, report.rows), (Verdict::Pass, 2));
    let keys = env.all_keys().await.unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        keys[0].starts_with("raw/ehr/patients/ingest_date=")
            && keys[0].ends_with("/patients_2024.csv"),
        "{keys:?}"
    );
    assert_eq!(outcome.key, keys[0]);
    env.record_history("promoted", &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_file_waits_in_quarantine_until_approved() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients_bad.csv", BAD_PATIENTS).await;

    let status = quarantined(&env, &id).await;
    assert_eq!(status.zone, Zone::Quarantine);
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["quarantine/emr/ehr/patients_bad.csv"]
    );
    assert_eq!(status.quarantine_reason.as_deref(), Some("required(id)"));
    let contract = status.contract.as_ref().unwrap();
    assert_eq!(
        (contract.dataset.as_str(), contract.table.as_str()),
        ("ehr", "patients")
    );
    let failed: Vec<_> = status
        .report
        .as_ref()
        .unwrap()
        .failed_rules()
        .cloned()
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].failures, failed[0].first_rows.as_slice()),
        (1, &[2][..])
    );

    let review = review(Decision::Approve, "alice", "id backfilled upstream");
    client::send_review(&env.client, &id, review.clone())
        .await
        .unwrap();
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);
    assert_eq!(outcome.review, Some(review));
    let keys = env.all_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("raw/ehr/patients/"), "{keys:?}");

    // The decision is part of the audit trail; the cell values are not.
    let history = env.history_text(&id).await.unwrap();
    assert!(history.contains("id backfilled upstream"));
    assert!(
        !history.contains("SENTINEL_PHI_7731"),
        "a cell value leaked into the history"
    );
    env.record_history("quarantined_approved", &id)
        .await
        .unwrap();
    // The richest path (activities, search attributes, a signal) also in the CLI's format.
    env.record_proto3_history("quarantined_approved", &id)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_file_ends_in_rejected_zone() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients_bad.csv", BAD_PATIENTS).await;
    quarantined(&env, &id).await;
    let reject = review(Decision::Reject, "bob", "wrong site");
    client::send_review(&env.client, &id, reject).await.unwrap();

    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert!(!outcome.review_timed_out);
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["rejected/emr/ehr/patients_bad.csv"]
    );
    env.record_history("quarantined_rejected", &id)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreviewed_file_is_rejected_when_the_review_times_out() {
    let env = TestEnv::start().await.unwrap();
    let mut input = env
        .land("landing/emr/ehr/patients_bad.csv", BAD_PATIENTS)
        .await
        .unwrap();
    input.review_timeout_secs = 2;
    let id = start(&env, input).await;

    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert!(outcome.review_timed_out);
    assert_eq!(outcome.review, None);
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["rejected/emr/ehr/patients_bad.csv"]
    );
    env.record_history("review_timed_out", &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_version_is_onboarded_once() {
    let env = TestEnv::start().await.unwrap();
    let input = env
        .land("landing/emr/ehr/patients.csv", GOOD_PATIENTS)
        .await
        .unwrap();
    let first = client::start_ingest(&env.client, &env.config.task_queue, input.clone())
        .await
        .unwrap();
    // A repeated event while the first run may still be open...
    let second = client::start_ingest(&env.client, &env.config.task_queue, input.clone())
        .await
        .unwrap();
    assert!(matches!(first, StartedIngest::Started(_)));
    assert_eq!(
        second,
        StartedIngest::Duplicate(first.workflow_id().to_owned())
    );
    let outcome = client::wait_outcome(&env.client, first.workflow_id())
        .await
        .unwrap();
    // ...and one after it completed: still the same run, answered with its outcome.
    let third = client::start_ingest(&env.client, &env.config.task_queue, input)
        .await
        .unwrap();
    assert_eq!(
        third,
        StartedIngest::Duplicate(first.workflow_id().to_owned())
    );
    assert_eq!(
        client::wait_outcome(&env.client, third.workflow_id())
            .await
            .unwrap(),
        outcome
    );
    assert_eq!(env.all_keys().await.unwrap(), vec![outcome.key.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_no_contract_claims_is_quarantined_not_failed() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/unknown/claims.csv", b"a,b\n1,2\n").await;

    let status = quarantined(&env, &id).await;
    assert_eq!(
        status.quarantine_reason.as_deref(),
        Some(NO_CONTRACT_REASON)
    );
    assert_eq!(status.contract, None);
    assert_eq!(status.report, None);
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["quarantine/emr/unknown/claims.csv"]
    );

    // Approving cannot promote a file no contract describes: it keeps waiting, and says why.
    let approve = review(Decision::Approve, "carol", "");
    client::send_review(&env.client, &id, approve)
        .await
        .unwrap();
    let status = client::wait_for_status(&env.client, &id, WAIT, |s| {
        s.quarantine_reason
            .as_deref()
            .is_some_and(|r| r.contains("approval needs a contract"))
    })
    .await
    .unwrap();
    assert_eq!(status.phase, IngestPhase::AwaitingReview);
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["quarantine/emr/unknown/claims.csv"]
    );

    let reject = review(Decision::Reject, "carol", "unknown feed");
    client::send_review(&env.client, &id, reject).await.unwrap();
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert_eq!(
        env.all_keys().await.unwrap(),
        ["rejected/emr/unknown/claims.csv"]
    );
    env.record_history("no_contract_rejected", &id)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_different_files_with_one_name_are_both_kept() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients.csv", GOOD_PATIENTS).await;
    let one = client::wait_outcome(&env.client, &id).await.unwrap();
    let second = b"id,birthdate,gender\np9,2001-01-01,F\n";
    let id = ingest(&env, "landing/emr/ehr/patients.csv", second).await;
    let two = client::wait_outcome(&env.client, &id).await.unwrap();

    assert_ne!(one.key, two.key);
    let keys = env.all_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("raw/ehr/patients/")),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_validation_and_the_workflow_give_the_same_report() {
    let root = lakegate_tests::repo_root();
    let contracts = root.join("examples/ehr/contracts");
    let env = TestEnv::start_with(&contracts, None).await.unwrap();
    for file in ["bad/ehr/patients_missing_id.csv", "ehr/patients.csv"] {
        let path = root.join("examples/ehr/sample").join(file);
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let key = format!("landing/synthea/ehr/{name}");
        let id = ingest(&env, &key, &std::fs::read(&path).unwrap()).await;
        let status = client::wait_for_status(&env.client, &id, WAIT, |s| {
            matches!(s.phase, IngestPhase::Promoted | IngestPhase::AwaitingReview)
        })
        .await
        .unwrap();
        let mut in_workflow = status.report.unwrap();

        let mut out = Vec::new();
        let code = lakegate_validate::run_offline(
            &contracts.join("ehr.yaml"),
            std::slice::from_ref(&path),
            true,
            &mut out,
        );
        let offline: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let mut offline: lakegate_models::ValidationReport =
            serde_json::from_value(offline[0]["report"].clone()).unwrap();
        assert_eq!(
            code,
            if in_workflow.verdict == Verdict::Pass {
                0
            } else {
                1
            }
        );
        in_workflow.duration_ms = 0;
        offline.duration_ms = 0;
        // Store metadata, not a finding: only the workflow's read has an ETag.
        assert!(in_workflow.etag.take().is_some(), "{file}");
        assert_eq!(in_workflow, offline, "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_can_be_found_by_dataset_phase_and_quarantine_reason() {
    use futures::StreamExt;
    let env = TestEnv::start().await.unwrap();
    let good = ingest(&env, "landing/emr/ehr/patients_ok.csv", GOOD_PATIENTS).await;
    let bad = ingest(&env, "landing/emr/ehr/patients_bad.csv", BAD_PATIENTS).await;
    client::wait_outcome(&env.client, &good).await.unwrap();
    quarantined(&env, &bad).await;

    // What a steward types into the Temporal UI's search box.
    let query = format!(
        "TaskQueue = '{}' AND LakegateDataset = 'ehr' AND LakegatePhase = 'awaiting_review' \
         AND LakegateQuarantineReason = 'required(id)'",
        env.config.task_queue
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // Visibility is eventually consistent: wait for it rather than sleep.
        let mut found = Vec::new();
        let mut stream = env.client.list_workflows(query.clone(), Default::default());
        while let Some(run) = stream.next().await {
            found.push(run.unwrap().id().to_owned());
        }
        if found == [bad.clone()] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "search found {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Approvals of a file no contract claims keep it waiting, but never move its deadline: the
/// wait has one timer, and the run is rejected when it fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_of_an_unclaimed_file_do_not_extend_the_review_deadline() {
    let env = TestEnv::start().await.unwrap();
    let mut input = env
        .land("landing/emr/unknown/claims.csv", b"a,b\n1,2\n")
        .await
        .unwrap();
    input.review_timeout_secs = 6;
    let id = start(&env, input).await;
    quarantined(&env, &id).await;
    for reviewer in ["carol", "dave"] {
        let approve = review(Decision::Approve, reviewer, "");
        client::send_review(&env.client, &id, approve)
            .await
            .unwrap();
        client::wait_for_status(&env.client, &id, WAIT, |s| {
            s.review.as_ref().is_some_and(|r| r.reviewer == reviewer)
                || s.phase != IngestPhase::AwaitingReview
        })
        .await
        .unwrap();
    }
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert!(outcome.review_timed_out);
    assert_eq!(outcome.zone, Zone::Rejected);
    let events = env.events(&id).await;
    assert_eq!(count_events(&events, "TimerStartedEventAttributes"), 1);
    env.record_history("no_contract_approvals_timed_out", &id)
        .await
        .unwrap();
}

/// Any client of the namespace can start the workflow (here the `temporal` CLI, without the
/// codec): naming a promoted file's raw/ key fails the run at once and moves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_outside_landing_fails_at_once_and_moves_nothing() {
    let env = TestEnv::start().await.unwrap();
    let input = env
        .land("landing/emr/ehr/patients_2024.csv", GOOD_PATIENTS)
        .await
        .unwrap();
    let promoted = client::wait_outcome(&env.client, &start(&env, input.clone()).await)
        .await
        .unwrap();
    assert_eq!(promoted.zone, Zone::Raw);

    let id = "ingest-zone-crossing-from-the-cli";
    let crossing = serde_json::json!({
        "bucket": input.bucket,
        "key": promoted.key,
        "version": input.version,
    });
    let crossing = crossing.to_string();
    temporal_ok(
        &env,
        &[
            "workflow",
            "start",
            "--type",
            "IngestFileWorkflow",
            "--task-queue",
            &env.config.task_queue,
            "--workflow-id",
            id,
            "--input",
            &crossing,
        ],
    )
    .await;
    assert!(client::wait_outcome(&env.client, id).await.is_err());

    let events = env.events(id).await;
    let failure = run_failure(&events);
    // The codec moves the message into the failure's encoded attributes.
    let message = encoded_message(failure).unwrap_or_else(|| panic!("{failure}"));
    assert!(
        message.starts_with(lakegate_workflows::LANDING_ONLY_RULE),
        "{message}"
    );
    assert!(message.ends_with("raw/"), "{message}");
    assert!(!message.contains("patients"), "the key reached the failure");
    assert!(
        failure.to_string().contains("\"nonRetryable\":true"),
        "{failure}"
    );
    assert_eq!(
        count_events(&events, "ActivityTaskScheduledEventAttributes"),
        0
    );
    assert_eq!(
        count_events(&events, "WorkflowTaskFailedEventAttributes"),
        0
    );
    assert_eq!(env.all_keys().await.unwrap(), vec![promoted.key.clone()]);
    env.record_history("outside_landing_refused", id)
        .await
        .unwrap();
}

/// Mistyped `review` signals (the Web UI's form, `temporal workflow signal`) are counted, not
/// fatal: the run keeps answering its query, and a correct review afterwards still promotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_review_signal_is_reported_and_the_file_can_still_be_reviewed() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients_bad.csv", BAD_PATIENTS).await;
    quarantined(&env, &id).await;
    let mistakes = [
        r#"{"decision":"approved","reviewer":"alice","reason":"FREE_TEXT_4410"}"#,
        r#"{"decision":"Approve","reviewer":"alice"}"#,
        r#"{"decision":"approve","reason":"no reviewer"}"#,
    ];
    for input in mistakes {
        temporal_ok(
            &env,
            &[
                "workflow",
                "signal",
                "--workflow-id",
                &id,
                "--name",
                "review",
                "--input",
                input,
            ],
        )
        .await;
    }
    let status = client::wait_for_status(&env.client, &id, WAIT, |s| {
        s.rejected_reviews.len() == mistakes.len()
    })
    .await
    .unwrap();
    assert_eq!(status.phase, IngestPhase::AwaitingReview);
    assert_eq!(status.review, None);
    let reasons: Vec<_> = status.rejected_reviews.iter().map(|r| &r.reason).collect();
    for (reason, field) in reasons.iter().zip(["decision:", "decision:", "reviewer:"]) {
        assert!(reason.starts_with(field), "{reasons:?}");
        assert!(
            !reason.contains("approved")
                && !reason.contains("Approve")
                && !reason.contains("FREE_TEXT"),
            "{reason} quotes the payload"
        );
    }

    let review = review(Decision::Approve, "alice", "checked");
    client::send_review(&env.client, &id, review.clone())
        .await
        .unwrap();
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.review),
        (IngestPhase::Promoted, Some(review))
    );
    assert_eq!(outcome.rejected_reviews.len(), mistakes.len());
    let events = env.events(&id).await;
    assert_eq!(
        count_events(&events, "WorkflowTaskFailedEventAttributes"),
        0
    );
    env.record_history("mistyped_review_then_approved", &id)
        .await
        .unwrap();
}
