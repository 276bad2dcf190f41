//! The worker process: this binary again, serving lakegate's workflows and the reference.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use lakegate::LakeConfig;
use lakegate::client;
use lakegate::config::AwsConfig;
use lakegate_tests::lake_config;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

use crate::reference::{ReferenceActivities, ReferenceWorkflow, reference_queue};

/// lakegate's worker as `lakegate worker` runs it (multi-threaded runtime, `run_worker` on the main
/// task, default worker options) and the reference worker beside it, until stdin closes: the
/// benchmark closes it to stop us, and a benchmark that dies closes it too.
pub(crate) async fn serve(
    address: String,
    task_queue: String,
    data_dir: PathBuf,
    contracts: PathBuf,
) -> anyhow::Result<()> {
    let mut config = lake_config(&data_dir, &contracts, None, AwsConfig::default());
    config.task_queue = task_queue;
    let client = client::connect_with_retry(Some(&address), None, Duration::from_secs(60)).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // A plain thread: tokio's stdin needs a feature nothing else uses.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut reference = Worker::new(
        &runtime,
        client.clone(),
        WorkerOptions::new(reference_queue(&config.task_queue))
            .register_workflow::<ReferenceWorkflow>()?
            .register_activities(ReferenceActivities)
            .build(),
    )?;
    let stop_reference = reference.shutdown_handle();
    let reference_stopped = stopped(stop_rx.clone());
    // Either worker failing ends the process: the benchmark then sees it gone, not a hang.
    tokio::try_join!(
        async {
            lakegate::worker::run_worker(client, &config, stopped(stop_rx))
                .await
                .context("lakegate worker")
        },
        async {
            let (result, ()) = futures::join!(reference.run(), async {
                reference_stopped.await;
                stop_reference();
            });
            result.context("reference worker")
        },
    )?;
    Ok(())
}

/// The worker process, stopped (stdin closed, then killed after a grace period) when dropped.
pub(crate) struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub(crate) fn start(config: &LakeConfig, address: &str) -> anyhow::Result<Self> {
        let log = std::fs::File::create(config.data_dir.join("worker.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("worker")
            .args(["--address", address, "--task-queue", &config.task_queue])
            .arg("--data-dir")
            .arg(&config.data_dir)
            .arg("--contracts")
            .arg(&config.contracts)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting the worker process")?;
        Ok(Self { child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        lakegate::dev_server::wait_or_kill(&mut self.child, Duration::from_secs(30));
    }
}
