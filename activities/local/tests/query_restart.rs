//! The local query engine across a restart, and stopping a query: each query's state is in its
//! folder under `queries/`, so a new engine (a restarted worker) reconnects to a finished query,
//! runs again one whose engine is gone, and a stop kills the query's DuckDB processes.

mod common;

use std::time::{Duration, Instant};

use lakegate_activities::ports::{QueryEngine, QueryState};
use lakegate_local::LocalQueryEngine;

/// Seconds of work on two cores, and no result row shortcut DuckDB could take.
const SLOW: &str = "select count(*) as n from range(400000000) t(i) where hash(i) % 1000 = 7";
/// Far longer than any test waits.
const ENDLESS: &str = "select count(*) as n from range(1000000000000) t(i) where hash(i) = 0";

async fn wait_state(engine: &LocalQueryEngine, id: &str, within: Duration) -> QueryState {
    let deadline = Instant::now() + within;
    loop {
        let state = engine.query_state(id).await.unwrap();
        if !matches!(state, QueryState::Queued | QueryState::Running) {
            return state;
        }
        assert!(Instant::now() < deadline, "query {id} still {state:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Live processes in the process group the query folder names.
fn group_alive(queries_dir: &std::path::Path, id: &str) -> bool {
    let Ok(pgid) = std::fs::read_to_string(queries_dir.join(id).join("pid")) else {
        return false;
    };
    lakegate_local::jobs::group_alive(pgid.trim().parse().unwrap())
}

async fn wait_for_group(queries_dir: &std::path::Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !group_alive(queries_dir, id) {
        assert!(Instant::now() < deadline, "no DuckDB process for {id}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_gone(queries_dir: &std::path::Path, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while group_alive(queries_dir, id) {
        assert!(
            Instant::now() < deadline,
            "the DuckDB process of {id} lives on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_query_is_read_after_a_restart_without_running_again() {
    let (_dir, config) = common::config();
    let first = LocalQueryEngine::new(&config);
    let id = first
        .start_query("select 42 as answer", "check-0")
        .await
        .unwrap();
    assert_eq!(
        wait_state(&first, &id, Duration::from_secs(60)).await,
        QueryState::Succeeded
    );
    drop(first);
    let outcome = config.queries_dir.join(&id).join("outcome.json");
    let written = std::fs::metadata(&outcome).unwrap().modified().unwrap();

    let second = LocalQueryEngine::new(&config);
    // A retried start (the activity again, in the new worker) reconnects to the same query.
    assert_eq!(
        second
            .start_query("select 42 as answer", "check-0")
            .await
            .unwrap(),
        id
    );
    assert_eq!(
        second.query_state(&id).await.unwrap(),
        QueryState::Succeeded
    );
    let page = second.results(&id, None).await.unwrap();
    assert_eq!(page.columns, ["answer"]);
    assert_eq!(page.rows, vec![vec![Some("42".into())]]);
    assert_eq!(
        std::fs::metadata(&outcome).unwrap().modified().unwrap(),
        written,
        "the query ran again"
    );
    // The same token with other SQL is another query, not the first one's result.
    assert_ne!(
        second.start_query("select 43", "check-0").await.unwrap(),
        id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_whose_engine_stopped_is_run_again_by_the_next() {
    let (_dir, config) = common::config();
    let first = LocalQueryEngine::new(&config);
    let id = first.start_query(SLOW, "check-slow").await.unwrap();
    wait_for_group(&config.queries_dir, &id).await;
    assert_eq!(first.query_state(&id).await.unwrap(), QueryState::Running);
    // The worker stops mid-query: its DuckDB process goes with it, and no outcome is left.
    drop(first);
    wait_gone(&config.queries_dir, &id).await;
    assert!(!config.queries_dir.join(&id).join("outcome.json").exists());

    let second = LocalQueryEngine::new(&config);
    assert_eq!(
        second.query_state(&id).await.unwrap(),
        QueryState::Running,
        "taken over"
    );
    assert_eq!(
        wait_state(&second, &id, Duration::from_secs(300)).await,
        QueryState::Succeeded
    );
    let page = second.results(&id, None).await.unwrap();
    let n: u64 = page.rows[0][0].as_deref().unwrap().parse().unwrap();
    assert!(n > 0, "{page:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_query_is_cancelled_and_its_processes_killed() {
    let (_dir, config) = common::config();
    let engine = LocalQueryEngine::new(&config);
    let id = engine.start_query(ENDLESS, "check-endless").await.unwrap();
    wait_for_group(&config.queries_dir, &id).await;
    engine
        .stop_query(&id, "past query_deadline_secs")
        .await
        .unwrap();
    assert_eq!(
        engine.query_state(&id).await.unwrap(),
        QueryState::Cancelled {
            reason: "past query_deadline_secs".into(),
            log_key: None,
        }
    );
    // The wrapper and the DuckDB binary it runs, both.
    wait_gone(&config.queries_dir, &id).await;
    assert!(engine.results(&id, None).await.is_err());
    // A second stop (a retried activity) changes nothing.
    engine.stop_query(&id, "again").await.unwrap();

    // A query left running by an engine that is gone is stopped too, and not run again.
    let orphaned = LocalQueryEngine::new(&config);
    let id = orphaned.start_query(ENDLESS, "check-orphan").await.unwrap();
    wait_for_group(&config.queries_dir, &id).await;
    drop(orphaned);
    engine.stop_query(&id, "cancelled").await.unwrap();
    assert!(matches!(
        engine.query_state(&id).await.unwrap(),
        QueryState::Cancelled { .. }
    ));
    wait_gone(&config.queries_dir, &id).await;
}

#[tokio::test]
async fn an_unknown_query_id_is_a_permanent_error() {
    use lakegate_activities::ports::PortError;
    let (_dir, config) = common::config();
    let engine = LocalQueryEngine::new(&config);
    for id in ["local-7-abcdef", "local-../../etc", "nonsense"] {
        let err = engine.query_state(id).await.unwrap_err();
        assert!(!err.is_retryable(), "{id}: {err}");
    }
}
