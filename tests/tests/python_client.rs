//! The Python client example (examples/python/) against a real dev server and lakegate worker:
//! what docs/clients.md promises another service, checked from the official Temporal Python SDK
//! in the project's virtualenv. The worker encrypts its payloads, so the example runs with its
//! own implementation of the payload codec, as a production client must.

use std::time::Duration;

use lakegate::client;
use lakegate_models::{Decision, IngestPhase, ReviewSignal, Zone, ingest_workflow_id};
use lakegate_tests::{TestEnv, repo_root, venv};
use sha2::{Digest, Sha256};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// Row 2 lacks its id, so the file waits in quarantine; the gender cell is a sentinel that must
/// not come back to the client.
const BAD_PATIENTS: &[u8] =
    b"id,birthdate,gender\np3,1990-05-06,F\n,1991-07-08,SENTINEL_PHI_7731\n";
const KEY: &str = "landing/emr/ehr/patients_from_python.csv";
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs `ingest_and_review.py` for [`KEY`] and returns the JSON it prints; it must succeed.
async fn run_example(env: &TestEnv, review: &[&str]) -> serde_json::Value {
    let (code, report) = run_example_for_code(env, review).await;
    assert_eq!(code, 0, "the Python example failed: {report}");
    report
}

/// Runs `ingest_and_review.py` for [`KEY`] with the worker's keys; returns its exit code and the
/// JSON it printed.
async fn run_example_for_code(env: &TestEnv, review: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec![
        "--data-dir".to_owned(),
        env.config.data_dir.display().to_string(),
        "--codec-key-file".to_owned(),
        env.config.dev_key_file().display().to_string(),
    ];
    args.extend(review.iter().map(|a| a.to_string()));
    run_script(env, &args).await
}

async fn run_script(env: &TestEnv, extra: &[String]) -> (i32, serde_json::Value) {
    let mut command = tokio::process::Command::new(venv().join("bin/python"));
    command
        .arg(repo_root().join("examples/python/ingest_and_review.py"))
        .args(["--address", env.server_address()])
        .args(["--task-queue", &env.config.task_queue])
        .args(["--bucket", &env.config.bucket, "--key", KEY])
        .args(["--wait-secs", "60"])
        .args(extra)
        // The example reads Temporal's standard client settings: none may point elsewhere.
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_PROFILE")
        .env_remove("TEMPORAL_CONFIG_FILE")
        .env_remove("LAKEGATE_CODEC_KEYS")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_LIMIT, command.output())
        .await
        .expect("the Python example did not finish in time")
        .expect("running the Python example from .venv (scripts/bootstrap installs temporalio)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    assert!(
        (0..=2).contains(&code),
        "the Python example failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        !stdout.contains("SENTINEL_PHI_7731"),
        "a cell value reached the client: {stdout}"
    );
    let report = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the example printed no JSON ({e}):\n{stdout}\n{stderr}"));
    (code, report)
}

/// Puts [`BAD_PATIENTS`] at [`KEY`] with no workflow (the Python client starts it, as another
/// service would); returns its version and the id docs/clients.md says its run has.
async fn land_unstarted(env: &TestEnv) -> (String, String) {
    use lakegate_activities::ports::ObjectStore;
    env.store
        .put(KEY, bytes::Bytes::from_static(BAD_PATIENTS))
        .await
        .unwrap();
    // The local backend's version is the content's SHA-256.
    let version = hex::encode(Sha256::digest(BAD_PATIENTS));
    let id = ingest_workflow_id(&env.config.bucket, KEY, &version);
    (version, id)
}

