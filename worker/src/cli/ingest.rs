//! `lakegate ingest`: place files in landing/ and start (then await) their IngestFileWorkflows.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use lakegate::client::{self, RunState, StartedIngest};
use lakegate::config::Backend;
use lakegate::{LakeConfig, landing, worker};
use lakegate_models::{DEFAULT_REVIEW_TIMEOUT_SECS, IngestInput, IngestPhase};

use super::{EXIT_AWAITING_REVIEW, EXIT_FAILED, dev_address, outln};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to onboard.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Dataset the files belong to: they land at landing/<source>/<dataset>/<file name>.
    #[arg(long)]
    dataset: String,
    /// Sending system, the first folder under landing/.
    #[arg(long, default_value = "cli")]
    source: String,
    /// Print the workflow ids and return without waiting for outcomes.
    #[arg(long)]
    no_wait: bool,
    /// How long a quarantined file waits for review before it is rejected (seconds).
    #[arg(long, default_value_t = DEFAULT_REVIEW_TIMEOUT_SECS)]
    review_timeout_secs: u64,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        files,
        dataset,
        source,
        no_wait,
        review_timeout_secs,
    } = args;
    // Before anything starts: a typo in the last name must not leave the others half-onboarded.
    for file in &files {
        if !file.is_file() {
            bail!("file not found: {}", file.display());
        }
    }
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let mut started = Vec::new();
    let aws_store = match config.aws.backend {
        Backend::Local => None,
        Backend::Aws => Some(worker::ports(config).await?.store),
    };
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", file.display()))?;
        let key = landing::landing_key(&source, &dataset, name);
        let outcome = match &aws_store {
            None => {
                let input = landing::local_input(
                    config,
                    &key,
                    &landing::sha256_file(file)?,
                    review_timeout_secs,
                );
                let id =
                    lakegate_models::ingest_workflow_id(&input.bucket, &input.key, &input.version);
                if client::run_state(&client, &id).await? == Some(RunState::Failed) {
                    outln!("{name}: the earlier run of {id} failed; starting it again")?;
                }
                // The user's own terminal: the key is named in full, not by tag.
                landing::place_and_start(&client, config, input, || async {
                    worker::local_store(config)
                        .put_file(&key, file)
                        .await
                        .with_context(|| format!("cannot place {} at {key:?}", file.display()))?;
                    Ok(())
                })
                .await?
            }
            Some(store) => {
                // Versioned like the S3 event the upload also causes (version id, else ETag), so
                // the event router's start and this one are the same workflow.
                let body =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let meta = store
                    .put(&key, body.into())
                    .await
                    .with_context(|| format!("cannot place {} at {key:?}", file.display()))?;
                let version = meta.version.or(meta.etag).unwrap_or_default();
                let input = IngestInput {
                    bucket: config.bucket.clone(),
                    key: key.clone(),
                    version,
                    review_timeout_secs,
                    crawl_later: false,
                };
                let summary = client::summary_for(&config.contracts, &input.key);
                client::start_ingest_summarised(&client, &config.task_queue, input, summary).await?
            }
        };
        match &outcome {
            StartedIngest::Started(id) => outln!("{name}: started {id}")?,
            // A duplicate is a run that is open or completed (the reuse policy restarts failed
            // ones), but it may have ended since: only a completed run counts as onboarded.
            StartedIngest::Duplicate(id) => match client::run_state(&client, id).await? {
                Some(RunState::Running) => outln!("{name}: already being onboarded as {id}")?,
                Some(RunState::Completed) => outln!("{name}: already onboarded as {id}")?,
                Some(RunState::Failed) | None => {
                    outln!("{name}: the run {id} ended without onboarding it (see the Web UI)")?
                }
            },
        }
        started.push((name.to_owned(), outcome));
    }
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    outln!()?;
    let mut quarantined = Vec::new();
    let mut failed = false;
    for (name, outcome) in &started {
        let id = outcome.workflow_id();
        match settle(&client, id).await? {
            Settled::Failed => {
                outln!("{name}: FAILED, the workflow {id} did not finish (see the Web UI)")?;
                failed = true;
            }
            Settled::Status(status) => match status.phase {
                IngestPhase::Promoted => outln!("{name}: onboarded to {}", status.key)?,
                IngestPhase::Rejected => {
                    outln!("{name}: rejected, now at {}", status.key)?;
                    failed = true;
                }
                _ => {
                    outln!(
                        "{name}: QUARANTINED ({}), waiting for review",
                        status.quarantine_reason.as_deref().unwrap_or("see status")
                    )?;
                    quarantined.push(id.to_owned());
                }
            },
        }
    }
    if !quarantined.is_empty() {
        outln!("\nTo see why and decide (or use the signal form in the Temporal Web UI):")?;
        for id in &quarantined {
            outln!("  lakegate status {id}")?;
            outln!("  lakegate review {id} approve --reviewer <you> --reason \"<why>\"")?;
            outln!("  lakegate review {id} reject --reviewer <you> --reason \"<why>\"")?;
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILED)
    } else if !quarantined.is_empty() {
        ExitCode::from(EXIT_AWAITING_REVIEW)
    } else {
        ExitCode::SUCCESS
    })
}

/// Where an ingest workflow came to rest.
enum Settled {
    /// Promoted, rejected or waiting for review.
    Status(Box<lakegate_models::IngestStatus>),
    /// The run failed, timed out or was terminated or cancelled before it settled.
    Failed,
}

/// Waits (up to 10 minutes) until the workflow is promoted, rejected or waiting for review, or
/// its run has ended without settling.
async fn settle(client: &temporalio_client::Client, id: &str) -> anyhow::Result<Settled> {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        if client::run_state(client, id).await? == Some(RunState::Failed) {
            return Ok(Settled::Failed);
        }
        if let Ok(status) = client::query_status(client, id).await
            && matches!(
                status.phase,
                IngestPhase::Promoted | IngestPhase::Rejected | IngestPhase::AwaitingReview
            )
        {
            return Ok(Settled::Status(Box::new(status)));
        }
        if std::time::Instant::now() >= deadline {
            bail!("{id} did not settle within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
