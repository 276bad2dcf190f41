//! Builds and runs a worker that serves every lakegate workflow and activity, on the backend the
//! configuration picks.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use lakegate_activities::ports::{
    Catalog, Crawler, IngestStarter, JobRunner, ObjectStore, QueryEngine,
};
use lakegate_activities::{
    AlertActivities, CrawlActivities, IngestActivities, NotifyActivities, RetractActivities,
    SweepActivities, TransformActivities,
};
use lakegate_local::{LocalCrawler, LocalJobRunner, LocalObjectStore, LocalQueryEngine};
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::LakeConfig;
use crate::client::TemporalIngestStarter;
use crate::config::Backend;
use crate::telemetry::Telemetry;

/// The local backend's object store for `config`.
pub fn local_store(config: &LakeConfig) -> Arc<LocalObjectStore> {
    // Same folder as LocalConfig::lake_dir: the crawler reads what the store writes.
    Arc::new(LocalObjectStore::new(
        config.bucket.clone(),
        config.lake_root(),
    ))
}

/// The ports of the configured backend, built once per process.
pub struct Ports {
    pub store: Arc<dyn ObjectStore>,
    pub crawler: Arc<dyn Crawler>,
    pub catalog: Arc<dyn Catalog>,
    pub jobs: Arc<dyn JobRunner>,
    pub query: Arc<dyn QueryEngine>,
    /// The backend's event source (the SQS router on AWS), if one is configured.
    pub events: Option<EventSource>,
}

/// Starts an event source that hands new files to the starter until cancelled.
pub type EventSource = Box<
    dyn FnOnce(Arc<dyn IngestStarter>, CancellationToken) -> JoinHandle<anyhow::Result<()>> + Send,
>;

pub async fn ports(config: &LakeConfig) -> anyhow::Result<Ports> {
    match config.aws.backend {
        Backend::Local => {
            let local = config.local()?;
            let crawler = Arc::new(LocalCrawler::new(&local));
            Ok(Ports {
                store: local_store(config),
                crawler: crawler.clone(),
                catalog: crawler,
                jobs: Arc::new(LocalJobRunner::new(&local)),
                query: Arc::new(LocalQueryEngine::new(&local)),
                events: None,
            })
        }
        #[cfg(feature = "aws")]
        Backend::Aws => crate::aws_backend::ports(config).await,
        #[cfg(not(feature = "aws"))]
        Backend::Aws => {
            anyhow::bail!("this lakegate was built without the AWS backend (cargo feature `aws`)")
        }
    }
}

fn options(
    config: &LakeConfig,
    ports: &Ports,
    telemetry: &Telemetry,
) -> anyhow::Result<WorkerOptions> {
    let pipeline = config.pipeline_settings()?;
    let metrics = telemetry.metrics();
    let alerts = pipeline
        .as_ref()
        .map(|p| p.alerts.clone())
        .unwrap_or_default();
    let crawler_prefix = pipeline
        .as_ref()
        .map(|p| p.crawler_prefix.clone())
        .unwrap_or_default();
    Ok(
        register_all_workflows!(WorkerOptions::new(config.task_queue.clone()))
            .register_activities(RetractActivities::new(ports.store.clone()))
            .register_activities(
                IngestActivities::new(ports.store.clone(), config.contracts.clone())
                    .with_metrics(metrics.clone())
                    .with_pipeline(pipeline.clone()),
            )
            .register_activities(NotifyActivities::new(pipeline))
            .register_activities(AlertActivities::new(
                alerts,
                Arc::new(crate::webhook::HttpWebhooks::new()?),
            ))
            .register_activities(
                SweepActivities::new(ports.store.clone()).with_contracts(config.contracts.clone()),
            )
            .register_activities(
                CrawlActivities::new(ports.crawler.clone(), ports.catalog.clone())
                    .with_contracts(config.contracts.clone())
                    .with_metrics(metrics.clone(), &crawler_prefix)
                    .with_logs(ports.store.clone()),
            )
            .register_activities(
                TransformActivities::new(ports.jobs.clone(), ports.query.clone())
                    .with_metrics(metrics)
                    .with_logs(ports.store.clone()),
            )
            .build(),
    )
}

/// Runs a worker until `shutdown` resolves, then lets in-flight tasks finish. With an SQS queue
/// configured (AWS backend), the event router runs beside it and stops with it.
///
/// The SDK's worker is not `Send` (workflows run on a `LocalSet`), so this future must be awaited
/// on the task that created it, or on a thread of its own.
pub async fn run_worker(
    client: Client,
    config: &LakeConfig,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    run_worker_with(client, config, &Telemetry::off(), shutdown).await
}

/// [`run_worker`] with the SDK's and lakegate's metrics going to `telemetry`'s exporter.
pub async fn run_worker_with(
    client: Client,
    config: &LakeConfig,
    telemetry: &Telemetry,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    run_worker_watching(client, config, telemetry, None, shutdown).await
}

/// [`run_worker_with`], plus `watch` (the watched landing folder) beside the backend's own
/// event source, stopping with the worker.
pub async fn run_worker_watching(
    client: Client,
    config: &LakeConfig,
    telemetry: &Telemetry,
    watch: Option<EventSource>,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    let mut ports = ports(config).await?;
    let cancel = CancellationToken::new();
    let starter: Arc<dyn IngestStarter> = Arc::new(TemporalIngestStarter {
        client: client.clone(),
        task_queue: config.task_queue.clone(),
        contracts: config.contracts.clone(),
    });
    let events: Vec<_> = ports
        .events
        .take()
        .into_iter()
        .chain(watch)
        .map(|start| start(starter.clone(), cancel.clone()))
        .collect();
    let runtime = Runtime::from_current_tokio(telemetry.runtime_options()?)
        .context("starting the Temporal runtime")?;
    let mut worker = Worker::new(&runtime, client, options(config, &ports, telemetry)?)
        .context("creating the worker")?;
    let stop = worker.shutdown_handle();
    let run = worker.run();
    futures::pin_mut!(run);
    let stop_events = cancel.clone();
    let shutdown = async move {
        shutdown.await;
        stop_events.cancel();
        stop();
        futures::future::pending::<()>().await
    };
    futures::pin_mut!(shutdown);
    let result = tokio::select! {
        result = &mut run => result.context("worker stopped"),
        () = &mut shutdown => Ok(()),
    };
    cancel.cancel();
    for events in events {
        events
            .await
            .context("event source task")?
            .context("event source")?;
    }
    result
}
