//! Activities that start ingests in bulk: the landing sweep (the safety net for lost S3 events:
//! files that sat in landing/ longer than a grace period get their `IngestFileWorkflow`) and the
//! backfill of a whole prefix. Files that already have a workflow are recognised by its id.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lakegate_models::{
    IngestFile, IngestInput, IngestPhase, IngestStatus, LandingPage, PromotedFile, SweepInput,
    SweepResult, Zone, names,
};
use lakegate_validate::ContractSet;
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
};
use temporalio_common::UntypedWorkflow;
use temporalio_common::error::ApplicationFailure;
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ingest::port_failure;
use crate::ports::{ObjectStore, StartOutcome};
use crate::start::{ingest_summary_for, start_ingest_summarised};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub prefix: String,
    pub after: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    pub files: Vec<IngestFile>,
    pub review_timeout_secs: u64,
    /// The caller crawls the promoted files itself (see [`IngestInput::crawl_later`]).
    #[serde(default)]
    pub crawl_later: bool,
}

/// An ingest that has settled and, if it reached raw/ without waiting for review, where to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledIngest {
    pub workflow_id: String,
    #[serde(default)]
    pub promoted: Option<PromotedFile>,
    /// The ingest ended without placing its file: failed, terminated, cancelled or timed out.
    /// The file is still in landing/ (or wherever the failure left it) and needs a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub workflow_ids: Vec<String>,
    pub already_known: u64,
}

pub struct SweepActivities {
    store: Arc<dyn ObjectStore>,
    /// Where the ingests' summaries find their dataset and table; `None`: no summaries.
    contracts_dir: Option<PathBuf>,
}

impl SweepActivities {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            contracts_dir: None,
        }
    }

    /// The ingests these activities start say in the Web UI which dataset and table they are.
    pub fn with_contracts(mut self, dir: impl Into<PathBuf>) -> Self {
        self.contracts_dir = Some(dir.into());
        self
    }

    /// The contracts, loaded once per activity. A summary is only a label: contracts that do not
    /// load leave the runs unlabelled rather than stop the sweep, and the ingest itself reports
    /// the broken contract.
    fn contracts(&self) -> Option<ContractSet> {
        let dir = self.contracts_dir.as_ref()?;
        match ContractSet::load_dir(dir) {
            Ok(set) => Some(set),
            Err(e) => {
                tracing::warn!("no ingest summaries: the contracts do not load: {e}");
                None
            }
        }
    }

    /// Starts one ingest, labelled for the Web UI when a contract claims its key.
    async fn start(
        &self,
        ctx: &ActivityContext,
        contracts: Option<&ContractSet>,
        input: IngestInput,
    ) -> Result<StartOutcome, ActivityError> {
        let summary = contracts.and_then(|set| ingest_summary_for(set, &input.key));
        start_ingest_summarised(&ctx.client(), &ctx.info().task_queue, input, summary)
            .await
            .map_err(|e| ApplicationFailure::new(e).into())
    }
}

#[activities]
impl SweepActivities {
    /// Idempotent, so a retry after a crash half-way simply sweeps again: the starts it already
    /// made come back as duplicates.
    #[activity(name = names::SWEEP_LANDING_ACTIVITY)]
    pub async fn sweep_landing(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SweepInput,
    ) -> Result<SweepResult, ActivityError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let cutoff = now - i64::try_from(input.older_than_secs).unwrap_or(i64::MAX);
        let objects = self
            .store
            .list(Zone::Landing.prefix())
            .await
            .map_err(port_failure)?;
        let mut result = SweepResult::default();
        let contracts = self.contracts();
        for object in objects {
            result.seen += 1;
            if object.last_modified.is_some_and(|t| t > cutoff) {
                result.too_recent += 1;
                continue;
            }
            let version = match self.store.version_of(&object.key).await {
                Ok(version) => version,
                // Moved since the listing: its workflow got to it first.
                Err(crate::ports::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(port_failure(e)),
            };
            let start = IngestInput {
                bucket: self.store.bucket().to_owned(),
                key: object.key,
                version,
                review_timeout_secs: input.review_timeout_secs,
                crawl_later: false,
            };
            match self.start(&ctx, contracts.as_ref(), start).await? {
                StartOutcome::Started { .. } => result.started += 1,
                StartOutcome::Duplicate { .. } => result.already_known += 1,
            }
        }
        Ok(result)
    }

    /// How many files are under the prefix now: the backfill's progress bar total.
    #[activity(name = names::COUNT_LANDING_ACTIVITY)]
    pub async fn count_landing(
        self: Arc<Self>,
        _ctx: ActivityContext,
        prefix: String,
    ) -> Result<u64, ActivityError> {
        check_backfill_prefix(&prefix)?;
        let objects = self.store.list(&prefix).await.map_err(port_failure)?;
        Ok(objects.len() as u64)
    }

