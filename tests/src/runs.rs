//! Starting runs and waiting, with a deadline, for them to reach a state: the steps most
//! integration tests share, kept here so that each test file says only what it checks.

use std::future::Future;
use std::time::{Duration, Instant};

use lakegate::client::{self, StartedIngest};
use lakegate_models::{CrawlStatus, IngestInput, IngestPhase, IngestStatus};
use temporalio_client::{Client, WorkflowHandle, WorkflowStartOptions};
use temporalio_common::HasWorkflowDefinition;

use crate::TestEnv;

/// Starts the ingest of `input`, which must be a file version no run has seen yet; its id.
pub async fn start(env: &TestEnv, input: IngestInput) -> String {
    match client::start_ingest(&env.client, &env.config.task_queue, input)
        .await
        .unwrap()
    {
        StartedIngest::Started(id) => id,
        StartedIngest::Duplicate(id) => panic!("{id} should be new"),
    }
}

/// `<prefix>-<hash>`: a workflow id no other test's server shares, for runs a test starts itself.
pub fn test_id(env: &TestEnv, prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        lakegate_models::short_hash(&env.config.task_queue)
    )
}

/// Starts `workflow` under `id` on the test's task queue.
pub async fn start_workflow<W>(
    env: &TestEnv,
    workflow: W,
    input: impl Into<W::Input>,
    id: &str,
) -> WorkflowHandle<Client, W>
where
    W: HasWorkflowDefinition,
    W::Input: Send,
{
    let input = input.into();
    let options = WorkflowStartOptions::new(env.config.task_queue.clone(), id.to_owned()).build();
    env.client
        .start_workflow(workflow, input, options)
        .await
        .unwrap()
}

/// An ingest that waits for nothing but a person: promoted, awaiting review or rejected.
pub fn settled(s: &IngestStatus) -> bool {
    matches!(
        s.phase,
        IngestPhase::Promoted | IngestPhase::AwaitingReview | IngestPhase::Rejected
    )
}

/// Waits until `probe` gives a value, polling every `every`; panics naming `what` once
/// `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, every: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(every).await;
    }
}

/// Waits until the crawler `crawler` has done `crawls` crawls, has nothing pending and is not
/// busy; its status then.
pub async fn crawler_settled(
    env: &TestEnv,
    crawler: &str,
    crawls: u64,
    within: Duration,
) -> CrawlStatus {
    let what = format!("crawler {crawler} did not settle after {crawls} crawls");
    eventually(within, Duration::from_millis(250), &what, || async {
        client::crawl_status(&env.client, crawler)
            .await
            .ok()
            .filter(|s| s.crawls_done >= crawls && s.pending_prefixes == 0 && s.phase == "waiting")
    })
    .await
}
