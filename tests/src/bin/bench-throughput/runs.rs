//! Starting workflows with a number of concurrent starters, timing each, and cleaning up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use lakegate::client;
use lakegate_activities::ports::StartOutcome;
use lakegate_activities::start::start_ingest;
use lakegate_models::names::search_attributes as sa;
use lakegate_models::{IngestInput, IngestPhase};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowGetResultOptions, WorkflowStartOptions,
    WorkflowTerminateOptions,
};

use crate::reference::ReferenceWorkflow;
use crate::{OPEN_DEADLINE, WORKFLOW_DEADLINE};

/// Latencies and wall time of one kind of workflow, over the halves it ran in.
#[derive(Default)]
pub(crate) struct Phase {
    pub(crate) latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
}

impl Phase {
    pub(crate) fn add(&mut self, (latencies, elapsed): (Vec<Duration>, Duration)) {
        self.latencies.extend(latencies);
        self.elapsed += elapsed;
    }

    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile.
    pub(crate) fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or_default()
    }
}

/// Runs `job` for every item with `concurrency` starters; returns each item's latency and the
/// wall time of the whole run.
pub(crate) async fn timed<T, F, Fut>(
    items: &[T],
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let items: Arc<Vec<T>> = Arc::new(items.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut starters = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(items.len()) {
        let (items, next, job) = (items.clone(), next.clone(), job.clone());
        starters.spawn(async move {
            let mut latencies = Vec::new();
            while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t0 = Instant::now();
                tokio::time::timeout(WORKFLOW_DEADLINE, job(item.clone()))
                    .await
                    .map_err(|_| anyhow::anyhow!("no result within {WORKFLOW_DEADLINE:?}"))??;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(items.len());
    while let Some(done) = starters.join_next().await {
        latencies.extend(done??);
    }
    Ok((latencies, started.elapsed()))
}

pub(crate) async fn run_reference(
    client: &Client,
    task_queue: &str,
    ids: &[String],
    activities: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let (client, task_queue) = (client.clone(), task_queue.to_owned());
    timed(ids, concurrency, move |id: String| {
        let (client, task_queue) = (client.clone(), task_queue.clone());
        let steps: Vec<String> = (0..activities).map(|i| format!("{id}/{i}")).collect();
        async move {
            let handle = client
                .start_workflow(
                    ReferenceWorkflow::run,
                    steps.clone(),
                    WorkflowStartOptions::new(task_queue, id.clone()).build(),
                )
                .await
                .with_context(|| format!("starting {id}"))?;
            let echoed = handle
                .get_result(WorkflowGetResultOptions::default())
                .await
                .with_context(|| format!("waiting for {id}"))?;
            ensure!(echoed == steps, "{id} returned {echoed:?}");
            Ok(())
        }
    })
    .await
}

pub(crate) async fn run_lakegate(
    client: &Client,
    task_queue: &str,
    inputs: &[IngestInput],
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let (client, task_queue) = (client.clone(), task_queue.to_owned());
    timed(inputs, concurrency, move |input: IngestInput| {
        let (client, task_queue) = (client.clone(), task_queue.clone());
        async move {
            let id = started_id(start_ingest(&client, &task_queue, input).await?)?;
            let outcome = client::wait_outcome(&client, &id).await?;
            ensure!(
                outcome.phase == IngestPhase::Promoted,
                "{id} ended {:?}, not promoted",
                outcome.phase
            );
            Ok(())
        }
    })
    .await
}

pub(crate) fn started_id(outcome: StartOutcome) -> anyhow::Result<String> {
    match outcome {
        StartOutcome::Started { workflow_id } => Ok(workflow_id),
        StartOutcome::Duplicate { workflow_id } => {
            bail!("{workflow_id} already existed: every benchmark file must be new")
        }
    }
}

pub(crate) async fn start_open(
    client: &Client,
    task_queue: &str,
    inputs: &[IngestInput],
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(inputs.len())));
    let (client, task_queue, sink) = (client.clone(), task_queue.to_owned(), ids.clone());
    timed(inputs, concurrency, move |mut input: IngestInput| {
        let (client, task_queue, sink) = (client.clone(), task_queue.clone(), sink.clone());
        // Far longer than the benchmark: the files stay open until terminated.
        input.review_timeout_secs = 7 * 24 * 3600;
        async move {
            let id = started_id(start_ingest(&client, &task_queue, input).await?)?;
            sink.lock().expect("not poisoned").push(id);
            Ok(())
        }
    })
    .await?;
    let ids = std::mem::take(&mut *ids.lock().expect("not poisoned"));
    Ok(ids)
}

/// Counts through visibility (one call, not a query per workflow, which would load the worker
/// being measured) until every open file waits for review.
pub(crate) async fn wait_all_awaiting_review(
    client: &Client,
    task_queue: &str,
    expected: usize,
) -> anyhow::Result<()> {
    let query = format!(
        "TaskQueue = '{task_queue}' AND {} = '{}'",
        sa::PHASE,
        IngestPhase::AwaitingReview.as_str()
    );
    let deadline = Instant::now() + OPEN_DEADLINE;
    loop {
        let count = client
            .count_workflows(query.clone(), WorkflowCountOptions::default())
            .await?
            .count();
        if count >= expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("only {count} of {expected} files reached awaiting_review in {OPEN_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub(crate) async fn terminate_all(
    client: &Client,
    ids: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let client = client.clone();
    timed(ids, concurrency, move |id: String| {
        let client = client.clone();
        async move {
            client
                .get_workflow_handle::<lakegate_workflows::IngestFileWorkflow>(id.clone())
                .terminate(
                    WorkflowTerminateOptions::builder()
                        .reason("bench-throughput cleanup")
                        .build(),
                )
                .await
                .with_context(|| format!("terminating {id}"))
        }
    })
    .await?;
    Ok(())
}
