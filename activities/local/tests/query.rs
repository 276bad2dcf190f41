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
                QueryState::Failed { reason, .. } => panic!("query {i} failed: {reason}"),
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

/// Another process (dbt-duckdb's Python, here) holds the database file open for writing: the CLI
/// hits DuckDB's file lock and retries until the holder lets go.
#[tokio::test]
async fn a_query_waits_for_another_process_to_release_the_database() {
    use std::io::BufRead;
    let (_dir, config) = common::config();
    std::fs::create_dir_all(config.duckdb_path.parent().unwrap()).unwrap();
    let python = config.venv.join("bin/python");
    let hold = |seconds: f64| {
        let mut child = std::process::Command::new(&python)
            .args(["-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('create table if not exists held(x int)'); print('ready', flush=True); time.sleep(float(sys.argv[2]))"])
            .arg(&config.duckdb_path)
            .arg(seconds.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python from the virtualenv");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        child
    };

    let mut holder = hold(1.5);
    let started = std::time::Instant::now();
    let (_, rows, _) = port_suites::run_query(
        &LocalQueryEngine::new(&config),
        "SELECT count(*) FROM held",
        "waits",
        std::time::Duration::from_secs(60),
    )
    .await;
    assert_eq!(rows, vec![vec![Some("0".into())]]);
    assert!(holder.try_wait().unwrap().is_some() || started.elapsed().as_secs_f64() >= 1.0);
    holder.wait().unwrap();

    // With a short patience the lock error surfaces, as a retryable failure.
    let mut impatient = config.clone();
    impatient.lock_wait = std::time::Duration::from_millis(200);
    let mut holder = hold(30.0);
    let reason =
        port_suites::failed_query_says_why(&LocalQueryEngine::new(&impatient), "impatient").await;
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(reason.contains("locked by another process"), "{reason}");
}