fn encoding(payload: &Payload) -> String {
    String::from_utf8_lossy(&payload.metadata["encoding"]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_starts_queries_and_reviews_an_ingest() {
    let env = TestEnv::start().await.unwrap();
    let (version, expected_id) = land_unstarted(&env).await;

    let report = run_example(
        &env,
        &[
            "--decision",
            "approve",
            "--reviewer",
            "py-reviewer",
            "--reason",
            "id backfilled upstream",
        ],
    )
    .await;
    assert_eq!(report["workflow_id"], expected_id.as_str(), "{report}");
    assert_eq!(report["started"], true, "{report}");
    // The status query, decrypted by the Python codec and decoded as JSON.
    let status = &report["status"];
    assert_eq!(status["phase"], "awaiting_review", "{report}");
    assert_eq!(status["zone"], "quarantine", "{report}");
    assert_eq!(status["quarantine_reason"], "required(id)", "{report}");
    assert_eq!(status["contract"]["dataset"], "ehr", "{report}");
    // Found again by the search attributes the workflow set.
    assert_eq!(report["in_review_inbox"], true, "{report}");
    assert_eq!(report["reviewed"]["decision"], "approve", "{report}");
    assert_eq!(report["outcome"]["phase"], "promoted", "{report}");
    assert_eq!(report["outcome"]["review"]["reviewer"], "py-reviewer");

    // The workflow itself, read by lakegate's own client: the review from Python was applied.
    let outcome = client::wait_outcome(&env.client, &expected_id)
        .await
        .unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);
    assert_eq!(outcome.zone, Zone::Raw);
    assert_eq!(
        outcome.review,
        Some(ReviewSignal {
            decision: Decision::Approve,
            reviewer: "py-reviewer".into(),
            reason: "id backfilled upstream".into(),
        })
    );
    let keys = env.all_keys().await.unwrap();
    assert!(
        keys.len() == 1 && keys[0].starts_with("raw/ehr/patients/"),
        "{keys:?}"
    );

    // What the server stored from the Python client is encrypted, and the worker read it.
    let stored = lakegate::replay::fetch_history(&env.client, &expected_id, None)
        .await
        .unwrap();
    let mut sent = Vec::new();
    for event in &stored.history.events {
        match event.attributes.as_ref() {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
                sent.extend(a.input.iter().flat_map(|p| p.payloads.iter()).map(encoding));
            }
            Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
                sent.extend(a.input.iter().flat_map(|p| p.payloads.iter()).map(encoding));
            }
            _ => {}
        }
    }
    assert_eq!(
        sent,
        ["binary/encrypted", "binary/encrypted"],
        "start input and review"
    );

    // The same file version again (named by its version: it has left landing/): the id's run
    // answers, nothing starts and nothing is reviewed.
    let again = run_example(&env, &["--version", &version, "--decision", "reject"]).await;
    assert_eq!(again["workflow_id"], expected_id.as_str(), "{again}");
    assert_eq!(again["started"], false, "{again}");
    assert_eq!(again["status"]["phase"], "promoted", "{again}");
    assert!(again.get("reviewed").is_none(), "{again}");
    assert_eq!(again["outcome"]["review"]["decision"], "approve", "{again}");
}

/// A client without the keys: the worker reads its plain start input (the run gets to
/// quarantine), but the answers come back encrypted and the client cannot read them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_keys_starts_but_cannot_read_the_answers() {
    let env = TestEnv::start().await.unwrap();
    let (version, expected_id) = land_unstarted(&env).await;
    let no_keys = tempfile::tempdir().unwrap();
    let (code, report) = run_script(
        &env,
        &[
            "--data-dir".to_owned(),
            no_keys.path().display().to_string(),
            "--version".to_owned(),
            version,
            "--wait-secs".to_owned(),
            "5".to_owned(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["started"], true, "{report}");
    assert!(report.get("status").is_none(), "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("binary/encrypted"), "{report}");
    let status = client::wait_for_status(&env.client, &expected_id, RUN_LIMIT, |s| {
        s.phase == IngestPhase::AwaitingReview
    })
    .await
    .unwrap();
    assert_eq!(status.quarantine_reason.as_deref(), Some("required(id)"));
    let stored = lakegate::replay::fetch_history(&env.client, &expected_id, None)
        .await
        .unwrap();
    let start = stored
        .history
        .events
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a.input.clone(),
            _ => None,
        });
    let encodings: Vec<String> = start
        .iter()
        .flat_map(|p| &p.payloads)
        .map(encoding)
        .collect();
    assert_eq!(encodings, ["json/plain"]);
}

/// The `review` Update from Python: a review the validator refuses is answered with the field it
/// got wrong and leaves the file waiting; a right one answers with where the file went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_reviews_with_the_update() {
    let env = TestEnv::start().await.unwrap();
    let (version, expected_id) = land_unstarted(&env).await;

    let (code, refused) = run_example_for_code(&env, &["--via", "update", "--reviewer", " "]).await;
    assert_eq!(code, 2, "{refused}");
    assert_eq!(refused["workflow_id"], expected_id.as_str(), "{refused}");
    let message = refused["review_refused"].as_str().unwrap_or_default();
    assert!(message.starts_with("reviewer:"), "{refused}");
    let status = client::query_status(&env.client, &expected_id)
        .await
        .unwrap();
    assert_eq!(status.phase, IngestPhase::AwaitingReview);

    // In quarantine/ now: named by its version.
    let report = run_example(
        &env,
        &[
            "--version",
            &version,
            "--via",
            "update",
            "--decision",
            "reject",
            "--reviewer",
            "py-reviewer",
        ],
    )
    .await;
    assert_eq!(report["started"], false, "{report}");
    assert_eq!(report["review_outcome"]["outcome"], "rejected", "{report}");
    let key = report["review_outcome"]["key"].as_str().unwrap_or_default();
    assert!(key.starts_with("rejected/emr/ehr/"), "{report}");
    let outcome = client::wait_outcome(&env.client, &expected_id)
        .await
        .unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Rejected, Zone::Rejected)
    );
    assert_eq!(env.all_keys().await.unwrap(), [key]);
}
