//! Starting runs and waiting, with a deadline, for them to reach a state: the steps most
//! integration tests share, kept here so that each test file says only what it checks.

use std::future::Future;
use std::time::{Duration, Instant};

use lakegate::client::{self, StartedIngest};
use lakegate_models::{
    Check, CrawlStatus, Decision, IngestInput, IngestPhase, IngestStatus, ReviewOutcome,
    ReviewSignal, RuleOutcome, TransformInput,
};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowGetResultOptions, WorkflowHandle, WorkflowStartOptions,
};
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

/// Lands `body` at `key` and starts its ingest; the run's id.
pub async fn ingest(env: &TestEnv, key: &str, body: &[u8]) -> String {
    let input = env.land(key, body).await.unwrap();
    start(env, input).await
}

/// How long a file may take to reach a phase a test waits for.
pub const PHASE_WAIT: Duration = Duration::from_secs(60);

/// Waits until the ingest `id` waits for review; its status then.
pub async fn awaiting_review(env: &TestEnv, id: &str) -> IngestStatus {
    client::wait_for_status(&env.client, id, PHASE_WAIT, |s| {
        s.phase == IngestPhase::AwaitingReview
    })
    .await
    .unwrap()
}

/// A reviewer's decision, as `lakegate review` sends it.
pub fn review(decision: Decision, reviewer: &str, reason: &str) -> ReviewSignal {
    ReviewSignal {
        decision,
        reviewer: reviewer.into(),
        reason: reason.into(),
    }
}

/// A transform of no dbt stage, only `checks`: one attempt, polled every second or two, with the
/// default deadlines.
pub fn checks_only(dataset: &str, checks: Vec<Check>) -> TransformInput {
    TransformInput {
        dataset: dataset.into(),
        // Read by dbt stages only.
        project_dir: String::new(),
        profiles_dir: String::new(),
        target: "duckdb".into(),
        stages: Vec::new(),
        environment: Default::default(),
        max_attempts: 1,
        poll_initial_secs: 1,
        poll_max_secs: 2,
        checks,
        job_deadline_secs: lakegate_models::default_job_deadline_secs(),
        query_deadline_secs: lakegate_models::default_query_deadline_secs(),
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

/// Cancels the run and waits for it to end; it must end cancelled.
pub async fn cancel<W>(handle: &WorkflowHandle<Client, W>)
where
    W: HasWorkflowDefinition,
    W::Output: std::fmt::Debug,
{
    handle
        .cancel(WorkflowCancelOptions::default())
        .await
        .unwrap();
    let error = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").to_lowercase().contains("cancel"),
        "{error:#}"
    );
}

/// An ingest that waits for nothing but a person: promoted, awaiting review or rejected.
pub fn settled(s: &IngestStatus) -> bool {
    matches!(
        s.phase,
        IngestPhase::Promoted | IngestPhase::AwaitingReview | IngestPhase::Rejected
    )
}

/// How long a contract test waits for a file to settle (a validation, its index reads and the
/// moves, on a loaded machine).
pub const SETTLE_WAIT: Duration = Duration::from_secs(120);

/// Lands `body` at `key`, runs its ingest until it settles; its id and status.
pub async fn ingest_settled(env: &TestEnv, key: &str, body: &[u8]) -> (String, IngestStatus) {
    let id = ingest(env, key, body).await;
    let status = client::wait_for_status(&env.client, &id, SETTLE_WAIT, settled)
        .await
        .unwrap();
    (id, status)
}

/// The failed rules of a settled ingest.
pub fn failed_rules(status: &IngestStatus) -> Vec<RuleOutcome> {
    status
        .report
        .as_ref()
        .map(|r| r.rules.iter().filter(|o| !o.passed).cloned().collect())
        .unwrap_or_default()
}

/// Lands and ingests `body` at `key`, which must be promoted; the run's id and its report's
/// outcomes (warnings included).
pub async fn promoted(env: &TestEnv, key: &str, body: &[u8]) -> (String, Vec<RuleOutcome>) {
    let (id, status) = ingest_settled(env, key, body).await;
    assert_eq!(
        status.phase,
        IngestPhase::Promoted,
        "{key}: {:#?}",
        failed_rules(&status)
    );
    (id, status.report.map(|r| r.rules).unwrap_or_default())
}

/// Lands and ingests `body` at `key`, which must be quarantined failing exactly the rules
/// `rules` (by id, in report order); the run's id and the failed outcomes.
pub async fn quarantined(
    env: &TestEnv,
    key: &str,
    body: &[u8],
    rules: &[&str],
) -> (String, Vec<RuleOutcome>) {
    let (id, status) = ingest_settled(env, key, body).await;
    assert_eq!(
        status.phase,
        IngestPhase::AwaitingReview,
        "{key}: {:#?}",
        status.report.map(|r| r.rules)
    );
    let failed = failed_rules(&status);
    let ids: Vec<&str> = failed.iter().map(|o| o.rule.as_str()).collect();
    assert_eq!(ids, rules, "{key}: {failed:#?}");
    (id, failed)
}

/// A reviewer approves the quarantined run `id` through the `review` Update, which must
/// answer that the file was promoted.
pub async fn approve(env: &TestEnv, id: &str, reason: &str) {
    let answer = client::review(&env.client, id, &review(Decision::Approve, "dana", reason))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(answer, ReviewOutcome::Promoted { .. }),
        "{answer:?}"
    );
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

/// Waits until no process of the group `pgid` is alive (a job or query the workflow stopped).
pub async fn process_group_gone(pgid: i32, within: Duration) {
    let what = format!("process group {pgid} is gone");
    eventually(within, Duration::from_millis(200), &what, || async {
        (!lakegate_local::jobs::group_alive(pgid)).then_some(())
    })
    .await
}

/// Whether a pending activity of the workflow `id` has heartbeated: for `validate_and_promote`,
/// proof that the landing object was opened and its ETag taken (it beats first right after).
pub async fn activity_heartbeated(env: &TestEnv, id: &str) -> anyhow::Result<bool> {
    use temporalio_client::NamespacedClient;
    use temporalio_client::grpc::WorkflowService;
    use temporalio_client::tonic::IntoRequest;
    use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
    use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkflowExecutionRequest;
    let request = DescribeWorkflowExecutionRequest {
        namespace: env.client.namespace(),
        execution: Some(WorkflowExecution {
            workflow_id: id.to_owned(),
            run_id: String::new(),
        }),
    };
    let described = WorkflowService::describe_workflow_execution(
        &mut env.client.clone(),
        request.into_request(),
    )
    .await?
    .into_inner();
    Ok(described
        .pending_activities
        .iter()
        .any(|a| a.last_heartbeat_time.is_some()))
}
