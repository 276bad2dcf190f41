//! The landing sweep and Temporal Schedules on a real dev server.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate::schedules;
use lakegate_models::{IngestPhase, SweepInput, SweepResult, Zone, ingest_workflow_id};
use lakegate_tests::TestEnv;
use lakegate_workflows::LandingSweepWorkflow;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

const BODY: &[u8] = b"id,birthdate,gender\np1,1980-01-02,F\n";

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, bytes).unwrap();
    lakegate_local::content_sha256(&path).unwrap()
}

/// One LandingSweepWorkflow run, to completion.
async fn sweep_once(env: &TestEnv, workflow_id: &str, older_than_secs: u64) -> SweepResult {
    let input = SweepInput {
        older_than_secs,
        review_timeout_secs: 3600,
    };
    let options = WorkflowStartOptions::new(env.config.task_queue.clone(), workflow_id).build();
    let handle = env
        .client
        .start_workflow(LandingSweepWorkflow::run, input.into(), options)
        .await
        .unwrap();
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap()
}

async fn wait_started(env: &TestEnv, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client::workflow_exists(&env.client, id).await.unwrap() {
        assert!(Instant::now() < deadline, "{id} was never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_onboards_a_file_whose_event_was_lost_under_the_cli_s_id() {
    let env = TestEnv::start().await.unwrap();
    // In landing/, but nobody started its workflow.
    env.land("landing/emr/ehr/patients_lost.csv", BODY)
        .await
        .unwrap();

    let result = sweep_once(&env, "sweep-test-1", 0).await;
    assert_eq!(
        (result.seen, result.started, result.too_recent),
        (1, 1, 0),
        "{result:?}"
    );

    // The id `lakegate ingest` or an event would have used: a late event is a duplicate.
    let id = ingest_workflow_id("lake", "landing/emr/ehr/patients_lost.csv", &sha256(BODY));
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Promoted, Zone::Raw)
    );
    env.record_history("swept", "sweep-test-1").await.unwrap();

    // A file inside the grace period is left to its event.
    env.land("landing/emr/ehr/patients_fresh.csv", BODY)
        .await
        .unwrap();
    let result = sweep_once(&env, "sweep-test-2", 3600).await;
    assert_eq!(
        (result.seen, result.started, result.too_recent),
        (1, 0, 1),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_schedule_fires_and_can_be_paused_and_deleted() {
    let env = TestEnv::start().await.unwrap();
    let id = "test-sweep";
    schedules::create_sweep(
        &env.client,
        &env.config,
        id,
        Duration::from_secs(1),
        Duration::ZERO,
    )
    .await
    .unwrap();
    // Listing reads Temporal's visibility store, which catches up a moment later.
    wait_listed(&env, "the new schedule", |l| {
        l.iter()
            .any(|(s, w, paused)| s == id && w == "LandingSweepWorkflow" && !paused)
    })
    .await;

    env.land("landing/emr/ehr/patients_scheduled.csv", BODY)
        .await
        .unwrap();
    let workflow = ingest_workflow_id(
        "lake",
        "landing/emr/ehr/patients_scheduled.csv",
        &sha256(BODY),
    );
    wait_started(&env, &workflow).await;
    let outcome = client::wait_outcome(&env.client, &workflow).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);

    schedules::pause(&env.client, id, true).await.unwrap();
    wait_listed(&env, "the pause", |l| {
        l.iter().any(|(s, _, paused)| s == id && *paused)
    })
    .await;
    schedules::delete(&env.client, id).await.unwrap();
    wait_listed(&env, "the deletion", |l| !l.iter().any(|(s, _, _)| s == id)).await;
}

async fn wait_listed(env: &TestEnv, what: &str, done: impl Fn(&[(String, String, bool)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = schedules::list(&env.client).await.unwrap();
        if done(&listed) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never showed in the list: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
