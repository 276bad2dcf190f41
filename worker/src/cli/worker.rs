//! `lakegate worker`: serve lakegate's workflows and activities until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::bail;
use lakegate::config::Backend;
use lakegate::telemetry::TelemetryArgs;
use lakegate::{LakeConfig, client};
use lakegate_models::DEFAULT_REVIEW_TIMEOUT_SECS;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Local backend: start the workflow of every file dropped into landing/ (rsync, SFTP, cp)
    /// once its size holds still, under the id an event would use.
    #[arg(long)]
    pub watch_landing: bool,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = super::shutdown_signal();
    if args.watch_landing && config.aws.backend != Backend::Local {
        bail!(
            "--watch-landing watches the local backend's folder; on AWS, S3 events start ingests"
        );
    }
    let telemetry = args.telemetry.start()?;
    let codec = config.codec()?;
    if codec.is_none() {
        tracing::warn!(
            "no payload keys configured: payloads go to Temporal unencrypted (see --codec-key-file)"
        );
    }
    let client = client::connect(None, codec.as_ref()).await?;
    if let Some(addr) = telemetry.metrics_addr() {
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
    }
    let watch = args
        .watch_landing
        .then(|| lakegate::watch::landing_watcher(config, DEFAULT_REVIEW_TIMEOUT_SECS));
    tracing::info!(task_queue = %config.task_queue, watch_landing = args.watch_landing, "worker started");
    lakegate::worker::run_worker_watching(client, config, &telemetry, watch, shutdown).await?;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
