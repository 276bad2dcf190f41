//! TransformWorkflow's check deadline and cancellation on the local backend: a check whose query
//! never ends is stopped at `query_deadline_secs` (its DuckDB processes killed), the check fails
//! saying which query and after how long, and the transform completes with the other checks'
//! results; cancelling the transform stops its running query the same way.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_local::jobs::group_alive;
use lakegate_models::{Check, TransformInput};
use lakegate_tests::TestEnv;
use lakegate_tests::runs::{self, checks_only, process_group_gone as gone};
use lakegate_workflows::TransformWorkflow;
use temporalio_client::WorkflowGetResultOptions;

/// Never ends on two cores: DuckDB cannot skip hashing a trillion rows.
const ENDLESS: &str = "select i from range(1000000000000) t(i) where hash(i) = 0";

fn checks_input(query_deadline_secs: u64) -> TransformInput {
    let checks = vec![
        Check::Sql {
            name: "nothing_wrong".into(),
            sql: "select 1 where false".into(),
        },
        Check::Sql {
            name: "endless".into(),
            sql: ENDLESS.into(),
        },
    ];
    TransformInput {
        query_deadline_secs,
        ..checks_only("checks", checks)
    }
}

/// The folder of the endless check's query while it runs (a DuckDB process group, no outcome).
async fn running_query(queries_dir: &Path, within: Duration) -> (PathBuf, i32) {
    let deadline = Instant::now() + within;
    loop {
        for entry in std::fs::read_dir(queries_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = entry.path();
            let endless = std::fs::read_to_string(dir.join("query.json"))
                .is_ok_and(|request| request.contains("hash(i) = 0"));
            if !endless || dir.join("outcome.json").exists() {
                continue;
            }
            if let Ok(pid) = std::fs::read_to_string(dir.join("pid"))
                && let Ok(pgid) = pid.trim().parse::<i32>()
                && group_alive(pgid)
            {
                return (dir, pgid);
            }
        }
        assert!(Instant::now() < deadline, "no check query started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn outcome_state(dir: &Path) -> String {
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("outcome.json")).unwrap()).unwrap();
    outcome["state"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_query_past_its_deadline_is_stopped_and_the_check_fails() {
    let env = TestEnv::start().await.unwrap();
    let queries_dir = env.config.local().unwrap().queries_dir;
    let id = runs::test_id(&env, "transform-check-deadline");
    let handle = runs::start_workflow(&env, TransformWorkflow::run, checks_input(8), &id).await;
    let (query_dir, pgid) = running_query(&queries_dir, Duration::from_secs(120)).await;
    let started = Instant::now();
    let result = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the deadline ended the wait"
    );
    assert!(!result.succeeded);
    assert!(result.checks[0].passed, "{:?}", result.checks[0]);
    let check = &result.checks[1];
    assert!(!check.passed);
    let query_id = query_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let error = check.error.as_deref().unwrap();
    assert!(
        error.contains("check sql:endless stopped")
            && error.contains(&format!("query {query_id}"))
            && error.contains("query_deadline_secs 8"),
        "{error}"
    );
    gone(pgid, Duration::from_secs(30)).await;
    assert_eq!(outcome_state(&query_dir), "CANCELLED");
    env.record_history("check_deadline", &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_transform_stops_its_check_query() {
    let env = TestEnv::start().await.unwrap();
    let queries_dir = env.config.local().unwrap().queries_dir;
    let id = runs::test_id(&env, "transform-check-cancel");
    let handle = runs::start_workflow(&env, TransformWorkflow::run, checks_input(3600), &id).await;
    let (query_dir, pgid) = running_query(&queries_dir, Duration::from_secs(120)).await;
    runs::cancel(&handle).await;
    gone(pgid, Duration::from_secs(30)).await;
    assert_eq!(outcome_state(&query_dir), "CANCELLED");
    let status = client::transform_status(&env.client, &id).await.unwrap();
    assert_eq!(status.checks.len(), 1, "the cancelled check has no result");
    env.record_history("check_cancelled", &id).await.unwrap();
}
