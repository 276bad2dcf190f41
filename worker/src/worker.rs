//! Builds and runs a worker that serves every lakegate workflow and activity.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use lakegate_activities::{
    CrawlActivities, IngestActivities, NotifyActivities, TransformActivities,
};
use lakegate_local::{LocalCrawler, LocalJobRunner, LocalObjectStore, LocalQueryEngine};
use lakegate_workflows::{CrawlWorkflow, IngestFileWorkflow, TransformWorkflow};
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::LakeConfig;

/// The local backend's object store for `config`.
pub fn local_store(config: &LakeConfig) -> Arc<LocalObjectStore> {
    // Same folder as LocalConfig::lake_dir: the crawler reads what the store writes.
    Arc::new(LocalObjectStore::new(
        config.bucket.clone(),
        config.lake_root(),
    ))
}

fn options(config: &LakeConfig) -> anyhow::Result<WorkerOptions> {
    let store = local_store(config);
    let local = config.local()?;
    let crawler = Arc::new(LocalCrawler::new(&local));
    let jobs = Arc::new(LocalJobRunner::new(&local));
    let query = Arc::new(LocalQueryEngine::new(&local));
    let pipeline = config.pipeline_settings()?;
    Ok(WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<IngestFileWorkflow>()?
        .register_workflow::<CrawlWorkflow>()?
        .register_workflow::<TransformWorkflow>()?
        .register_activities(IngestActivities::new(store, config.contracts.clone()))
        .register_activities(NotifyActivities::new(pipeline))
        .register_activities(CrawlActivities::new(crawler.clone(), crawler))
        .register_activities(TransformActivities::new(jobs, query))
        .build())
}

/// Runs a worker until `shutdown` resolves, then lets in-flight tasks finish.
///
/// The SDK's worker is not `Send` (workflows run on a `LocalSet`), so this future must be awaited
/// on the task that created it, or on a thread of its own.
pub async fn run_worker(
    client: Client,
    config: &LakeConfig,
    shutdown: impl Future<Output = ()> + 'static,
) -> anyhow::Result<()> {
    let runtime =
        Runtime::from_current_tokio(Default::default()).context("starting the Temporal runtime")?;
    let mut worker =
        Worker::new(&runtime, client, options(config)?).context("creating the worker")?;
    let stop = worker.shutdown_handle();
    let run = worker.run();
    futures::pin_mut!(run);
    let shutdown = async move {
        shutdown.await;
        stop();
        futures::future::pending::<()>().await
    };
    futures::pin_mut!(shutdown);
    tokio::select! {
        result = &mut run => result.context("worker stopped")?,
        () = &mut shutdown => {}
    }
    Ok(())
}
