//! Starting an `IngestFileWorkflow` for one object version: the one place that knows its id and
//! id policies, used by the CLI, the event router (through the worker's IngestStarter) and the
//! landing sweep.

use lakegate_models::{IngestInput, ingest_workflow_id, names};
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
    let workflow_id = ingest_workflow_id(&input.bucket, &input.key, &input.version);
    let options = WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone())
        .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
        .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
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
