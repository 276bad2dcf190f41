//! Activities of `IngestFileWorkflow`: resolve a file's contract, validate it, move it between
//! zones, and the one activity that does all of that for a valid file (its happy path in one
//! server round trip).

use std::path::PathBuf;
use std::sync::Arc;

use lakegate_models::{ContractMatch, PromotedFile, ValidationReport, Verdict, keys, names};
use lakegate_validate::{ContractSet, ValidateOptions, Validated, validate_full};
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio_util::io::SyncIoBridge;

#[path = "ingest_index.rs"]
mod index_moves;
pub use index_moves::APPROVAL_INDEX_BUDGET;

use crate::metrics::{FileOutcome, Metrics, NoMetrics, UNMATCHED_DATASET};
use crate::pipeline::{PipelineSettings, signal_crawl};
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

/// Input of [`IngestActivities::validate_and_promote`]: a landing object version and what the
/// workflow decided about its destination (the day of its partition, whether to notify the crawl).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidateAndPromoteRequest {
    pub key: String,
    pub version: String,
    /// The partition day, from workflow time (replay-safe), not the worker's clock.
    pub ingest_date: String,
    /// Hand the promoted file to its crawl workflow (when a pipeline is configured).
    pub notify_crawl: bool,
}

/// What [`IngestActivities::validate_and_promote`] did. Anything but `Promoted` leaves the object
/// where it was, in landing/, for the workflow to quarantine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstPass {
    NoContract,
    Failed {
        contract: ContractMatch,
        report: ValidationReport,
    },
    /// It passed, but the object in landing/ was replaced after validation read it.
    Changed {
        contract: ContractMatch,
        report: ValidationReport,
    },
    Promoted {
        contract: ContractMatch,
        report: ValidationReport,
        key: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        crawl_workflow_id: Option<String>,
    },
}

/// Progress of a `validate_and_promote` attempt, heartbeated so that a retry after a worker died
/// can tell "already promoted" from "gone": the landing object's ETag as validation read it, and
/// the key it was moved to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PromoteProgress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promoted_to: Option<String>,
}

/// The ingest activities, bound to one object store and one contracts directory.
pub struct IngestActivities {
    store: Arc<dyn ObjectStore>,
    contracts_dir: PathBuf,
    metrics: Arc<dyn Metrics>,
    /// Where promoted files are handed on; `None`: files stop at raw/.
    pipeline: Option<PipelineSettings>,
}

impl IngestActivities {
    pub fn new(store: Arc<dyn ObjectStore>, contracts_dir: PathBuf) -> Self {
        Self {
            store,
            contracts_dir,
            metrics: Arc::new(NoMetrics),
            pipeline: None,
        }
    }

