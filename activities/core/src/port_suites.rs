//! Port behaviour suites: what the workflows rely on from each port, as async checks over a
//! `&dyn` port, so the local backend and the AWS backend (against moto) run the same checks. They
//! panic on a violation, like assertions, and wait on conditions with deadlines, never on sleeps.
//! Built only with the `testing` feature.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::ports::{
    Catalog, ColumnInfo, CrawlRequest, CrawlStart, Crawler, CrawlerState, JobRunner, JobSpec,
    JobState, JobStatus, LastCrawl, ObjectMeta, ObjectStore, QueryEngine, QueryState, StoreError,
    TableInfo,
};

const POLL: Duration = Duration::from_millis(50);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Waits until the crawler is READY with a last crawl that started at or after `since` (Unix
/// seconds; a backend that reports no start time is taken at its word).
pub async fn wait_for_crawl(
    crawler: &dyn Crawler,
    name: &str,
    since: i64,
    within: Duration,
) -> LastCrawl {
    let deadline = Instant::now() + within;
    loop {
        let status = crawler.crawler_status(name).await.expect("crawler_status");
        if status.state == CrawlerState::Ready
            && let Some(last) = status.last_crawl
            && last.started_at.is_none_or(|t| t >= since)
        {
            return last;
        }
        assert!(
            Instant::now() < deadline,
            "crawler {name} did not finish within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A crawl over `request` succeeds and the catalog then holds `expected` with exactly its columns
/// (names and Glue types, in order), partition keys and partitions.
pub async fn crawl_creates_table(
    crawler: &dyn Crawler,
    catalog: &dyn Catalog,
    request: &CrawlRequest,
    expected: &TableInfo,
    within: Duration,
) -> TableInfo {
    let since = now_secs();
    let start = crawler.start_crawl(request).await.expect("start_crawl");
    assert_eq!(start, CrawlStart::Started);
    let last = wait_for_crawl(crawler, &request.crawler, since, within).await;
    assert_eq!(
        last.status, "SUCCEEDED",
        "crawl failed: {:?}",
        last.error_message
    );
    let tables = catalog
        .list_tables(&request.database)
        .await
        .expect("list_tables");
    let table = tables
        .iter()
        .find(|t| t.name == expected.name)
        .unwrap_or_else(|| {
            panic!(
                "no table {} after the crawl; tables: {tables:?}",
                expected.name
            )
        })
        .clone();
    assert_eq!(table.database, expected.database);
    assert_eq!(
        table.columns, expected.columns,
        "columns of {}",
        expected.name
    );
    assert_eq!(
        table.partition_keys, expected.partition_keys,
        "partition keys of {}",
        expected.name
    );
    assert_eq!(
        table.partitions, expected.partitions,
        "partitions of {}",
        expected.name
    );
    table
}

/// A crawl over unreadable data ends FAILED with a reason.
pub async fn crawl_of_broken_data_fails(
    crawler: &dyn Crawler,
    request: &CrawlRequest,
    within: Duration,
) -> String {
    let since = now_secs();
    crawler.start_crawl(request).await.expect("start_crawl");
    let last = wait_for_crawl(crawler, &request.crawler, since, within).await;
    assert_eq!(last.status, "FAILED");
    let reason = last.error_message.expect("a failed crawl says why");
    assert!(!reason.trim().is_empty());
    reason
}

/// While a crawl runs (the caller keeps it running), the crawler reports RUNNING and a second
/// start joins that run.
pub async fn start_while_running_joins(crawler: &dyn Crawler, request: &CrawlRequest) {
    assert_eq!(
        crawler.start_crawl(request).await.expect("start_crawl"),
        CrawlStart::Started
    );
    let status = crawler
        .crawler_status(&request.crawler)
        .await
        .expect("crawler_status");
    assert_eq!(status.state, CrawlerState::Running);
    assert_eq!(
        crawler
            .start_crawl(request)
            .await
            .expect("second start_crawl"),
        CrawlStart::JoinedRunning
    );
}

pub fn column(name: &str, data_type: &str) -> ColumnInfo {
    ColumnInfo {
        name: name.to_owned(),
        data_type: data_type.to_owned(),
    }
}

/// Starts `sql`, waits for it, and reads every page: (columns, rows, pages).
pub async fn run_query(
    engine: &dyn QueryEngine,
    sql: &str,
    token: &str,
    within: Duration,
) -> (Vec<String>, Vec<Vec<Option<String>>>, usize) {
    let id = engine.start_query(sql, token).await.expect("start_query");
    let deadline = Instant::now() + within;
    loop {
        match engine.query_state(&id).await.expect("query_state") {
            QueryState::Succeeded => break,
            QueryState::Failed { reason, .. } => panic!("query failed: {reason}"),
            QueryState::Cancelled { reason, .. } => panic!("query cancelled: {reason}"),
            QueryState::Queued | QueryState::Running => {}
        }
        assert!(
            Instant::now() < deadline,
            "query did not finish within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    let (mut rows, mut pages, mut token) = (Vec::new(), 0, None::<String>);
    loop {
        let page = engine
            .results(&id, token.as_deref())
            .await
            .expect("results");
        pages += 1;
        rows.extend(page.rows);
        match page.next_token {
            Some(next) => token = Some(next),
            None => return (page.columns, rows, pages),
        }
    }
}

/// Rows come back in order with their column names, and NULL stays apart from the empty string.
pub async fn query_returns_rows_and_nulls(engine: &dyn QueryEngine, token: &str) {
    let sql = "SELECT * FROM (VALUES (1, 'a', NULL), (2, '', 'x')) AS t(id, s, n) ORDER BY id";
    let (columns, rows, _) = run_query(engine, sql, token, Duration::from_secs(60)).await;
    assert_eq!(columns, ["id", "s", "n"]);
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into()), Some("a".into()), None],
            vec![Some("2".into()), Some(String::new()), Some("x".into())],
        ]
    );
}

/// `sql` returns `expected_rows` rows over more than one page, each row once.
pub async fn query_paginates(
    engine: &dyn QueryEngine,
    sql: &str,
    token: &str,
    expected_rows: usize,
) {
    let (_, rows, pages) = run_query(engine, sql, token, Duration::from_secs(60)).await;
    assert_eq!(rows.len(), expected_rows);
    assert!(pages > 1, "{expected_rows} rows came back in one page");
    let distinct: std::collections::BTreeSet<_> = rows.iter().collect();
    assert_eq!(distinct.len(), rows.len(), "a row came back twice");
}

/// A start with a known request token returns the first query's id; a new token a new query.
pub async fn request_token_reconnects(engine: &dyn QueryEngine, token: &str) {
    let first = engine
        .start_query("SELECT 1 AS one", token)
        .await
        .expect("start_query");
    let again = engine
        .start_query("SELECT 1 AS one", token)
        .await
        .expect("start_query again");
    assert_eq!(first, again);
    let other = engine
        .start_query("SELECT 1 AS one", &format!("{token}-other"))
        .await
        .expect("start_query with another token");
    assert_ne!(first, other);
}

/// A query the engine rejects ends FAILED with a reason.
pub async fn failed_query_says_why(engine: &dyn QueryEngine, token: &str) -> String {
    let id = engine
        .start_query("SELECT * FROM no_such_table_anywhere", token)
        .await
        .expect("start_query");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match engine.query_state(&id).await.expect("query_state") {
            QueryState::Failed { reason, .. } => {
                assert!(!reason.is_empty());
                return reason;
            }
            QueryState::Succeeded => panic!("a query on a missing table succeeded"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "query did not end");
        tokio::time::sleep(POLL).await;
    }
}

pub fn shell_job(name: &str, script: &str) -> JobSpec {
    JobSpec {
        name: name.to_owned(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        environment: BTreeMap::new(),
        resume_from: None,
    }
}

/// Waits until the job is SUCCEEDED or FAILED.
pub async fn wait_for_job(runner: &dyn JobRunner, job_id: &str, within: Duration) -> JobStatus {
    let deadline = Instant::now() + within;
    loop {
        let status = runner.describe(job_id).await.expect("describe");
        if matches!(status.state, JobState::Succeeded | JobState::Failed) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} did not end within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the job is RUNNING.
pub async fn wait_until_running(runner: &dyn JobRunner, job_id: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = runner.describe(job_id).await.expect("describe");
        match status.state {
            JobState::Running => return,
            JobState::Succeeded | JobState::Failed => {
                panic!("job {job_id} ended early: {status:?}")
            }
            JobState::Submitted => {}
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} did not start within {within:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A command that exits 0 is SUCCEEDED and its output is in the log.
pub async fn job_succeeds(runner: &dyn JobRunner, name: &str) {
    let id = runner
        .submit(&shell_job(name, "echo starting; echo finished"))
        .await
        .expect("submit");
    let status = wait_for_job(runner, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Succeeded, "{status:?}");
    assert_eq!(status.exit_code, Some(0));
    assert_eq!(
        runner.log_tail(&id, 1).await.expect("log_tail"),
        ["finished"]
    );
}

/// A command that exits non-zero is FAILED with its exit code, and the log's tail holds what it
/// wrote to stderr last.
pub async fn job_fails_with_exit_code_and_log(runner: &dyn JobRunner, name: &str) {
    let script = "for i in 1 2 3 4 5; do echo line $i; done; echo 'model x failed' >&2; exit 3";
    let id = runner
        .submit(&shell_job(name, script))
        .await
        .expect("submit");
    let status = wait_for_job(runner, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    assert_eq!(status.exit_code, Some(3));
    assert_eq!(
        runner.log_tail(&id, 2).await.expect("log_tail"),
        ["line 5", "model x failed"]
    );
}

/// A job that runs until stopped is FAILED after terminate. Returns its id so the backend's test
/// can check the processes are gone.
pub async fn terminate_stops_job(runner: &dyn JobRunner, name: &str) -> String {
    let id = runner
        .submit(&shell_job(name, "sleep 300 & sleep 300; wait"))
        .await
        .expect("submit");
    wait_until_running(runner, &id, Duration::from_secs(60)).await;
    runner
        .terminate(&id, "stopped by the test")
        .await
        .expect("terminate");
    let status = wait_for_job(runner, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    id
}

/// A second submit under the same name returns the first job's id.
pub async fn resubmit_returns_same_job(runner: &dyn JobRunner, spec: &JobSpec) -> String {
    let first = runner.submit(spec).await.expect("submit");
    let again = runner.submit(spec).await.expect("second submit");
    assert_eq!(first, again);
    first
}

/// Reads a whole object.
pub async fn read_all(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let mut body = store.get(key).await.unwrap();
    let mut buf = Vec::new();
    body.read_to_end(&mut buf).await.unwrap();
    buf
}

pub async fn object_store_contract(store: &dyn ObjectStore) {
    let key = "landing/emr/ehr/visits 2026-11-26.csv";
    let body = Bytes::from_static(b"id,visit_date\n1,2026-11-26\n");

    assert!(
        store.head(key).await.unwrap().is_none(),
        "head of a missing object must be None"
    );
    assert!(
        matches!(store.get(key).await, Err(StoreError::NotFound(_))),
        "get of a missing object must be NotFound"
    );

    let put = store.put(key, body.clone()).await.unwrap();
    assert!(
        put.key == key && put.size == body.len() as u64,
        "put returns the key and size: {put:?}"
    );
    let head = store.head(key).await.unwrap().expect("present after put");
    assert!(
        head.size == body.len() as u64 && head.etag.is_some(),
        "head after put: {head:?}"
    );
    assert!(
        read_all(store, key).await == body,
        "get returns the bytes put"
    );

    store
        .put("landing/emr/ehr/a.csv", Bytes::from_static(b"a"))
        .await
        .unwrap();
    store
        .put("landing/emr/other/b.csv", Bytes::from_static(b"b"))
        .await
        .unwrap();
    store
        .put("raw/emr/ehr/c.csv", Bytes::from_static(b"c"))
        .await
        .unwrap();
    let listed: Vec<String> = store
        .list("landing/emr/ehr/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(
        listed == vec!["landing/emr/ehr/a.csv".to_owned(), key.to_owned()],
        "list is prefix-scoped and ordered: {listed:?}"
    );
    let page_keys = |page: Vec<ObjectMeta>| page.into_iter().map(|m| m.key).collect::<Vec<_>>();
    let first = page_keys(store.list_page("landing/emr/ehr/", None, 1).await.unwrap());
    let rest = page_keys(
        store
            .list_page("landing/emr/ehr/", Some("landing/emr/ehr/a.csv"), 10)
            .await
            .unwrap(),
    );
    let past_end = page_keys(
        store
            .list_page("landing/emr/ehr/", Some(key), 10)
            .await
            .unwrap(),
    );
    assert!(
        first == listed[..1] && rest == listed[1..] && past_end.is_empty(),
        "list_page resumes after its cursor, within the prefix and the limit: \
         {first:?} {rest:?} {past_end:?}"
    );

    let to = "raw/emr/ehr/visits 2026-11-26.csv";
    let moved = store.move_object(key, to).await.unwrap();
    assert!(
        moved.key == to && moved.size == body.len() as u64,
        "move returns the destination: {moved:?}"
    );
    assert!(
        store.head(key).await.unwrap().is_none(),
        "the source is gone after a move"
    );
    assert!(
        read_all(store, to).await == body,
        "the destination holds the bytes"
    );
    // A retry of a finished move succeeds and changes nothing.
    let again = store.move_object(key, to).await.unwrap();
    assert!(
        again.key == to && again.size == moved.size,
        "a repeated move reports the destination"
    );
    assert!(
        matches!(
            store
                .move_object("landing/nothing.csv", "raw/nothing.csv")
                .await,
            Err(StoreError::NotFound(_))
        ),
        "moving what exists nowhere is NotFound"
    );

    store.delete(to).await.unwrap();
    assert!(store.head(to).await.unwrap().is_none(), "delete removes");
    store.delete(to).await.unwrap();

    // A conditional move refuses a source replaced since it was read, and moves nothing.
    let read = store
        .put(key, Bytes::from_static(b"validated"))
        .await
        .unwrap();
    let now = store
        .put(key, Bytes::from_static(b"replaced!"))
        .await
        .unwrap();
    assert!(
        matches!(
            store
                .move_object_if(key, to, read.etag.as_deref().unwrap())
                .await,
            Err(StoreError::Conflict { .. })
        ),
        "a replaced source is a Conflict"
    );
    assert!(
        store.head(to).await.unwrap().is_none() && store.head(key).await.unwrap().is_some(),
        "nothing moved"
    );
    store
        .move_object_if(key, to, now.etag.as_deref().unwrap())
        .await
        .unwrap();
    assert!(
        read_all(store, to).await == b"replaced!",
        "the unchanged source moves"
    );
    store.delete(to).await.unwrap();
}
