//! The watched landing folder (local backend): a file that another program drops into
//! landing/ (rsync, an SFTP server's upload directory, `cp`) gets its `IngestFileWorkflow` once
//! it is complete, with no CLI call. Complete means its size and modification time stayed the
//! same for the settle period; names starting with a dot (rsync's and our own temporary files)
//! are left alone until renamed. The version is the content SHA-256, so the id is the one
//! `lakegate ingest` and the console give the same bytes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakegate_activities::ports::{IngestStarter, ObjectStore};
use lakegate_models::{Zone, short_hash};
use tokio_util::sync::CancellationToken;

use crate::LakeConfig;
use crate::landing;
use crate::worker::EventSource;

/// How often landing/ is listed.
pub const POLL: Duration = Duration::from_millis(500);
/// How long a file's size and modification time must hold still.
pub const SETTLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    size: u64,
    modified: Option<i64>,
}

struct Tracked {
    seen: Seen,
    since: Instant,
    /// This exact (size, mtime) was handed to Temporal already.
    started: bool,
}

/// The event source for `config`'s local landing folder.
pub fn landing_watcher(config: &LakeConfig, review_timeout_secs: u64) -> EventSource {
    let config = config.clone();
    Box::new(
        move |starter: Arc<dyn IngestStarter>, cancel: CancellationToken| {
            tokio::spawn(async move {
                let store = crate::worker::local_store(&config);
                let mut tracked: HashMap<String, Tracked> = HashMap::new();
                loop {
                    if let Err(e) = poll(
                        &config,
                        &store,
                        &*starter,
                        &mut tracked,
                        review_timeout_secs,
                    )
                    .await
                    {
                        tracing::warn!("watching landing/: {e:#}");
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Ok(()),
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            })
        },
    )
}

async fn poll(
    config: &LakeConfig,
    store: &lakegate_local::LocalObjectStore,
    starter: &dyn IngestStarter,
    tracked: &mut HashMap<String, Tracked>,
    review_timeout_secs: u64,
) -> anyhow::Result<()> {
    let objects = store.list(Zone::Landing.prefix()).await?;
    let now = Instant::now();
    let mut present = std::collections::HashSet::new();
    for object in objects {
        if object.key.split('/').any(|s| s.starts_with('.')) {
            continue;
        }
        present.insert(object.key.clone());
        let seen = Seen {
            size: object.size,
            modified: object.last_modified,
        };
        let entry = tracked.entry(object.key.clone()).or_insert(Tracked {
            seen,
            since: now,
            started: false,
        });
        if entry.seen != seen {
            // Still being written (or replaced): wait for it to settle again.
            *entry = Tracked {
                seen,
                since: now,
                started: false,
            };
            continue;
        }
        if entry.started || now.duration_since(entry.since) < SETTLE {
            continue;
        }
        let path = store.path_of(&object.key)?;
        let sha256 = match tokio::task::spawn_blocking(move || landing::sha256_file(&path)).await? {
            Ok(sha256) => sha256,
            // Moved away by its workflow between the listing and now.
            Err(_) => continue,
        };
        let input = landing::local_input(config, &object.key, &sha256, review_timeout_secs);
        match starter.start_ingest(input).await {
            Ok(outcome) => {
                entry.started = true;
                tracing::info!(key_tag = %short_hash(&object.key), ?outcome, "landed file handed to its workflow");
            }
            Err(e) => tracing::warn!(key_tag = %short_hash(&object.key), "{e}"),
        }
    }
    tracked.retain(|key, _| present.contains(key));
    Ok(())
}
