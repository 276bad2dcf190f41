//! The `review` Update of IngestFileWorkflow against a real Temporal dev server: its validator
//! refuses mistakes (from the Rust client and from the `temporal` CLI) with a message naming the
//! field or the rule and leaves the file reviewable; an accepted review answers with what came of
//! it once the file has moved.
//!
//! Record the histories replayed by `replay.rs` with:
//! `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test review_update`

use std::path::Path;
use std::time::Instant;

use lakegate::client;
use lakegate_models::{Decision, IngestPhase, IngestStatus, ReviewOutcome, Zone};
use lakegate_tests::TestEnv;
use lakegate_tests::cli::temporal;
use lakegate_tests::events::count_events;
use lakegate_tests::runs::{PHASE_WAIT as WAIT, awaiting_review, ingest, review};

/// Row 2 lacks its id; the gender cell holds a sentinel that must never leave the file.
const BAD_PATIENTS: &[u8] =
    b"id,birthdate,gender\np3,1990-05-06,F\n,1991-07-08,SENTINEL_PHI_7731\n";

async fn quarantined(env: &TestEnv, key: &str) -> String {
    let id = ingest(env, key, BAD_PATIENTS).await;
    awaiting_review(env, &id).await;
    id
}

async fn status(env: &TestEnv, id: &str) -> IngestStatus {
    client::query_status(&env.client, id).await.unwrap()
}

/// How many `kind` events the run's history holds, and how many failed workflow tasks (a review
/// must never fail one).
async fn events_and_failed_tasks(env: &TestEnv, id: &str, kind: &str) -> (usize, usize) {
    let events = env.events(id).await;
    (
        count_events(&events, kind),
        count_events(&events, "WorkflowTaskFailedEventAttributes"),
    )
}

/// A rejection through the Update, which must answer that the file was rejected.
async fn rejects(env: &TestEnv, id: &str, reviewer: &str, reason: &str) {
    let outcome = client::review(&env.client, id, &review(Decision::Reject, reviewer, reason))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, ReviewOutcome::Rejected { .. }),
        "{outcome:?}"
    );
}

/// Once the run settled: its file is the lake's only one, and the history is kept as `name` for
/// the replay test.
async fn settled_alone(env: &TestEnv, id: &str, key: &str, name: &str) {
    assert_eq!(env.all_keys().await.unwrap(), [key]);
    env.record_history(name, id).await.unwrap();
}

/// `temporal workflow update execute`, as an operator types it: the exit status and stderr.
async fn temporal_update(
    env: &TestEnv,
    id: &str,
    input: &str,
    codec: Option<&str>,
) -> (bool, String) {
    let mut args = vec!["workflow", "update", "execute", "--workflow-id", id];
    args.extend(["--name", "review", "--input", input]);
    if let Some(codec) = codec {
        args.extend(["--codec-endpoint", codec]);
    }
    let output = temporal(env, &args).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("temporal workflow update execute {input}: {text}");
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_through_the_update_answers_with_the_promoted_key() {
    let env = TestEnv::start().await.unwrap();
    let id = quarantined(&env, "landing/emr/ehr/patients_bad.csv").await;
    let decided = review(Decision::Approve, "alice", "id backfilled upstream");
    let outcome = client::review(&env.client, &id, &decided)
        .await
        .unwrap()
        .unwrap();
    let ReviewOutcome::Promoted { key } = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(key.starts_with("raw/ehr/patients/ingest_date="), "{key}");
    // The answer came after the move: the lake and the result agree with it.
    assert_eq!(&env.all_keys().await.unwrap(), std::slice::from_ref(key));
    let result = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (result.phase, result.zone, &result.key),
        (IngestPhase::Promoted, Zone::Raw, key)
    );
    assert_eq!(result.review, Some(decided));

    // A second review once the file is decided is refused, and says so.
    let again = client::review(&env.client, &id, &review(Decision::Reject, "bob", ""))
        .await
        .unwrap()
        .unwrap_err();
    assert!(again.starts_with("already decided"), "{again}");

    assert_eq!(
        events_and_failed_tasks(&env, &id, "WorkflowExecutionUpdateCompletedEventAttributes").await,
        (1, 0)
    );
    let history = env.history_text(&id).await.unwrap();
    assert!(
        !history.contains("SENTINEL_PHI_7731"),
        "a cell value leaked"
    );
    env.record_history("approved_by_update", &id).await.unwrap();
}