    /// Lets `validate_and_promote` hand promoted files to their crawl workflow itself.
    pub fn with_pipeline(mut self, pipeline: Option<PipelineSettings>) -> Self {
        self.pipeline = pipeline;
        self
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

    fn resolve(&self, key: &str) -> Result<Option<ContractMatch>, ActivityError> {
        Ok(self
            .contracts()?
            .resolve(key)
            .map(|(contract, table)| ContractMatch {
                dataset: contract.dataset.clone(),
                table: table.name.clone(),
            }))
    }

    /// Validates the object at `key` as it streams from the store, heartbeating `progress`.
    async fn validate(
        &self,
        ctx: &ActivityContext,
        key: &str,
        contract: &ContractMatch,
        progress: &PromoteProgress,
    ) -> Result<Validated, ActivityError> {
        let contracts = self.contracts()?;
        let Some((contract, table)) = contracts.table(&contract.dataset, &contract.table) else {
            // The contract was removed between resolve and validate. No retry brings it back, so
            // this fails for good, and the workflow run with it: nothing resolves again. The id
            // reuse policy lets the file be started again once the contracts are right.
            return Err(ApplicationFailure::non_retryable(format!(
                "contract {}/{} no longer exists",
                contract.dataset, contract.table
            ))
            .into());
        };
        let (contract, table) = (contract.clone(), table.clone());
        let dataset = contract.dataset.clone();
        let meta = self
            .store
            .head(key)
            .await
            .map_err(port_failure)?
            .ok_or_else(|| port_failure(StoreError::NotFound(KeyTag(key.to_owned()))))?;
        let stream = self.store.get(key).await.map_err(port_failure)?;
        // The same options `lakegate validate` uses offline (the key stands in for the path), so
        // both give the same report for the same file.
        let options = ValidateOptions {
            name: Some(key.to_owned()),
            size: Some(meta.size),
            // What the lake's indexes need (history, references); the report is unchanged.
            index_columns: table.referenced_columns(&contract),
            check_references: true,
            ..ValidateOptions::default()
        };
        // The engine is synchronous and CPU-bound: run it off the async threads, reading the
        // object as it streams in.
        let mut validation = tokio::task::spawn_blocking(move || {
            validate_full(&contract, &table, SyncIoBridge::new(stream), &options)
        });
        let progress = PromoteProgress {
            etag: meta.etag.clone(),
            ..progress.clone()
        };
        // Heartbeats tell Temporal this worker is alive: if it dies mid-file, the attempt is
        // retried after the heartbeat timeout rather than the 30-minute attempt limit.
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let joined = loop {
            tokio::select! {
                joined = &mut validation => break joined,
                _ = beat.tick() => {
                    // A lost heartbeat is retried by the next tick; the timeout allows several.
                    let _ = ctx.record_heartbeat(progress.clone()).await;
                }
            }
        };
        let mut validated = joined
            .map_err(|e| ApplicationFailure::new(format!("validator task failed: {e}")))?
            .map_err(|e| {
                ApplicationFailure::new(format!("reading {} failed: {e}", KeyTag(key.to_owned())))
            })?;
        self.metrics
            .bytes_validated(&dataset, validated.report.bytes);
        validated.report.etag = meta.etag;
        Ok(validated)
    }

    async fn do_move(&self, request: &MoveRequest) -> Result<MoveResult, ActivityError> {
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

    /// Where an earlier attempt of this activity already promoted the object, if the landing key
    /// is gone because of it: the key it heartbeated, else the version-tagged name (only this
    /// file version uses it), else the plain name if it holds the bytes validation read.
    async fn promoted_earlier(
        &self,
        progress: &PromoteProgress,
        candidates: [&str; 2],
    ) -> Result<Option<String>, ActivityError> {
        let [plain, tagged] = candidates;
        let heartbeated = progress.promoted_to.as_deref();
        for (key, trusted) in [
            (heartbeated, true),
            (Some(tagged), true),
            (Some(plain), false),
        ] {
            let Some(key) = key else { continue };
            let ours = match &progress.etag {
                // A copy, not the same ETag: S3's multipart copies get ETags of their own.
                Some(etag) => self
                    .store
                    .holds_copy_of(key, etag)
                    .await
                    .map_err(port_failure)?,
                None => trusted && self.store.head(key).await.map_err(port_failure)?.is_some(),
            };
            if ours {
                return Ok(Some(key.to_owned()));
            }
        }
        Ok(None)
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
        self.resolve(&key)
    }

    #[activity(name = names::VALIDATE_ACTIVITY)]
    pub async fn validate_object(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: ValidateRequest,
    ) -> Result<ValidationReport, ActivityError> {
        let validated = self
            .validate(
                &ctx,
                &request.key,
                &request.contract,
                &PromoteProgress::default(),
            )
            .await?;
        // The history and cross-file rules, as `validate_and_promote` decides them: an old run
        // that still validates in steps must not pass a duplicate or an orphan silently. Its
        // destination is not known yet, so no own entry is left out (none exists before it moves).
        let mut validated = validated;
        crate::index::check_file(
            &self.store,
            &self.contracts()?,
            &request.key,
            &[],
            &mut validated,
        )
        .await
        .map_err(port_failure)?;
        if validated.report.verdict == Verdict::Fail {
            self.stash_pending(&request.key, &request.contract, &validated)
                .await?;
        }
        Ok(validated.report)
    }

    #[activity(name = names::MOVE_ACTIVITY)]
    pub async fn move_object(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: MoveRequest,
    ) -> Result<MoveResult, ActivityError> {
        let moved = self.do_move(&request).await?;
        // A retried move that had completed answers `Moved` again, so a crash between the move
        // and the index is finished by the retry (every index write is idempotent).
        self.index_move(&ctx, &request, &moved).await?;
        Ok(moved)
    }

    /// Resolve, validate and, if the file passes, promote it to its raw/ partition while it still
    /// has the ETag validation read, then hand it to its crawl workflow: everything a valid file
    /// needs, in one activity. Moves never overwrite (a taken name gets the version tag), and a
    /// retry after a worker died past the move recognises its own promotion.
    #[activity(name = names::VALIDATE_AND_PROMOTE_ACTIVITY)]
    pub async fn validate_and_promote(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: ValidateAndPromoteRequest,
    ) -> Result<FirstPass, ActivityError> {
        let Some(contract) = self.resolve(&request.key)? else {
            return Ok(FirstPass::NoContract);
        };
        let mut progress: PromoteProgress = ctx
            .heartbeat_details()
            .deserialize()
            .ok()
            .flatten()
            .unwrap_or_default();
        let to = keys::raw_destination(&contract, &request.ingest_date, &request.key);
        let tagged = keys::version_tagged(&to, &request.version);

        let landing_gone = self
            .store
            .head(&request.key)
            .await
            .map_err(port_failure)?
            .is_none();
        if landing_gone && progress.etag.is_none() {
            progress.etag = crate::promotion::recorded_etag(
                self.store.as_ref(),
                &contract.dataset,
                &request.key,
                &request.version,
            )
            .await
            .map_err(port_failure)?;
        }
        if landing_gone && let Some(key) = self.promoted_earlier(&progress, [&to, &tagged]).await? {
            // The same bytes, so the same report, read from where they are now. The history
            // rules were decided before the move; recording the index again is a no-op.
            let validated = self.validate(&ctx, &key, &contract, &progress).await?;
            return self
                .promoted(&ctx, &request, contract, validated, key)
                .await;
        }

        let mut validated = self
            .validate(&ctx, &request.key, &contract, &progress)
            .await?;
        // Still in landing/, so no attempt of this run has recorded the file (the index is
        // written after the move). Only the tagged name is this version's alone: the plain one
        // may hold another file of the same name and day, whose entry is history like any other.
        crate::index::check_file(
            &self.store,
            &self.contracts()?,
            &request.key,
            &[&tagged],
            &mut validated,
        )
        .await
        .map_err(port_failure)?;
        let report = validated.report.clone();
        if report.verdict == Verdict::Fail {
            self.stash_pending(&request.key, &contract, &validated)
                .await?;
            return Ok(FirstPass::Failed { contract, report });
        }
        let mut progress = PromoteProgress {
            etag: report.etag.clone(),
            promoted_to: None,
        };
        if let Some(etag) = &report.etag {
            crate::promotion::record_intent(
                self.store.as_ref(),
                &contract.dataset,
                &request.key,
                &request.version,
                etag,
            )
            .await
            .map_err(port_failure)?;
        }
        let mut promoted = None;
        for destination in [&to, &tagged] {
            let request = MoveRequest {
                from: request.key.clone(),
                to: destination.clone(),
                if_etag: report.etag.clone(),
                dataset: Some(contract.dataset.clone()),
            };
            match self.do_move(&request).await? {
                MoveResult::Moved(_) => {
                    promoted = Some(destination.clone());
                    break;
                }
                MoveResult::SourceChanged => return Ok(FirstPass::Changed { contract, report }),
                MoveResult::DestinationTaken => continue,
            }
        }
        // Both names taken: the tagged one by this very version (only it uses that name), so the
        // bytes are already there, as the workflow's own moves have always treated it.
        let key = promoted.unwrap_or(tagged);
        progress.promoted_to = Some(key.clone());
        let _ = ctx.record_heartbeat(progress).await;
        self.promoted(&ctx, &request, contract, validated, key)
            .await
    }
}

impl IngestActivities {
    async fn promoted(
        &self,
        ctx: &ActivityContext,
        request: &ValidateAndPromoteRequest,
        contract: ContractMatch,
        validated: Validated,
        key: String,
    ) -> Result<FirstPass, ActivityError> {
        // Before the crawl hears of it: a file the next validation should see is indexed first.
        crate::index::record(
            self.store.as_ref(),
            &contract.dataset,
            &contract.table,
            &crate::index::entry_of(&validated, &key),
            &validated.keys,
            now_ms(),
        )
        .await
        .map_err(port_failure)?;
        let report = validated.report;
        let crawl_workflow_id = match (&self.pipeline, request.notify_crawl) {
            (Some(settings), true) => {
                Some(signal_crawl(ctx, settings, PromotedFile::new(&contract, &key)).await?)
            }
            _ => None,
        };
        Ok(FirstPass::Promoted {
            contract,
            report,
            key,
            crawl_workflow_id,
        })
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
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
