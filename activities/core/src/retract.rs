//! `RetractWorkflow`'s own activity, and how a retract is started. The workflow learns which file
//! to take back from the ingest run that promoted it (its result, read here through the
//! worker's Temporal client), never from the client that asked: a retract names a run, not a
//! key. The move itself is the ingest workflow's `move_object`, and the catalog refresh is the
//! crawl notification every promotion already sends.

use std::sync::Arc;

use lakegate_models::{IngestPhase, IngestStatus, PromotedRun, RetractInput, Zone, names};
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_common::UntypedWorkflow;
use temporalio_common::data_converters::{PayloadConverter, RawValue};
use temporalio_common::error::ApplicationFailure;
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ingest::port_failure;
use crate::ports::{ObjectStore, StartError};

/// The retract activities, bound to the object store the promoted files are in.
pub struct RetractActivities {
    store: Arc<dyn ObjectStore>,
}

impl RetractActivities {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }
}

#[activities]
impl RetractActivities {
    /// Whether `ingest_workflow_id` promoted a file that is still in raw/, and if so which key,
    /// contract and ETag. Every "no" is an answer naming the run and its phase (the workflow
    /// fails it non-retryably); only a failure to reach Temporal or the store is retried.
    #[activity(name = names::INSPECT_PROMOTED_ACTIVITY)]
    pub async fn inspect_promoted(
        self: Arc<Self>,
        ctx: ActivityContext,
        ingest_workflow_id: String,
    ) -> Result<PromotedRun, ActivityError> {
        let id = ingest_workflow_id;
        let refused = |reason: String| Ok(PromotedRun::Refused { reason });
        let client = ctx.client();
        let handle = client.get_workflow_handle::<UntypedWorkflow>(id.clone());
        let description = match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(description) => description,
            Err(WorkflowInteractionError::NotFound(_)) => {
                return refused(format!("there is no workflow {id}"));
            }
            Err(e) => {
                return Err(ApplicationFailure::new(format!("describing {id}: {e}")).into());
            }
        };
        if description.workflow_type() != names::INGEST_FILE_WORKFLOW {
            return refused(format!(
                "{id} is a {}, not an {}: a retract names the ingest run that promoted the file",
                description.workflow_type(),
                names::INGEST_FILE_WORKFLOW
            ));
        }
        let status = description.status();
        if status == WorkflowExecutionStatus::Running {
            // The phase search attribute, not a query: describe needs no worker.
            let phase = description
                .search_attributes()
                .get(&SearchAttributeKey::<String>::keyword(
                    names::search_attributes::PHASE,
                ))
                .unwrap_or_else(|| "unknown".to_owned());
            let hint = if phase == IngestPhase::AwaitingReview.as_str() {
                "; its file is in quarantine/: reject it with `lakegate review <id> reject`"
            } else {
                ""
            };
            return refused(format!(
                "{id} has not promoted its file (it is still running, phase {phase}){hint}"
            ));
        }
        if status != WorkflowExecutionStatus::Completed {
            return refused(format!(
                "{id} did not complete (its run ended {status:?}), so it promoted nothing"
            ));
        }
        let result = handle
            .get_result(WorkflowGetResultOptions::default())
            .await
            .map_err(|e| ApplicationFailure::new(format!("result of {id}: {e}")))?;
        let Some(outcome) = result
            .payloads
            .first()
            .and_then(|p| serde_json::from_slice::<IngestStatus>(&p.data).ok())
        else {
            return refused(format!("the result of {id} is not an ingest outcome"));
        };
        let contract = match (&outcome.contract, outcome.zone, outcome.phase) {
            (Some(contract), Zone::Raw, IngestPhase::Promoted) => contract.clone(),
            _ => {
                return refused(format!(
                    "{id} did not promote its file (it ended {} with the file in {})",
                    outcome.phase.as_str(),
                    outcome.zone.prefix()
                ));
            }
        };
        match self.store.head(&outcome.key).await.map_err(port_failure)? {
            Some(meta) => Ok(PromotedRun::InRaw {
                contract,
                key: outcome.key,
                etag: meta.etag,
            }),
            None => refused(format!(
                "the file {id} promoted is no longer in raw/: it was retracted already ({}) \
                 or moved by other means",
                names::retract_workflow_id(&id)
            )),
        }
    }
}

/// What [`start_retract`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetractStart {
    Started {
        workflow_id: String,
    },
    /// This ingest run already has a retract, running or completed: nothing was started.
    Exists {
        workflow_id: String,
    },
}

/// Starts the retract of `input.ingest_workflow_id`'s file under its one id
/// ([`names::retract_workflow_id`]). A retract that is running or completed answers a second
/// start (id conflict policy Fail, reuse policy AllowDuplicateFailedOnly), so a file is retracted
/// once; a refused (failed) retract may be started again, e.g. once its ingest run promoted.
/// Untyped, because the workflow type lives in a crate that depends on this one.
pub async fn start_retract(
    client: &Client,
    task_queue: &str,
    input: &RetractInput,
) -> Result<RetractStart, StartError> {
    let workflow_id = names::retract_workflow_id(&input.ingest_workflow_id);
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .static_summary(
            "Retract one promoted file: raw/ to rejected/, then refresh its catalog".to_owned(),
        )
        .build();
    let input = RawValue::from_value(input, &PayloadConverter::serde_json());
    match client
        .start_workflow(
            UntypedWorkflow::new(names::RETRACT_WORKFLOW),
            input,
            options,
        )
        .await
    {
        Ok(_) => Ok(RetractStart::Started { workflow_id }),
        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(RetractStart::Exists { workflow_id }),
        Err(e) => Err(StartError {
            message: format!("starting {workflow_id}: {e}"),
        }),
    }
}
