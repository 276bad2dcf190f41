//! TransformWorkflow's job deadline and cancellation on the local backend: a stage whose job never
//! ends (a dbt Python model that sleeps, as a Batch job stuck RUNNABLE never ends) is terminated
//! at `job_deadline_secs`, the stage fails saying which job and after how long, and the job's
//! process group is gone; cancelling the workflow terminates its running job the same way.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_local::LocalJobRunner;
use lakegate_models::TransformInput;
use lakegate_tests::runs::{self, process_group_gone as gone};
use lakegate_tests::{TestEnv, repo_root};
use lakegate_workflows::TransformWorkflow;
use temporalio_client::WorkflowGetResultOptions;

fn stuck_input(deadline_secs: u64) -> TransformInput {
    let project = repo_root()
        .join("tests/fixtures/dbt_stuck")
        .display()
        .to_string();
    TransformInput {
        dataset: "stuck".into(),
        project_dir: project.clone(),
        profiles_dir: project,
        target: "duckdb".into(),
        stages: vec!["stuck".into()],
        environment: Default::default(),
        max_attempts: 3,
        poll_initial_secs: 1,
        poll_max_secs: 2,
        checks: Vec::new(),
        job_deadline_secs: deadline_secs,
        query_deadline_secs: lakegate_models::default_query_deadline_secs(),
    }
}

/// The job folder the workflow's first job runs in, once its process has started.
async fn running_job(env: &TestEnv, workflow_id: &str, within: Duration) -> (String, i32) {
    let local = env.config.local().unwrap();
    let runner = LocalJobRunner::new(&local);
    let deadline = Instant::now() + within;
    loop {
        if let Ok(entries) = std::fs::read_dir(&local.jobs_dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(workflow_id)
                    && let Some(pgid) = runner.process_group(&name)
                {
                    return (name, pgid);
                }
            }
        }
        assert!(Instant::now() < deadline, "no job of {workflow_id} started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_job_is_terminated_at_its_deadline_and_not_retried() {
    let env = TestEnv::start().await.unwrap();
    let id = runs::test_id(&env, "transform-stuck");
    let handle = runs::start_workflow(&env, TransformWorkflow::run, stuck_input(20), &id).await;
    let (job, pgid) = running_job(&env, &id, Duration::from_secs(120)).await;
    let started = Instant::now();
    let error = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the deadline ended the wait"
    );
    let result = client::transform_status(&env.client, &id).await.unwrap();
    let stage = &result.stages[0];
    assert!(!stage.succeeded);
    assert_eq!(
        stage.jobs,
        std::slice::from_ref(&job),
        "a stage past its deadline is not retried"
    );
    let failure = stage.failure.as_deref().unwrap();
    assert!(
        failure.contains(&format!("job {job} terminated"))
            && failure.contains("job_deadline_secs 20"),
        "{failure}"
    );
    assert!(message.contains("terminated"), "{message}");
    gone(pgid, Duration::from_secs(30)).await;
    env.record_history("job_deadline", &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_transform_terminates_its_job() {
    let env = TestEnv::start().await.unwrap();
    let id = runs::test_id(&env, "transform-cancel");
    let handle = runs::start_workflow(&env, TransformWorkflow::run, stuck_input(3600), &id).await;
    let (_, pgid) = running_job(&env, &id, Duration::from_secs(120)).await;
    runs::cancel(&handle).await;
    gone(pgid, Duration::from_secs(30)).await;
    env.record_history("cancelled", &id).await.unwrap();
}
