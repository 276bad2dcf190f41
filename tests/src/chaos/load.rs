//! The load a run puts on the system while the chaos goes on: `lakegate ingest` over every file,
//! and a reviewer deciding the files that wait for one.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::TryStreamExt;
use lakegate::client;
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{Decision, IngestPhase, ReviewSignal};
use temporalio_client::{Client, WorkflowListOptions};

use super::process::{LakegateEnv, log_to};
use super::{DATASET, SOURCE};

/// Runs `lakegate ingest --no-wait` over the files, a chunk per invocation, retrying a chunk
/// whose invocation failed (the server may be restarting): a second `lakegate ingest` of the same
/// bytes answers with the first run instead of starting another, so a retry is safe.
pub(super) async fn start_all(
    env: LakegateEnv,
    files: Vec<PathBuf>,
    chunk: usize,
    review_timeout_secs: u64,
    logs: PathBuf,
    deadline: Instant,
) -> anyhow::Result<(usize, usize)> {
    let (mut invocations, mut retries) = (0, 0);
    for (n, chunk) in files.chunks(chunk.max(1)).enumerate() {
        loop {
            let log = logs.join(format!("ingest-{n:03}-{invocations:03}.log"));
            let (stdout, stderr) = log_to(&log)?;
            let mut command = tokio::process::Command::from(env.command());
            command
                .args([
                    "ingest",
                    "--no-wait",
                    "--dataset",
                    DATASET,
                    "--source",
                    SOURCE,
                ])
                .args(["--review-timeout-secs", &review_timeout_secs.to_string()])
                .args(chunk)
                .stdout(stdout)
                .stderr(stderr)
                .kill_on_drop(true);
            invocations += 1;
            let status = tokio::time::timeout(Duration::from_secs(300), command.status()).await;
            if matches!(status, Ok(Ok(s)) if s.success()) {
                break;
            }
            if Instant::now() >= deadline {
                bail!("lakegate ingest kept failing; last log {}", log.display());
            }
            retries += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok((invocations, retries))
}

/// Plays the reviewer: approves or rejects each file given a decision as soon as the UI's search
/// (`LakegatePhase="awaiting_review"`) lists it, with the same signal `lakegate review` sends.
pub(super) async fn review_all(
    client: Client,
    decisions: HashMap<String, Decision>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) {
    let query = format!(
        "WorkflowType='{}' AND {}='{}'",
        names::INGEST_FILE_WORKFLOW,
        sa::PHASE,
        IngestPhase::AwaitingReview.as_str()
    );
    let mut done = HashSet::new();
    while !stop.load(Ordering::Relaxed) && done.len() < decisions.len() {
        // Errors are expected while the server restarts: the next round tries again.
        if let Ok(waiting) = client
            .list_workflows(query.clone(), WorkflowListOptions::default())
            .map_ok(|w| w.id().to_owned())
            .try_collect::<Vec<_>>()
            .await
        {
            for id in waiting {
                let Some(decision) = decisions.get(&id) else {
                    continue;
                };
                if done.contains(&id) {
                    continue;
                }
                let signal = ReviewSignal {
                    decision: *decision,
                    reviewer: "chaos".into(),
                    reason: "chaos run".into(),
                };
                if client::send_review(&client, &id, signal).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                    done.insert(id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
