//! The job runner with real processes.

mod common;

use std::time::Duration;

use lakegate_activities::port_suites::{self, shell_job};
use lakegate_activities::ports::{JobRunner, JobState};
use lakegate_local::LocalJobRunner;
use lakegate_local::jobs::group_alive;

#[tokio::test]
async fn a_job_succeeds() {
    let (_dir, config) = common::config();
    port_suites::job_succeeds(&LocalJobRunner::new(&config), "ok-job").await;
}

#[tokio::test]
async fn a_job_fails_with_its_exit_code_and_log_tail() {
    let (_dir, config) = common::config();
    port_suites::job_fails_with_exit_code_and_log(&LocalJobRunner::new(&config), "bad-job").await;
}

#[tokio::test]
async fn terminate_ends_the_whole_process_group() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config);
    let id = port_suites::terminate_stops_job(&runner, "long-job").await;
    let pgid = runner
        .process_group(&id)
        .expect("the job recorded its process group");
    // The backgrounded `sleep` is in the group too: none of it may survive.
    assert!(
        !group_alive(pgid),
        "processes of group {pgid} survived terminate"
    );
    let status = runner.describe(&id).await.unwrap();
    assert_eq!(
        status.reason.as_deref(),
        Some("terminated: stopped by the test")
    );
}

#[tokio::test]
async fn a_second_submit_does_not_start_a_second_process() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config);
    let spec = shell_job(
        "once",
        "echo started >> \"$LAKEGATE_JOB_DIR/starts\"; sleep 0.3",
    );
    let id = port_suites::resubmit_returns_same_job(&runner, &spec).await;
    port_suites::wait_for_job(&runner, &id, Duration::from_secs(60)).await;

    // A restarted worker (a new runner on the same folders) knows the job and does not rerun it.
    let restarted = LocalJobRunner::new(&config);
    assert_eq!(restarted.submit(&spec).await.unwrap(), id);
    let status = restarted.describe(&id).await.unwrap();
    assert_eq!(status.state, JobState::Succeeded);
    let starts = std::fs::read_to_string(restarted.job_dir(&id).join("starts")).unwrap();
    assert_eq!(starts.lines().count(), 1, "the command ran more than once");
}

#[tokio::test]
async fn jobs_run_from_the_virtualenv_and_keep_artifacts() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config).without_database_lock();
    let mut spec = shell_job(
        "venv-job",
        "command -v duckdb; mkdir -p \"$DBT_TARGET_PATH\" && echo '{\"ok\":true}' > \"$DBT_TARGET_PATH/run_results.json\"; echo \"$STAGE\"",
    );
    spec.environment.insert("STAGE".into(), "staging".into());
    let id = runner.submit(&spec).await.unwrap();
    let status = port_suites::wait_for_job(&runner, &id, Duration::from_secs(60)).await;
    assert_eq!(
        status.state,
        JobState::Succeeded,
        "{:?}",
        runner.log_tail(&id, 20).await
    );
    let log = runner.log_tail(&id, 2).await.unwrap();
    assert_eq!(log[0], config.venv.join("bin/duckdb").display().to_string());
    assert_eq!(log[1], "staging");
    let artifact = runner
        .artifact(&id, "target/run_results.json")
        .await
        .unwrap();
    assert_eq!(artifact.as_deref(), Some(&b"{\"ok\":true}\n"[..]));
    assert_eq!(
        runner.artifact(&id, "target/manifest.json").await.unwrap(),
        None
    );
    assert!(runner.artifact(&id, "../../etc/passwd").await.is_err());
}

#[tokio::test]
async fn a_job_waits_for_the_database_and_reports_submitted() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config);
    let held = lakegate_local::duckdb::database_lock(&config.duckdb_path)
        .lock_owned()
        .await;
    let id = runner.submit(&shell_job("queued", "true")).await.unwrap();
    assert_eq!(
        runner.describe(&id).await.unwrap().state,
        JobState::Submitted
    );
    drop(held);
    let status = port_suites::wait_for_job(&runner, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_job_waiting_for_the_database_is_not_started_twice_by_a_second_runner() {
    let (_dir, config) = common::config();
    let (first, second) = (LocalJobRunner::new(&config), LocalJobRunner::new(&config));
    let held = lakegate_local::duckdb::database_lock(&config.duckdb_path)
        .lock_owned()
        .await;
    let spec = shell_job("waiting", "echo started >> \"$LAKEGATE_JOB_DIR/starts\"");
    let id = first.submit(&spec).await.unwrap();
    assert_eq!(
        second.describe(&id).await.unwrap().state,
        JobState::Submitted
    );
    assert_eq!(second.submit(&spec).await.unwrap(), id);
    drop(held);
    let status = port_suites::wait_for_job(&second, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded);
    let starts = std::fs::read_to_string(first.job_dir(&id).join("starts")).unwrap();
    assert_eq!(starts.lines().count(), 1, "the command ran more than once");
}

#[tokio::test]
async fn a_job_accepted_by_a_worker_that_died_is_taken_over() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config);
    // What a worker leaves behind when it dies after accepting a job and before starting it.
    let dead_worker = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    };
    let dir = runner.job_dir("orphan");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = shell_job("orphan", "echo ran");
    std::fs::write(dir.join("spec.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    std::fs::write(dir.join("launcher"), format!("{dead_worker}\n")).unwrap();

    let status = port_suites::wait_for_job(&runner, "orphan", Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(runner.log_tail("orphan", 1).await.unwrap(), ["ran"]);
}

#[tokio::test]
async fn unknown_jobs_are_not_found() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config);
    assert!(matches!(
        runner.describe("never-submitted").await,
        Err(lakegate_activities::ports::JobError::NotFound(_))
    ));
    assert!(
        runner
            .submit(&shell_job("../escape", "true"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_retry_job_gets_the_failed_jobs_dbt_state() {
    let (_dir, config) = common::config();
    let runner = LocalJobRunner::new(&config).without_database_lock();
    let mut spec = shell_job(
        "dbt-marts-retry-1",
        "echo \"$DBT_STATE\"; echo \"$DBT_TARGET_PATH\"",
    );
    spec.resume_from = Some("dbt-marts".into());
    let id = runner.submit(&spec).await.unwrap();
    port_suites::wait_for_job(&runner, &id, Duration::from_secs(60)).await;
    let lines = runner.log_tail(&id, 2).await.unwrap();
    assert_eq!(
        lines[0],
        runner
            .job_dir("dbt-marts")
            .join("target")
            .display()
            .to_string()
    );
    assert_eq!(
        lines[1],
        runner.job_dir(&id).join("target").display().to_string()
    );
}
