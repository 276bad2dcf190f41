//! The query engine on a real DuckDB CLI.

mod common;

use lakegate_activities::port_suites;
use lakegate_local::LocalQueryEngine;

#[tokio::test]
async fn rows_and_nulls() {
    let (_dir, config) = common::config();
    port_suites::query_returns_rows_and_nulls(&LocalQueryEngine::new(&config), "rows").await;
}

#[tokio::test]
async fn results_come_in_pages() {
    let (_dir, mut config) = common::config();
    config.page_size = 10;
    let engine = LocalQueryEngine::new(&config);
    port_suites::query_paginates(&engine, "SELECT range AS n FROM range(25)", "pages", 25).await;
}

#[tokio::test]
async fn a_request_token_reconnects_to_its_query() {
    let (_dir, config) = common::config();
    port_suites::request_token_reconnects(&LocalQueryEngine::new(&config), "token").await;
}

#[tokio::test]
async fn a_bad_query_fails_with_a_reason() {
    let (_dir, config) = common::config();
    let reason = port_suites::failed_query_says_why(&LocalQueryEngine::new(&config), "bad").await;
    assert!(reason.contains("no_such_table_anywhere"), "{reason}");
}

#[tokio::test]
async fn concurrent_writers_on_one_database_all_succeed() {
    use lakegate_activities::ports::{QueryEngine, QueryState};
    let (_dir, config) = common::config();
    let engine = LocalQueryEngine::new(&config);
    // Each start spawns its CLI at once; without the per-database lock most would hit DuckDB's
    // file lock.
    let mut ids = Vec::new();
    for i in 0..6 {
        let sql = format!("CREATE TABLE t{i} AS SELECT {i} AS v; SELECT v FROM t{i}");
        ids.push(engine.start_query(&sql, &format!("c{i}")).await.unwrap());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (i, id) in ids.iter().enumerate() {
        loop {
            match engine.query_state(id).await.unwrap() {
                QueryState::Succeeded => break,
                QueryState::Failed { reason } => panic!("query {i} failed: {reason}"),
                _ => {}
            }
            assert!(
                std::time::Instant::now() < deadline,
                "query {i} did not end"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let page = engine.results(id, None).await.unwrap();
        assert_eq!(page.rows, vec![vec![Some(i.to_string())]]);
    }
}
