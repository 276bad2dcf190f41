//! CrawlWorkflow never loses a prefix: a crawl whose activity fails for good (here the local
//! crawler refuses an invalid crawler name, as Glue answers EntityNotFound for a missing one)
//! neither ends the workflow nor drops the prefix; it waits out a backoff and tries again.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_models::{CrawlInput, CrawlTiming, names};
use lakegate_tests::{TestEnv, runs};
use lakegate_workflows::CrawlWorkflow;
use temporalio_client::WorkflowTerminateOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_crawl_activity_keeps_the_prefix_pending_and_the_workflow_running() {
    let env = TestEnv::start().await.unwrap();
    let crawler = format!(
        "no such crawler {}",
        lakegate_models::short_hash(&env.config.task_queue)
    );
    let input = CrawlInput {
        crawler: crawler.clone(),
        dataset: "ehr".into(),
        database: "raw".into(),
        transform: None,
        timing: CrawlTiming {
            quiet_period_secs: 1,
            max_wait_secs: 5,
            poll_initial_secs: 1,
            poll_max_secs: 2,
            crawl_deadline_secs: 60,
            crawls_per_run: 20,
        },
        // A prefix no contract claims: the catalog step leaves it to the crawler, which fails.
        pending: vec!["raw/untyped/files/".into()],
        crawls_done: 0,
        known_tables: Default::default(),
        failures: 0,
        last_failure: None,
    };
    let id = names::crawl_workflow_id(&crawler);
    let handle = runs::start_workflow(&env, CrawlWorkflow::run, input, &id).await;
    // Two failed attempts in a row: the first, then one after the backoff.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Ok(status) = client::crawl_status(&env.client, &crawler).await
            && status.consecutive_failures >= 2
        {
            break status;
        }
        assert!(Instant::now() < deadline, "no second failed crawl");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(status.pending_prefixes, 1, "{status:?}");
    let last = status.last.unwrap();
    assert_eq!(last.status, "ACTIVITY_FAILED");
    assert_eq!(last.prefixes, ["raw/untyped/files/"]);
    env.record_history("activity_failed_kept_pending", &id)
        .await
        .unwrap();
    handle
        .terminate(WorkflowTerminateOptions::default())
        .await
        .unwrap();
}
