//! Malformed start input fails fast: each of the five workflows, started from the `temporal` CLI
//! (as any client of the namespace can) with JSON that does not fit its input, fails at once with a
//! non-retryable `MalformedInput` failure naming the field and the expected shape, never a value
//! sent, instead of failing its workflow task over and over.
//!
//! Record the history replayed by `replay.rs` with:
//! `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test bad_input`

use std::time::{Duration, Instant};

use lakegate_models::names;
use lakegate_tests::TestEnv;
use lakegate_tests::cli::temporal_ok;
use lakegate_tests::events::{count_events, encoded_message, run_failure};
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus};

/// Quoted into every input below: it must never come back in a failure.
const SENTINEL: &str = "SENTINEL_PHI_5520";

async fn temporal_start(env: &TestEnv, workflow_type: &str, id: &str, input: &str) {
    let task_queue = env.config.task_queue.as_str();
    let start = [
        "workflow",
        "start",
        "--type",
        workflow_type,
        "--task-queue",
        task_queue,
    ];
    temporal_ok(
        env,
        &[&start[..], &["--workflow-id", id, "--input", input]].concat(),
    )
    .await;
}

/// Waits (with a deadline) until the run is closed; returns its status.
async fn closed(env: &TestEnv, id: &str, within: Duration) -> WorkflowExecutionStatus {
    let deadline = Instant::now() + within;
    let handle = env
        .client
        .get_workflow_handle::<lakegate_workflows::IngestFileWorkflow>(id.to_owned());
    loop {
        let status = handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .unwrap()
            .status();
        if status != WorkflowExecutionStatus::Running {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{id} still running after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The failure of a failed run: its message (from the encrypted encoded attributes, decrypted
/// in this history) and the failure JSON.
fn failure(events: &[serde_json::Value]) -> (String, &serde_json::Value) {
    let failure = run_failure(events);
    let message =
        encoded_message(failure).unwrap_or_else(|| failure["message"].as_str().unwrap().to_owned());
    (message, failure)
}

/// Starts `workflow_type` with `input` and checks the run failed at once as described above;
/// returns the failure message.
async fn refused(env: &TestEnv, workflow_type: &str, id: &str, input: &str) -> String {
    let started = Instant::now();
    temporal_start(env, workflow_type, id, input).await;
    let status = closed(env, id, Duration::from_secs(30)).await;
    let took = started.elapsed();
    assert_eq!(status, WorkflowExecutionStatus::Failed, "{workflow_type}");
    let events = env.events(id).await;
    assert_eq!(
        count_events(&events, "WorkflowTaskFailedEventAttributes"),
        0,
        "{workflow_type} failed a workflow task"
    );
    assert_eq!(
        count_events(&events, "ActivityTaskScheduledEventAttributes"),
        0,
        "{workflow_type} ran an activity"
    );
    let (message, failure) = failure(&events);
    let info = &failure["applicationFailureInfo"];
    assert_eq!(
        info["type"],
        lakegate_workflows::MALFORMED_INPUT,
        "{failure}"
    );
    assert_eq!(info["nonRetryable"], true, "{failure}");
    assert!(
        message.starts_with(&format!(
            "{workflow_type}: the start input does not decode: "
        )),
        "{message}"
    );
    assert!(!message.contains(SENTINEL), "{message} quotes the input");
    eprintln!("{workflow_type}: failed in {took:?}: {message}");
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_started_without_version_fails_at_once_naming_the_field() {
    let env = TestEnv::start().await.unwrap();
    let id = "ingest-started-without-version";
    let input = format!(r#"{{"bucket": "lake", "key": "landing/emr/ehr/{SENTINEL}.csv"}}"#);
    let message = refused(&env, names::INGEST_FILE_WORKFLOW, id, &input).await;
    assert!(
        message.ends_with("missing field `version` at the top level"),
        "{message}"
    );
    // The key in the input never moved: nothing was read or moved.
    assert!(env.all_keys().await.unwrap().is_empty());
    env.record_history("malformed_input_refused", id)
        .await
        .unwrap();

    let wrong_type = format!(
        r#"{{"bucket": "lake", "key": "landing/a.csv", "version": "v", "review_timeout_secs": "{SENTINEL}"}}"#
    );
    let message = refused(
        &env,
        names::INGEST_FILE_WORKFLOW,
        "ingest-with-a-mistyped-timeout",
        &wrong_type,
    )
    .await;
    assert!(
        message.ends_with("invalid type, expected u64 at `review_timeout_secs`"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_workflow_refuses_input_that_does_not_decode() {
    let env = TestEnv::start().await.unwrap();
    for (workflow_type, id, input, names_the_field) in [
        (
            names::CRAWL_WORKFLOW,
            "crawl-malformed",
            format!(r#"{{"crawler": "{SENTINEL}", "database": 7}}"#),
            "`database`",
        ),
        (
            names::TRANSFORM_WORKFLOW,
            "transform-malformed",
            format!(r#"{{"dataset": "{SENTINEL}"}}"#),
            "missing field `project_dir`",
        ),
        (
            names::ONBOARD_DATASET_WORKFLOW,
            "backfill-malformed",
            format!(r#"{{"prefix": "landing/{SENTINEL}/", "max_in_flight": "{SENTINEL}"}}"#),
            "expected u32 at `max_in_flight`",
        ),
        (
            names::LANDING_SWEEP_WORKFLOW,
            "sweep-malformed",
            r#"{"older_than_secs": -1}"#.to_owned(),
            "`older_than_secs`",
        ),
    ] {
        let message = refused(&env, workflow_type, id, &input).await;
        assert!(message.contains(names_the_field), "{message}");
    }
}