/// Every mistake is refused before it reaches the history, with the field it got wrong and never
/// its text; the run keeps waiting, and a correct review afterwards decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_reviews_leave_the_file_reviewable() {
    let env = TestEnv::start().await.unwrap();
    let id = quarantined(&env, "landing/emr/ehr/patients_bad.csv").await;
    for (raw, field) in [
        (
            serde_json::json!({"decision": "approved", "reviewer": "alice", "reason": "FREE_TEXT_4410"}),
            "decision:",
        ),
        (
            serde_json::json!({"decision": "Approve", "reviewer": "alice"}),
            "decision:",
        ),
        (
            serde_json::json!({"decision": "approve", "reviewer": ""}),
            "reviewer:",
        ),
        (
            serde_json::json!({"decision": "approve", "reason": "FREE_TEXT_4410"}),
            "reviewer:",
        ),
        (
            serde_json::json!({"decision": "reject", "reviewer": "alice", "reason": 4410}),
            "reason:",
        ),
        (serde_json::json!("FREE_TEXT_4410"), "review:"),
    ] {
        let refused = client::review_raw(&env.client, &id, raw.clone())
            .await
            .unwrap()
            .unwrap_err();
        assert!(refused.starts_with(field), "{raw}: {refused}");
        assert!(
            !refused.contains("FREE_TEXT")
                && !refused.contains("approved")
                && !refused.contains("4410"),
            "{refused} quotes the payload"
        );
    }
    // From the `temporal` CLI, as an operator types it: refused, and never a success. Without
    // the codec the worker's failure message is encrypted like every payload; through the codec
    // server, as an operator with the key reads it, it is the validator's.
    let mistyped = r#"{"decision": "Approve", "reviewer": "carol", "reason": "FREE_TEXT_4410"}"#;
    let (ok, text) = temporal_update(&env, &id, mistyped, None).await;
    assert!(!ok, "the CLI reported success: {text}");
    assert!(!text.contains("FREE_TEXT"), "{text}");
    let (codec, _stop) = env.start_codec_server().await.unwrap();
    let (ok, text) = temporal_update(&env, &id, mistyped, Some(&codec)).await;
    assert!(!ok, "the CLI reported success: {text}");
    assert!(
        text.contains(r#"decision: expected "approve" or "reject""#),
        "{text}"
    );
    assert!(!text.contains("FREE_TEXT"), "{text}");

    let waiting = status(&env, &id).await;
    assert_eq!(
        (waiting.phase, &waiting.review),
        (IngestPhase::AwaitingReview, &None)
    );
    // Refused updates are not part of the run: nothing in the history, no failed task.
    assert_eq!(
        events_and_failed_tasks(&env, &id, "WorkflowExecutionUpdateAcceptedEventAttributes").await,
        (0, 0)
    );

    // Still reviewable: the CLI with a correct decision, then the answer.
    let (ok, text) = temporal_update(
        &env,
        &id,
        r#"{"decision": "reject", "reviewer": "carol", "reason": "wrong extract"}"#,
        Some(&codec),
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.contains("rejected"), "{text}");
    let result = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (result.phase, result.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert!(
        result.key.starts_with("rejected/emr/ehr/"),
        "{}",
        result.key
    );
    assert_eq!(result.review.map(|r| r.reviewer), Some("carol".to_owned()));
    settled_alone(&env, &id, &result.key, "update_refused_then_rejected").await;
}

/// Two reviewers at once: one decides, the other is told why not; the file moves once. (Sent
/// together, both often reach one workflow task, where both validators pass: the second handler
/// then refuses with the validator's words.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_simultaneous_reviews_one_decides() {
    let env = TestEnv::start().await.unwrap();
    let id = quarantined(&env, "landing/emr/ehr/patients_bad.csv").await;
    let approve = review(Decision::Approve, "alice", "");
    let reject = review(Decision::Reject, "bob", "");
    let (a, b) = tokio::join!(
        client::review(&env.client, &id, &approve),
        client::review(&env.client, &id, &reject),
    );
    let answers = [a.unwrap(), b.unwrap()];
    let decided: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let refused: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!((decided.len(), refused.len()), (1, 1), "{answers:?}");
    assert!(
        refused[0].starts_with("a review is already being acted on")
            || refused[0].starts_with("already decided"),
        "{refused:?}"
    );
    let result = client::wait_outcome(&env.client, &id).await.unwrap();
    match decided[0] {
        ReviewOutcome::Promoted { key } | ReviewOutcome::Rejected { key } => {
            assert_eq!(key, &result.key)
        }
        other => panic!("{other:?}"),
    }
    settled_alone(&env, &id, &result.key, "two_reviews_at_once").await;
}

