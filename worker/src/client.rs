//! Client-side calls: connect to Temporal and start, watch, query, review and signal ingest
//! workflows.

use std::time::{Duration, Instant};

use crate::codec::EncryptionCodec;
use anyhow::{Context, bail};
use lakegate_activities::ports::{IngestStarter, StartError, StartOutcome};
use lakegate_models::{
    CrawlStatus, IngestInput, IngestOutcome, IngestStatus, ReviewOutcome, ReviewSignal,
    TransformResult,
};
use lakegate_workflows::{CrawlWorkflow, IngestFileWorkflow, TransformWorkflow};
use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::errors::{WorkflowInteractionError, WorkflowUpdateError};
use temporalio_client::{
    Client, ClientOptions, Connection, NamespacedClient, Url, WorkflowDescribeOptions,
    WorkflowExecuteUpdateOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowQueryOptions, WorkflowSignalOptions,
};
use temporalio_common::data_converters::SerializationContextData;
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::{HasWorkflowDefinition, QueryDefinition};

/// Connects with Temporal's standard client configuration (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
/// TEMPORAL_API_KEY, TLS settings, temporal.toml profiles via TEMPORAL_PROFILE and
/// TEMPORAL_CONFIG_FILE). `address` overrides the configured address (the dev server's). With a
/// `codec`, every payload this client (and a worker built on it) sends is encrypted, and encrypted
/// payloads it receives are decrypted.
pub async fn connect(
    address: Option<&str>,
    codec: Option<&EncryptionCodec>,
) -> anyhow::Result<Client> {
    let (mut connection, mut options) =
        ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            // ConfigError is not Send, so it is rendered here rather than wrapped.
            .map_err(|e| anyhow::anyhow!("loading Temporal client configuration: {e}"))?;
    if let Some(address) = address {
        connection.target = Url::parse(&format!("http://{address}"))
            .with_context(|| format!("bad Temporal address {address}"))?;
    }
    if let Some(codec) = codec {
        options.data_converter = codec.data_converter();
    }
    let target = connection.target.to_string();
    let connection = Connection::connect(connection)
        .await
        .with_context(|| format!("connecting to Temporal at {target}"))?;
    Ok(Client::new(connection, options)?)
}

