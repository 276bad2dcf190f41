//! Putting a file into the local landing/ zone and starting its `IngestFileWorkflow`: the one
//! sequence behind `lakegate ingest`, the console's upload and the watched landing folder, so all
//! three give the same file version the same workflow id (content SHA-256 as the version, as the
//! local event sources use).

use std::future::Future;
use std::path::{Path, PathBuf};

use anyhow::Context;
use lakegate_models::{IngestInput, Zone};
use temporalio_client::Client;

use crate::LakeConfig;
use crate::client::{self, StartedIngest};

/// `landing/<source>/<dataset>/<name>`.
pub fn landing_key(source: &str, dataset: &str, name: &str) -> String {
    format!("{}{source}/{dataset}/{name}", Zone::Landing.prefix())
}

/// The input of the local file version `key` whose content hashes to `sha256`.
pub fn local_input(
    config: &LakeConfig,
    key: &str,
    sha256: &str,
    review_timeout_secs: u64,
) -> IngestInput {
    IngestInput {
        bucket: config.bucket.clone(),
        key: key.to_owned(),
        version: sha256.to_owned(),
        review_timeout_secs,
        crawl_later: false,
    }
}

/// Starts the workflow of `input` unless this file version already has one; `place` puts the
/// bytes at `input.key` first, and is skipped for a known version, so the same bytes sent twice
/// leave no second copy in landing/.
pub async fn place_and_start<F, Fut>(
    client: &Client,
    config: &LakeConfig,
    input: IngestInput,
    place: F,
) -> anyhow::Result<StartedIngest>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let id = lakegate_models::ingest_workflow_id(&input.bucket, &input.key, &input.version);
    // The same bytes under the same key were onboarded before, or are being: answer with that run
    // instead of leaving a second copy in landing/. A failed run is started again (the id reuse
    // policy allows it).
    if let Some(client::RunState::Completed | client::RunState::Running) =
        client::run_state(client, &id).await?
    {
        return Ok(StartedIngest::Duplicate(id));
    }
    place().await?;
    let summary = client::summary_for(&config.contracts, &input.key);
    client::start_ingest_summarised(client, &config.task_queue, input, summary).await
}

/// The local file behind a landing key.
pub fn local_path(config: &LakeConfig, key: &str) -> anyhow::Result<PathBuf> {
    crate::worker::local_store(config)
        .path_of(key)
        .with_context(|| "not a usable landing key".to_owned())
}

/// Hex SHA-256 of a local file.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    lakegate_local::content_sha256(path).with_context(|| format!("reading {}", path.display()))
}