    /// The next `limit` files under the prefix after the cursor, with their ingest versions.
    #[activity(name = names::LIST_LANDING_PAGE_ACTIVITY)]
    pub async fn list_landing_page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: PageRequest,
    ) -> Result<LandingPage, ActivityError> {
        check_backfill_prefix(&request.prefix)?;
        let limit = request.limit.max(1) as usize;
        let objects = self
            .store
            .list_page(&request.prefix, request.after.as_deref(), limit)
            .await
            .map_err(port_failure)?;
        let exhausted = objects.len() < limit;
        let cursor = objects.last().map(|o| o.key.clone());
        let mut files = Vec::new();
        for object in objects {
            match self.store.version_of(&object.key).await {
                Ok(version) => files.push(IngestFile {
                    key: object.key,
                    version,
                }),
                // Moved since the listing: its workflow got to it first.
                Err(crate::ports::StoreError::NotFound(_)) => {}
                Err(e) => return Err(port_failure(e)),
            }
        }
        Ok(LandingPage {
            files,
            cursor,
            exhausted,
        })
    }

    #[activity(name = names::START_INGESTS_ACTIVITY)]
    pub async fn start_ingests(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: StartRequest,
    ) -> Result<Started, ActivityError> {
        let contracts = self.contracts();
        let mut started = Started {
            workflow_ids: Vec::new(),
            already_known: 0,
        };
        for file in request.files {
            let input = IngestInput {
                bucket: self.store.bucket().to_owned(),
                key: file.key,
                version: file.version,
                review_timeout_secs: request.review_timeout_secs,
                crawl_later: request.crawl_later,
            };
            match self.start(&ctx, contracts.as_ref(), input).await? {
                StartOutcome::Started { workflow_id } => started.workflow_ids.push(workflow_id),
                StartOutcome::Duplicate { workflow_id } => {
                    started.already_known += 1;
                    started.workflow_ids.push(workflow_id);
                }
            }
        }
        Ok(started)
    }

    /// Which of these ingests have settled (closed, or waiting for a person's review), with
    /// where each completed one promoted its file.
    #[activity(name = names::SETTLED_INGESTS_ACTIVITY)]
    pub async fn settled_ingests(
        self: Arc<Self>,
        ctx: ActivityContext,
        workflow_ids: Vec<String>,
    ) -> Result<Vec<SettledIngest>, ActivityError> {
        let client = ctx.client();
        let mut settled = Vec::new();
        for id in workflow_ids {
            let handle = client.get_workflow_handle::<UntypedWorkflow>(id.clone());
            let description = handle
                .describe(WorkflowDescribeOptions::default())
                .await
                .map_err(|e| ApplicationFailure::new(format!("describing {id}: {e}")))?;
            match description.status() {
                WorkflowExecutionStatus::Running => {
                    // The phase search attribute, not a query: describe needs no worker.
                    let phase = description.search_attributes().get(
                        &SearchAttributeKey::<String>::keyword(names::search_attributes::PHASE),
                    );
                    if phase.as_deref() == Some(IngestPhase::AwaitingReview.as_str()) {
                        settled.push(SettledIngest {
                            workflow_id: id,
                            promoted: None,
                            failed: false,
                        });
                    }
                }
                WorkflowExecutionStatus::Completed => {
                    let result = handle
                        .get_result(WorkflowGetResultOptions::default())
                        .await
                        .map_err(|e| ApplicationFailure::new(format!("result of {id}: {e}")))?;
                    let status = result
                        .payloads
                        .first()
                        .and_then(|p| serde_json::from_slice::<IngestStatus>(&p.data).ok());
                    let promoted = status.and_then(|s| match (s.zone, &s.contract) {
                        (Zone::Raw, Some(contract)) => Some(PromotedFile::new(contract, &s.key)),
                        _ => None,
                    });
                    settled.push(SettledIngest {
                        workflow_id: id,
                        promoted,
                        failed: false,
                    });
                }
                _ => settled.push(SettledIngest {
                    workflow_id: id,
                    promoted: None,
                    failed: true,
                }),
            }
        }
        Ok(settled)
    }
}

fn check_backfill_prefix(prefix: &str) -> Result<(), ActivityError> {
    if prefix.starts_with(Zone::Landing.prefix()) {
        Ok(())
    } else {
        Err(ApplicationFailure::non_retryable(format!(
            "a backfill prefix must be under {}",
            Zone::Landing.prefix()
        ))
        .into())
    }
}