/// [`connect`], retried until `timeout`: a server that was just started takes a moment.
pub async fn connect_with_retry(
    address: Option<&str>,
    codec: Option<&EncryptionCodec>,
    timeout: Duration,
) -> anyhow::Result<Client> {
    let deadline = Instant::now() + timeout;
    loop {
        match connect(address, codec).await {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What [`start_ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartedIngest {
    Started(String),
    /// This file version already has a workflow; it was not started again.
    Duplicate(String),
}

impl StartedIngest {
    pub fn workflow_id(&self) -> &str {
        match self {
            StartedIngest::Started(id) | StartedIngest::Duplicate(id) => id,
        }
    }
}

/// Starts the file version's `IngestFileWorkflow` unless it already has one (see
/// [`lakegate_activities::start::start_ingest`] for the id and its policies).
pub async fn start_ingest(
    client: &Client,
    task_queue: &str,
    input: IngestInput,
) -> anyhow::Result<StartedIngest> {
    start_ingest_summarised(client, task_queue, input, None).await
}

/// [`start_ingest`] with the Web UI summary of the run.
pub async fn start_ingest_summarised(
    client: &Client,
    task_queue: &str,
    input: IngestInput,
    summary: Option<String>,
) -> anyhow::Result<StartedIngest> {
    match lakegate_activities::start::start_ingest_summarised(client, task_queue, input, summary)
        .await?
    {
        StartOutcome::Started { workflow_id } => Ok(StartedIngest::Started(workflow_id)),
        StartOutcome::Duplicate { workflow_id } => Ok(StartedIngest::Duplicate(workflow_id)),
    }
}

/// Waits for the workflow's result (for a duplicate: the first run's).
pub async fn wait_outcome(client: &Client, workflow_id: &str) -> anyhow::Result<IngestOutcome> {
    let handle = client.get_workflow_handle::<IngestFileWorkflow>(workflow_id.to_owned());
    handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .with_context(|| format!("waiting for {workflow_id}"))
}

pub async fn query_status(client: &Client, workflow_id: &str) -> anyhow::Result<IngestStatus> {
    query::<IngestFileWorkflow, _>(client, workflow_id, IngestFileWorkflow::get_status).await
}

/// The answer of `workflow_id`'s query `query` (one without input) of workflow type `W`.
async fn query<W, Q>(client: &Client, workflow_id: &str, query: Q) -> anyhow::Result<Q::Output>
where
    W: HasWorkflowDefinition,
    Q: QueryDefinition<Workflow = W::Run, Input = ()>,
{
    client
        .get_workflow_handle::<W>(workflow_id.to_owned())
        .query(query, (), WorkflowQueryOptions::default())
        .await
        .with_context(|| format!("querying {workflow_id}"))
}

/// Decides a quarantined file through the `review` Update and waits for what came of it. The
/// inner `Err` is the workflow's refusal (its validator's message: a field that does not read, a
/// file not in quarantine yet or already decided, another review first), for the reviewer; the
/// outer one is a failure to ask at all.
pub async fn review(
    client: &Client,
    workflow_id: &str,
    review: &ReviewSignal,
) -> anyhow::Result<Result<ReviewOutcome, String>> {
    review_raw(
        client,
        workflow_id,
        serde_json::to_value(review).context("encoding the review")?,
    )
    .await
}

/// [`review`] with any JSON (what a form or another SDK might send), for tests of the validator.
pub async fn review_raw(
    client: &Client,
    workflow_id: &str,
    review: serde_json::Value,
) -> anyhow::Result<Result<ReviewOutcome, String>> {
    let handle = client.get_workflow_handle::<IngestFileWorkflow>(workflow_id.to_owned());
    let sent = handle
        .execute_update(
            IngestFileWorkflow::review_update,
            review,
            WorkflowExecuteUpdateOptions::default(),
        )
        .await;
    match sent {
        Ok(outcome) => Ok(Ok(outcome)),
        Err(WorkflowUpdateError::Failed(failure)) => {
            Ok(Err(failure_message(client, *failure).await))
        }
        // Updates reach running workflows only; a settled file says how it was decided.
        Err(WorkflowUpdateError::NotFound(_)) if workflow_exists(client, workflow_id).await? => {
            let status = query_status(client, workflow_id).await?;
            Ok(Err(format!(
                "already decided: the file is {} and its run has ended",
                status.phase.as_str()
            )))
        }
        Err(WorkflowUpdateError::NotFound(_)) => bail!("no workflow {workflow_id}"),
        Err(e) => Err(e).with_context(|| format!("reviewing {workflow_id}")),
    }
}

/// The message of a failure the workflow sent back. With the payload codec on, the worker moves
/// messages into the failure's encrypted attributes ("Encoded failure" on the wire); they are
/// decrypted here.
async fn failure_message(client: &Client, mut failure: Failure) -> String {
    let converter = client.data_converter();
    let context = SerializationContextData::Workflow(
        temporalio_common::data_converters::WorkflowSerializationContext::new(),
    );
    if temporalio_common::payload_visitor::decode_payloads(
        &mut failure,
        converter.codec(),
        &context,
    )
    .await
    .is_ok()
        && let Some(attributes) = &failure.encoded_attributes
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&attributes.data)
        && let Some(message) = value.get("message").and_then(|m| m.as_str())
    {
        return message.to_owned();
    }
    failure.message
}

pub async fn send_review(
    client: &Client,
    workflow_id: &str,
    review: ReviewSignal,
) -> anyhow::Result<()> {
    let handle = client.get_workflow_handle::<IngestFileWorkflow>(workflow_id.to_owned());
    handle
        .signal(
            IngestFileWorkflow::review,
            // The handler reads the signal raw (see `IngestFileWorkflow::review`); the bytes
            // sent are the same JSON as before.
            serde_json::to_value(review).context("encoding the review")?,
            WorkflowSignalOptions::default(),
        )
        .await
        .with_context(|| format!("signalling {workflow_id}"))
}

/// Polls the status query until `done` holds, or fails at the deadline.
pub async fn wait_for_status(
    client: &Client,
    workflow_id: &str,
    timeout: Duration,
    mut done: impl FnMut(&IngestStatus) -> bool,
) -> anyhow::Result<IngestStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = query_status(client, workflow_id).await;
        if let Ok(status) = &last
            && done(status)
        {
            return Ok(status.clone());
        }
        if Instant::now() >= deadline {
            bail!(
                "{workflow_id} did not reach the expected state within {timeout:?}; last: {last:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Temporal implementation of the [`IngestStarter`] port, for event sources. Runs it starts
/// are summarised in the Web UI by the dataset and table the contracts in `contracts` give.
pub struct TemporalIngestStarter {
    pub client: Client,
    pub task_queue: String,
    pub contracts: std::path::PathBuf,
}

#[async_trait::async_trait]
impl IngestStarter for TemporalIngestStarter {
    async fn start_ingest(&self, input: IngestInput) -> Result<StartOutcome, StartError> {
        let summary = summary_for(&self.contracts, &input.key);
        lakegate_activities::start::start_ingest_summarised(
            &self.client,
            &self.task_queue,
            input,
            summary,
        )
        .await
    }
}

/// The Web UI summary of the ingest of `key`: its contract's dataset and table, if one claims it.
pub fn summary_for(contracts: &std::path::Path, key: &str) -> Option<String> {
    let set = lakegate_validate::ContractSet::load_dir(contracts).ok()?;
    lakegate_activities::start::ingest_summary_for(&set, key)
}

/// True when a workflow with this id exists (open or closed).
pub async fn workflow_exists(client: &Client, workflow_id: &str) -> anyhow::Result<bool> {
    let handle = client.get_workflow_handle::<IngestFileWorkflow>(workflow_id.to_owned());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(_) => Ok(true),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("describing {workflow_id}")),
    }
}

/// How the latest run of a workflow id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Completed,
    /// Failed, timed out, terminated or cancelled: the id reuse policy lets a new run start.
    Failed,
}

/// The latest run's state; `None` when the id never ran.
pub async fn run_state(client: &Client, workflow_id: &str) -> anyhow::Result<Option<RunState>> {
    let handle = client.get_workflow_handle::<IngestFileWorkflow>(workflow_id.to_owned());
    match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(description) => Ok(Some(match description.status() {
            WorkflowExecutionStatus::Running => RunState::Running,
            WorkflowExecutionStatus::Completed => RunState::Completed,
            _ => RunState::Failed,
        })),
        Err(WorkflowInteractionError::NotFound(_)) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("describing {workflow_id}")),
    }
}

/// The `get_status` query of a dataset's crawl workflow.
pub async fn crawl_status(client: &Client, crawler: &str) -> anyhow::Result<CrawlStatus> {
    let id = lakegate_models::names::crawl_workflow_id(crawler);
    query::<CrawlWorkflow, _>(client, &id, CrawlWorkflow::get_status).await
}

/// The `get_status` query of a transform run (works on closed runs too).
pub async fn transform_status(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<TransformResult> {
    query::<TransformWorkflow, _>(client, workflow_id, TransformWorkflow::get_status).await
}

/// Starts (or finds) the backfill of `input.prefix`; one backfill per prefix at a time.
pub async fn start_backfill(
    client: &Client,
    task_queue: &str,
    input: lakegate_models::BackfillInput,
) -> anyhow::Result<String> {
    use temporalio_client::errors::WorkflowStartError;
    let id = format!("backfill-{}", lakegate_models::short_hash(&input.prefix));
    let options = temporalio_client::WorkflowStartOptions::new(task_queue.to_owned(), id.clone())
        .id_conflict_policy(temporalio_client::WorkflowIdConflictPolicy::UseExisting)
        .static_summary(backfill_summary(&input.prefix))
        .build();
    match client
        .start_workflow(
            lakegate_workflows::OnboardDatasetWorkflow::run,
            input.into(),
            options,
        )
        .await
    {
        Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(id),
        Err(e) => Err(e).with_context(|| format!("starting {id}")),
    }
}

/// The Web UI summary of a backfill: the dataset segment of `landing/<source>/<dataset>/...`
/// when the prefix reaches past it (so it is a folder, never a file name), else no name at all.
fn backfill_summary(prefix: &str) -> String {
    let segments: Vec<&str> = prefix.split('/').collect();
    match segments.as_slice() {
        ["landing", _, dataset, _, ..] if !dataset.is_empty() => {
            format!("Backfill dataset {dataset}: onboard every file under its landing prefix")
        }
        _ => "Backfill: onboard every file under a landing prefix".to_owned(),
    }
}

pub async fn backfill_progress(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<lakegate_models::BackfillProgress> {
    use lakegate_workflows::OnboardDatasetWorkflow;
    query::<OnboardDatasetWorkflow, _>(client, workflow_id, OnboardDatasetWorkflow::get_progress)
        .await
}
