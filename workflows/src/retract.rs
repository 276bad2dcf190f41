//! `RetractWorkflow`: takes a promoted file back. The file is named by the `IngestFileWorkflow`
//! that promoted it; its raw/ key comes from that run's result. It moves to rejected/ (never
//! deleted), who asked and why stay in this run's status, and its partition goes to the
//! dataset's crawl workflow like a promotion does, so the catalog step re-reads the partition
//! without the file and the transform runs again.

use lakegate_activities::retract::RetractActivities;
use lakegate_activities::{MoveRequest, MoveResult, NotifyActivities};
use lakegate_models::keys::fitted;
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{
    ContractMatch, PromotedFile, PromotedRun, RetractInput, RetractPhase, RetractStatus, Zone,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::moves::move_or_tagged;
use crate::options;

#[workflow]
pub struct RetractWorkflow {
    /// The input, or why it did not decode (the field, never its value): a start with bad input
    /// fails its run at once instead of failing every workflow task.
    input: Result<RetractInput, String>,
    status: RetractStatus,
}

#[workflow_methods]
impl RetractWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: serde_json::Value) -> Self {
        let input = RetractInput::from_raw(&input);
        let status = match &input {
            Ok(input) => RetractStatus::new(input),
            Err(_) => RetractStatus::new(&RetractInput {
                ingest_workflow_id: String::new(),
                reviewer: String::new(),
                reason: String::new(),
            }),
        };
        Self { input, status }
    }

    #[run(name = names::RETRACT_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RetractStatus> {
        let input = match ctx.state(|s| s.input.clone()) {
            Ok(input) => input,
            Err(why) => return Err(ApplicationFailure::non_retryable(why).into()),
        };
        set_phase(ctx, RetractPhase::Checking);
        let found = ctx
            .execute_activity(
                RetractActivities::inspect_promoted,
                input.ingest_workflow_id.clone(),
                options::short(),
            )
            .await?;
        let (contract, promoted, etag) = match found {
            PromotedRun::InRaw {
                contract,
                key,
                etag,
            } => (contract, key, etag),
            PromotedRun::Refused { reason } => return refuse(ctx, reason),
        };
        ctx.upsert_search_attributes([
            keyword(sa::DATASET, &contract.dataset),
            keyword(sa::TABLE, &contract.table),
        ]);
        ctx.state_mut(|s| {
            s.status.contract = Some(contract.clone());
            s.status.promoted_key = Some(promoted.clone());
            s.status.zone = Some(Zone::Raw);
            s.status.key = Some(promoted.clone());
        });

        set_phase(ctx, RetractPhase::Moving);
        let to = fitted(&Zone::rehome(&promoted, Zone::Rejected), None);
        // The ingest run's id is the version tag: unique per file version, as the ingest's is.
        let tag = input.ingest_workflow_id.trim_start_matches("ingest-");
        let Some(rejected) = move_to(ctx, &promoted, to, tag, etag, &contract).await? else {
            return refuse(
                ctx,
                format!(
                    "the file {} promoted was replaced in raw/ after it was checked; nothing moved",
                    input.ingest_workflow_id
                ),
            );
        };
        ctx.state_mut(|s| {
            s.status.zone = Some(Zone::Rejected);
            s.status.key = Some(rejected);
        });

        // The partition, not the file: the catalog step re-reads what is left in it (an empty
        // table stays, typed) and the transform that follows no longer sees the file's rows.
        set_phase(ctx, RetractPhase::Cataloguing);
        let crawl = ctx
            .execute_activity(
                NotifyActivities::notify_crawl,
                PromotedFile::new(&contract, &promoted),
                options::short(),
            )
            .await?;
        ctx.state_mut(|s| s.status.crawl_workflow_id = crawl);
        set_phase(ctx, RetractPhase::Retracted);
        Ok(ctx.state(|s| s.status.clone()))
    }

    #[query(name = names::STATUS_QUERY)]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> RetractStatus {
        self.status.clone()
    }
}

/// Ends the run as refused: the reason in the status and in a non-retryable failure, which is
/// what `lakegate retract` shows.
fn refuse(
    ctx: &mut WorkflowContext<RetractWorkflow>,
    reason: String,
) -> WorkflowResult<RetractStatus> {
    ctx.state_mut(|s| s.status.refused = Some(reason.clone()));
    set_phase(ctx, RetractPhase::Refused);
    Err(ApplicationFailure::non_retryable(format!("retract refused: {reason}")).into())
}

/// Moves `from` to `to` while it still has `etag`, as `IngestFileWorkflow` moves: a different
/// file already at `to` makes this one take the version-tagged name, so both are kept. `None`
/// when the source was replaced (nothing moved). A retry after a worker died mid-move finishes
/// the move (`ObjectStore::move_object`).
async fn move_to(
    ctx: &mut WorkflowContext<RetractWorkflow>,
    from: &str,
    to: String,
    tag: &str,
    etag: Option<String>,
    contract: &ContractMatch,
) -> WorkflowResult<Option<String>> {
    let request = |to: &str| MoveRequest {
        from: from.to_owned(),
        to: to.to_owned(),
        if_etag: etag.clone(),
        dataset: Some(contract.dataset.clone()),
    };
    match move_or_tagged(ctx, to, tag, request).await? {
        (to, MoveResult::Moved(_)) => Ok(Some(to)),
        (_, MoveResult::SourceChanged) => Ok(None),
        (_, MoveResult::DestinationTaken) => Err(ApplicationFailure::non_retryable(
            "rejected/ already holds other files under both names this file can take; \
             nothing moved",
        )
        .into()),
    }
}

fn set_phase(ctx: &mut WorkflowContext<RetractWorkflow>, phase: RetractPhase) {
    ctx.state_mut(|s| s.status.phase = phase);
    ctx.upsert_search_attributes([keyword(sa::PHASE, phase.as_str())]);
}

fn keyword(name: &'static str, value: &str) -> SearchAttributeUpdate {
    SearchAttributeKey::<String>::keyword(name).value_set(value.to_owned())
}