/// An approval of a file no contract claims answers "still waiting" and why; the file stays
/// reviewable, and a rejection then settles it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_cannot_promote_says_why_and_the_file_stays_reviewable() {
    let env = TestEnv::start().await.unwrap();
    let id = ingest(&env, "landing/emr/unknown/claims.csv", b"a,b\n1,2\n").await;
    awaiting_review(&env, &id).await;
    let outcome = client::review(&env.client, &id, &review(Decision::Approve, "alice", ""))
        .await
        .unwrap()
        .unwrap();
    let ReviewOutcome::Waiting { reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains("no contract matches"), "{reason}");
    rejects(&env, &id, "bob", "").await;
}

/// The contracts of the test fixtures, copied so a test can break and mend them.
fn contracts_copy(dir: &Path) {
    let from = lakegate_tests::repo_root().join("tests/fixtures/contracts");
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
}

/// While the file is still validating, the Update is refused ("not in quarantine yet") and a
/// signal is held, then ignored at quarantine (there was no report to review): the reviewer
/// decides on the report, after it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_before_quarantine_is_refused_and_an_early_signal_does_not_decide() {
    let contracts = tempfile::tempdir().unwrap();
    contracts_copy(contracts.path());
    let env = TestEnv::start_with(contracts.path(), None).await.unwrap();
    // A contract file that does not parse: validation fails and is retried until it is mended,
    // so the run stays in `validating`.
    let broken = contracts.path().join("broken.yaml");
    std::fs::write(&broken, "dataset: [unclosed\n").unwrap();
    let id = ingest(&env, "landing/emr/ehr/patients_bad.csv", BAD_PATIENTS).await;
    client::wait_for_status(&env.client, &id, WAIT, |s| {
        s.phase == IngestPhase::Validating
    })
    .await
    .unwrap();

    let early = client::review(&env.client, &id, &review(Decision::Approve, "alice", ""))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        early.starts_with("not in quarantine yet: the file is validating"),
        "{early}"
    );
    client::send_review(&env.client, &id, review(Decision::Approve, "mallory", ""))
        .await
        .unwrap();
    std::fs::remove_file(&broken).unwrap();

    let waiting = client::wait_for_status(&env.client, &id, WAIT, |s| {
        s.phase == IngestPhase::AwaitingReview && !s.ignored_reviews.is_empty()
    })
    .await
    .unwrap();
    assert_eq!(waiting.review, None, "the early signal decided");
    assert!(
        waiting.ignored_reviews[0]
            .reason
            .starts_with("it came while the file was validating"),
        "{:?}",
        waiting.ignored_reviews
    );
    let started = Instant::now();
    rejects(&env, &id, "alice", "seen").await;
    assert!(started.elapsed() < WAIT);
    let result = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(result.review.map(|r| r.reviewer), Some("alice".to_owned()));
    let history = env.history_text(&id).await.unwrap();
    assert!(
        history.contains(lakegate_workflows::patches::INGEST_REVIEW_IN_QUARANTINE_ONLY),
        "the patch marker is recorded"
    );
    env.record_history("early_signal_ignored_then_rejected", &id)
        .await
        .unwrap();
}
