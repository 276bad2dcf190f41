//! `lakegate worker`: serve lakegate's workflows and activities until SIGINT or SIGTERM.

use std::process::ExitCode;

use lakegate::telemetry::TelemetryArgs;
use lakegate::{LakeConfig, client};

pub async fn run(config: &LakeConfig, telemetry: TelemetryArgs) -> anyhow::Result<ExitCode> {
    let shutdown = super::shutdown_signal();
    let telemetry = telemetry.start()?;
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
    tracing::info!(task_queue = %config.task_queue, "worker started");
    lakegate::worker::run_worker_with(client, config, &telemetry, shutdown).await?;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
