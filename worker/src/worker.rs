//! Builds and runs a worker that serves every lakegate workflow and activity.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use lakegate_activities::{IngestActivities, NotifyActivities};
use lakegate_local::LocalObjectStore;
use lakegate_workflows::{CrawlWorkflow, IngestFileWorkflow, TransformWorkflow};
use temporalio_client::Client;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::LakeConfig;

/// The local backend's object store for `config`.
pub fn local_store(config: &LakeConfig) -> Arc<LocalObjectStore> {
    Arc::new(LocalObjectStore::new(
        config.bucket.clone(),
        config.lake_root(),
    ))
}

fn options(config: &LakeConfig) -> anyhow::Result<WorkerOptions> {
    let store = local_store(config);
    Ok(WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<IngestFileWorkflow>()?
        .register_workflow::<CrawlWorkflow>()?
        .register_workflow::<TransformWorkflow>()?
        .register_activities(IngestActivities::new(store, config.contracts.clone()))
        .register_activities(NotifyActivities::new(None))
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
