//! Activities of `IngestFileWorkflow`: resolve a file's contract, validate it, move it between
//! zones.

use std::path::PathBuf;
use std::sync::Arc;

use lakegate_models::{ContractMatch, ValidationReport, names};
use lakegate_validate::{ContractSet, ValidateOptions, validate_with};
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio_util::io::SyncIoBridge;

use crate::metrics::{FileOutcome, Metrics, NoMetrics, UNMATCHED_DATASET};
use crate::ports::{KeyTag, ObjectMeta, ObjectStore, PortError, StoreError};

/// How often a long activity heartbeats; the workflows' heartbeat timeout is a few of these.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateRequest {
    pub key: String,
    pub contract: ContractMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRequest {
    pub from: String,
    pub to: String,
    /// The contract's dataset, for metrics only (`None` when no contract claims the file).
    /// Optional so histories recorded before it replay and their pending moves still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Move only while `from` has this ETag (the one validation read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_etag: Option<String>,
}

/// What a move did. A taken destination is an answer, not a failure: the workflow picks another
/// name, and nothing is overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveResult {
    Moved(ObjectMeta),
    DestinationTaken,
    /// `if_etag` no longer matches: the source was replaced after it was read. Nothing moved.
    SourceChanged,
}

/// The ingest activities, bound to one object store and one contracts directory.
pub struct IngestActivities {
    store: Arc<dyn ObjectStore>,
    contracts_dir: PathBuf,
    metrics: Arc<dyn Metrics>,
}

impl IngestActivities {
    pub fn new(store: Arc<dyn ObjectStore>, contracts_dir: PathBuf) -> Self {
        Self {
            store,
            contracts_dir,
            metrics: Arc::new(NoMetrics),
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Contracts are read on every call so a steward's fix applies to the next file (and to a
    /// retried activity) without restarting workers. A contract error is retryable for the same
    /// reason: the workflow waits, with backoff, until the contract is fixed.
    fn contracts(&self) -> Result<ContractSet, ActivityError> {
        ContractSet::load_dir(&self.contracts_dir).map_err(|e| ApplicationFailure::new(e).into())
    }
}

#[activities]
impl IngestActivities {
    #[activity(name = names::RESOLVE_CONTRACT_ACTIVITY)]
    pub async fn resolve_contract(
        self: Arc<Self>,
        _ctx: ActivityContext,
        key: String,
    ) -> Result<Option<ContractMatch>, ActivityError> {
        let contracts = self.contracts()?;
        Ok(contracts
            .resolve(&key)
            .map(|(contract, table)| ContractMatch {
                dataset: contract.dataset.clone(),
                table: table.name.clone(),
            }))
    }

    #[activity(name = names::VALIDATE_ACTIVITY)]
    pub async fn validate_object(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: ValidateRequest,
    ) -> Result<ValidationReport, ActivityError> {
        let contracts = self.contracts()?;
        let Some((contract, table)) =
            contracts.table(&request.contract.dataset, &request.contract.table)
        else {
            // The contract was removed between resolve and validate. No retry brings it back, so
            // this fails for good, and the workflow run with it: nothing resolves again. The id
            // reuse policy lets the file be started again once the contracts are right.
            return Err(ApplicationFailure::non_retryable(format!(
                "contract {}/{} no longer exists",
                request.contract.dataset, request.contract.table
            ))
            .into());
        };
        let (contract, table) = (contract.clone(), table.clone());
        let dataset = contract.dataset.clone();
        let meta = self
            .store
            .head(&request.key)
            .await
            .map_err(port_failure)?
            .ok_or_else(|| port_failure(StoreError::NotFound(KeyTag(request.key.clone()))))?;
        let stream = self.store.get(&request.key).await.map_err(port_failure)?;
        // The same options `lakegate validate` uses offline (the key stands in for the path), so
        // both give the same report for the same file.
        let options = ValidateOptions {
            name: Some(request.key.clone()),
            size: Some(meta.size),
            ..ValidateOptions::default()
        };
        // The engine is synchronous and CPU-bound: run it off the async threads, reading the
        // object as it streams in.
        let mut validation = tokio::task::spawn_blocking(move || {
            validate_with(&contract, &table, SyncIoBridge::new(stream), &options)
        });
        // Heartbeats tell Temporal this worker is alive: if it dies mid-file, the attempt is
        // retried after the heartbeat timeout rather than the 30-minute attempt limit.
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let joined = loop {
            tokio::select! {
                joined = &mut validation => break joined,
                _ = beat.tick() => {
                    // A lost heartbeat is retried by the next tick; the timeout allows several.
                    let _ = ctx.record_heartbeat(()).await;
                }
            }
        };
        let report = joined
            .map_err(|e| ApplicationFailure::new(format!("validator task failed: {e}")))?
            .map_err(|e| {
                ApplicationFailure::new(format!("reading {} failed: {e}", KeyTag(request.key)))
            })?;
        self.metrics.bytes_validated(&dataset, report.bytes);
        Ok(ValidationReport {
            etag: meta.etag,
            ..report
        })
    }

    #[activity(name = names::MOVE_ACTIVITY)]
    pub async fn move_object(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: MoveRequest,
    ) -> Result<MoveResult, ActivityError> {
        let moved = match &request.if_etag {
            Some(etag) => {
                self.store
                    .move_object_if(&request.from, &request.to, etag)
                    .await
            }
            None => self.store.move_object(&request.from, &request.to).await,
        };
        match moved {
            Ok(meta) => {
                if let Some(outcome) = FileOutcome::of_move(&request.from, &request.to) {
                    let dataset = request.dataset.as_deref().unwrap_or(UNMATCHED_DATASET);
                    self.metrics.file_outcome(dataset, outcome);
                }
                Ok(MoveResult::Moved(meta))
            }
            Err(StoreError::DestinationExists(_)) => Ok(MoveResult::DestinationTaken),
            // Retrying cannot bring the validated bytes back: an answer for the workflow.
            Err(StoreError::Conflict { .. }) if request.if_etag.is_some() => {
                Ok(MoveResult::SourceChanged)
            }
            Err(e) => Err(port_failure(e)),
        }
    }
}

/// A port's error as an activity failure that Temporal retries only when the port says so.
pub(crate) fn port_failure(error: impl PortError) -> ActivityError {
    let failure = if error.is_retryable() {
        ApplicationFailure::new(error)
    } else {
        ApplicationFailure::non_retryable(error)
    };
    failure.into()
}
