//! Starting an `IngestFileWorkflow` for one object version: the one place that knows its id and
//! id policies, used by the CLI, the event router (through the worker's IngestStarter) and the
//! landing sweep.

use lakegate_models::{IngestInput, ingest_workflow_id, names};
use lakegate_validate::ContractSet;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{
    Client, WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowStartOptions,
};
use temporalio_common::UntypedWorkflow;
use temporalio_common::data_converters::{PayloadConverter, RawValue};

use crate::ports::{StartError, StartOutcome};

/// Starts the file version's workflow unless it already has one.
///
/// The id comes from bucket, key and version, so a repeated event is recognised by the server:
/// a run that is open or completed answers the second start (id conflict policy Fail, reuse
/// policy AllowDuplicateFailedOnly). A run that failed or was terminated may be started afresh,
/// which is how an operator re-drives a file after fixing a bug. Untyped, because the workflow
/// type lives in a crate that depends on this one.
pub async fn start_ingest(
    client: &Client,
    task_queue: &str,
    input: IngestInput,
) -> Result<StartOutcome, StartError> {
    start_ingest_summarised(client, task_queue, input, None).await
}

/// The Web UI's one-line summary of an ingest run: dataset and table in words, never the key or
/// the file name (the summary is stored and shown in clear).
pub fn ingest_summary(dataset: &str, table: &str) -> String {
    format!(
        "Onboard one {dataset}.{table} file: validate, then promote to raw/ or quarantine for review"
    )
}

/// [`ingest_summary`] for the contract that claims `key`, if one does: the summary names the
/// dataset and table the ingest will resolve, never the key.
pub fn ingest_summary_for(contracts: &ContractSet, key: &str) -> Option<String> {
    let (contract, table) = contracts.resolve(key)?;
    Some(ingest_summary(&contract.dataset, &table.name))
}

/// [`start_ingest`] with the run's user metadata summary (see [`ingest_summary`]).
pub async fn start_ingest_summarised(
    client: &Client,
    task_queue: &str,
    input: IngestInput,
    summary: Option<String>,
) -> Result<StartOutcome, StartError> {
    let workflow_id = ingest_workflow_id(&input.bucket, &input.key, &input.version);
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
        .maybe_static_summary(summary)
        .build();
    let input = RawValue::from_value(&input, &PayloadConverter::serde_json());
    match client
        .start_workflow(
            UntypedWorkflow::new(names::INGEST_FILE_WORKFLOW),
            input,
            options,
        )
        .await
    {
        Ok(_) => Ok(StartOutcome::Started { workflow_id }),
        Err(WorkflowStartError::AlreadyStarted { .. }) => {
            Ok(StartOutcome::Duplicate { workflow_id })
        }
        Err(e) => Err(StartError {
            message: format!("starting {workflow_id}: {e}"),
        }),
    }
}
