//! Builds and runs a worker that serves every lakegate workflow and activity, on the backend the
//! configuration picks.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use lakegate_activities::ports::{Catalog, Crawler, JobRunner, ObjectStore, QueryEngine};
use lakegate_activities::{
    CrawlActivities, IngestActivities, NotifyActivities, TransformActivities,
};
use lakegate_aws::{
    AthenaEngine, AwsClients, AwsSettings, BatchRunner, GlueCatalog, GlueCrawler, S3Store,
};
use lakegate_local::{LocalCrawler, LocalJobRunner, LocalObjectStore, LocalQueryEngine};
use lakegate_workflows::{CrawlWorkflow, IngestFileWorkflow, TransformWorkflow};
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio_util::sync::CancellationToken;

use crate::LakeConfig;
use crate::client::TemporalIngestStarter;
use crate::config::Backend;

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
    /// The SQS client, on the AWS backend.
    pub sqs: Option<aws_sdk_sqs::Client>,
}

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
                sqs: None,
            })
        }
        Backend::Aws => {
            let settings = match &config.aws.aws_endpoint_url {
                Some(endpoint) if config.aws.aws_emulator => {
                    AwsSettings::emulator(endpoint.clone())
                }
                Some(endpoint) => AwsSettings {
                    endpoint_url: Some(endpoint.clone()),
                    ..AwsSettings::default()
                },
                None => AwsSettings::default(),
            };
            let clients = AwsClients::load(&settings).await;
            let mut athena =
                AthenaEngine::new(clients.athena.clone(), config.aws.athena_workgroup.clone());
            if let Some(output) = &config.aws.athena_output {
                athena = athena.with_output_location(output.clone());
            }
            Ok(Ports {
                store: Arc::new(S3Store::new(clients.s3.clone(), config.bucket.clone())),
                crawler: Arc::new(GlueCrawler::new(
                    clients.glue.clone(),
                    config.bucket.clone(),
                )),
                catalog: Arc::new(GlueCatalog::new(clients.glue.clone())),
                jobs: Arc::new(BatchRunner::new(
                    clients.batch.clone(),
                    clients.logs.clone(),
                    config.aws.batch_job_queue.clone(),
                    config.aws.batch_job_definition.clone(),
                )),
                query: Arc::new(athena),
                sqs: Some(clients.sqs.clone()),
            })
        }
    }
}

fn options(config: &LakeConfig, ports: &Ports) -> anyhow::Result<WorkerOptions> {
    let pipeline = config.pipeline_settings()?;
    Ok(WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<IngestFileWorkflow>()?
        .register_workflow::<CrawlWorkflow>()?
        .register_workflow::<TransformWorkflow>()?
        .register_activities(IngestActivities::new(
            ports.store.clone(),
            config.contracts.clone(),
        ))
        .register_activities(NotifyActivities::new(pipeline))
        .register_activities(CrawlActivities::new(
            ports.crawler.clone(),
            ports.catalog.clone(),
        ))
        .register_activities(TransformActivities::new(
            ports.jobs.clone(),
            ports.query.clone(),
        ))
        .build())
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
    let ports = ports(config).await?;
    let cancel = CancellationToken::new();
    let router = match (&ports.sqs, &config.aws.sqs_queue_url) {
        (Some(sqs), Some(queue_url)) => {
            let starter = Arc::new(TemporalIngestStarter {
                client: client.clone(),
                task_queue: config.task_queue.clone(),
            });
            Some(tokio::spawn(lakegate_aws::run_event_router(
                sqs.clone(),
                queue_url.clone(),
                starter,
                cancel.clone(),
            )))
        }
        _ => None,
    };
    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let mut worker =
        Worker::new(&runtime, client, options(config, &ports)?).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    let run = worker.run();
    futures::pin_mut!(run);
    let stop_router = cancel.clone();
    let shutdown = async move {
        shutdown.await;
        stop_router.cancel();
        stop();
        futures::future::pending::<()>().await
    };
    futures::pin_mut!(shutdown);
    let result = tokio::select! {
        result = &mut run => result.context("worker stopped"),
        () = &mut shutdown => Ok(()),
    };
    cancel.cancel();
    if let Some(router) = router {
        router
            .await
            .context("event router task")?
            .context("event router")?;
    }
    result
}
