//! The first pass of `IngestFileWorkflow` as runs recorded before the one-round-trip patch took
//! it. Kept exactly, so those runs replay; new runs never come here.

use lakegate_activities::{IngestActivities, ValidateRequest};
use lakegate_models::{IngestInput, IngestPhase, Verdict};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use super::{
    CHANGED_REASON, IngestFileWorkflow, NO_CONTRACT_REASON, Start, promote, resolve, set_phase,
};
use crate::options;
#[cfg(doc)]
use crate::patches;

/// The first pass as runs recorded before [`patches::INGEST_ONE_ROUND_TRIP`] took it: resolve,
/// validate, move and notify as separate activities. Kept exactly so those runs replay.
pub(super) async fn first_pass_in_steps(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    input: &IngestInput,
    ingest_date: &str,
) -> WorkflowResult<Start> {
    set_phase(ctx, IngestPhase::Resolving);

    let contract = resolve(ctx, &input.key).await?;
    let mut read_etag = None;
    let verdict = match &contract {
        None => Err(NO_CONTRACT_REASON.to_owned()),
        Some(contract) => {
            set_phase(ctx, IngestPhase::Validating);
            let report = ctx
                .execute_activity(
                    IngestActivities::validate_object,
                    ValidateRequest {
                        key: input.key.clone(),
                        contract: contract.clone(),
                    },
                    options::validate_file(),
                )
                .await?;
            let verdict = match report.verdict {
                Verdict::Pass => Ok(()),
                Verdict::Fail => Err(report.quarantine_reason()),
            };
            read_etag = report.etag.clone();
            ctx.state_mut(|s| s.status.report = Some(report));
            verdict
        }
    };

    let reason = match (verdict, &contract) {
        (Ok(()), Some(contract)) => {
            if promote(
                ctx,
                input,
                &input.key,
                contract,
                ingest_date,
                read_etag.as_deref(),
                !input.crawl_later,
            )
            .await?
            {
                return Ok(Start::Promoted);
            }
            CHANGED_REASON.to_owned()
        }
        (verdict, _) => verdict.err().unwrap_or_default(),
    };
    Ok(Start::Quarantine {
        contract,
        reason,
        read_etag,
    })
}
