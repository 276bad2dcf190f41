//! `IngestFileWorkflow`: one file version from landing/ to raw/ (or, through quarantine and a
//! person's decision, to raw/ or rejected/).

use std::time::{Duration, UNIX_EPOCH};

use lakegate_activities::{
    IngestActivities, MoveRequest, MoveResult, NotifyActivities, ValidateRequest,
};
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{
    ContractMatch, Decision, IngestInput, IngestOutcome, IngestPhase, IngestStatus, PromotedFile,
    ReviewSignal, Verdict, Zone, civil_date_from_unix,
};
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::options;

/// Reason recorded when no contract claims a landing key.
pub const NO_CONTRACT_REASON: &str = "no contract matches";

#[workflow]
pub struct IngestFileWorkflow {
    input: IngestInput,
    status: IngestStatus,
    /// The first `review` signal not yet acted on.
    pending_review: Option<ReviewSignal>,
}

#[workflow_methods]
impl IngestFileWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: IngestInput) -> Self {
        let status = IngestStatus::new(input.key.clone());
        Self {
            input,
            status,
            pending_review: None,
        }
    }

    #[run(name = names::INGEST_FILE_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<IngestOutcome> {
        let input = ctx.state(|s| s.input.clone());
        // Workflow time is replay-safe; the partition date is the day the run started.
        let started = ctx.workflow_time().unwrap_or(UNIX_EPOCH);
        let ingest_date = civil_date_from_unix(
            started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        set_phase(ctx, IngestPhase::Resolving);

        let contract = resolve(ctx, &input.key).await?;
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
                ctx.state_mut(|s| s.status.report = Some(report));
                verdict
            }
        };

        if let (Ok(()), Some(contract)) = (&verdict, &contract) {
            promote(ctx, &input, &input.key, contract, &ingest_date).await?;
            return Ok(ctx.state(|s| s.status.clone()));
        }
        let reason = verdict.err().unwrap_or_default();
        let quarantined = move_to(
            ctx,
            &input,
            &input.key,
            Zone::rehome(&input.key, Zone::Quarantine),
        )
        .await?;
        ctx.state_mut(|s| {
            s.status.zone = Zone::Quarantine;
            s.status.key = quarantined.clone();
            s.status.quarantine_reason = Some(reason.clone());
        });
        ctx.upsert_search_attributes([keyword(sa::QUARANTINE_REASON, &reason)]);
        set_phase(ctx, IngestPhase::AwaitingReview);

        let deadline = Duration::from_secs(input.review_timeout_secs);
        let mut contract = contract;
        loop {
            let decided = temporalio_sdk::workflows::select! {
                _ = ctx.wait_condition(|s| s.pending_review.is_some()) => true,
                _ = ctx.timer(deadline) => false,
            };
            let review = ctx.state_mut(|s| s.pending_review.take());
            match review {
                None if !decided => {
                    ctx.state_mut(|s| s.status.review_timed_out = true);
                    break;
                }
                None => continue,
                Some(review) => {
                    let approve = review.decision == Decision::Approve;
                    ctx.state_mut(|s| s.status.review = Some(review));
                    if !approve {
                        break;
                    }
                    // A file no contract claimed can only be promoted once one does: resolve
                    // again (the steward may have just added it), else keep waiting.
                    if contract.is_none() {
                        contract = resolve(ctx, &input.key).await?;
                    }
                    let Some(contract) = &contract else {
                        ctx.state_mut(|s| {
                            s.status.quarantine_reason = Some(format!(
                                "{NO_CONTRACT_REASON}; approval needs a contract for this key"
                            ));
                        });
                        continue;
                    };
                    promote(ctx, &input, &quarantined, contract, &ingest_date).await?;
                    return Ok(ctx.state(|s| s.status.clone()));
                }
            }
        }

        set_phase(ctx, IngestPhase::Rejecting);
        let rejected = move_to(
            ctx,
            &input,
            &quarantined,
            Zone::rehome(&quarantined, Zone::Rejected),
        )
        .await?;
        ctx.state_mut(|s| {
            s.status.zone = Zone::Rejected;
            s.status.key = rejected;
        });
        set_phase(ctx, IngestPhase::Rejected);
        Ok(ctx.state(|s| s.status.clone()))
    }

    /// Approve or reject a quarantined file. Only the first decision counts; later ones are
    /// ignored (they stay visible in the history).
    #[signal(name = names::REVIEW_SIGNAL)]
    pub fn review(&mut self, _ctx: &mut SyncWorkflowContext<Self>, signal: ReviewSignal) {
        if self.pending_review.is_none()
            && matches!(
                self.status.phase,
                IngestPhase::AwaitingReview | IngestPhase::Validating | IngestPhase::Resolving
            )
        {
            self.pending_review = Some(signal);
        }
    }

    #[query(name = names::STATUS_QUERY)]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> IngestStatus {
        self.status.clone()
    }
}

async fn resolve(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    key: &str,
) -> WorkflowResult<Option<ContractMatch>> {
    let contract = ctx
        .execute_activity(
            IngestActivities::resolve_contract,
            key.to_owned(),
            options::short(),
        )
        .await?;
    if let Some(contract) = &contract {
        ctx.upsert_search_attributes([
            keyword(sa::DATASET, &contract.dataset),
            keyword(sa::TABLE, &contract.table),
        ]);
        ctx.state_mut(|s| s.status.contract = Some(contract.clone()));
    }
    Ok(contract)
}

async fn promote(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    input: &IngestInput,
    from: &str,
    contract: &ContractMatch,
    ingest_date: &str,
) -> WorkflowResult<()> {
    set_phase(ctx, IngestPhase::Promoting);
    let file_name = input.key.rsplit('/').next().unwrap_or(&input.key);
    let to = format!(
        "{}{}/{}/ingest_date={ingest_date}/{file_name}",
        Zone::Raw.prefix(),
        contract.dataset,
        contract.table
    );
    let promoted = move_to(ctx, input, from, to).await?;
    let prefix = promoted
        .rsplit_once('/')
        .map_or(String::new(), |(dir, _)| format!("{dir}/"));
    ctx.state_mut(|s| {
        s.status.zone = Zone::Raw;
        s.status.key = promoted;
    });
    let file = PromotedFile {
        dataset: contract.dataset.clone(),
        table: contract.table.clone(),
        prefix,
    };
    let crawl = ctx
        .execute_activity(NotifyActivities::notify_crawl, file, options::short())
        .await?;
    ctx.state_mut(|s| s.status.crawl_workflow_id = crawl);
    set_phase(ctx, IngestPhase::Promoted);
    Ok(())
}

/// Moves `from` to `to`; if another file already holds `to`, to a name tagged with this file's
/// version instead, so two different files with one name are both kept.
async fn move_to(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    input: &IngestInput,
    from: &str,
    to: String,
) -> WorkflowResult<String> {
    let request = MoveRequest {
        from: from.to_owned(),
        to: to.clone(),
    };
    match ctx
        .execute_activity(IngestActivities::move_object, request, options::short())
        .await?
    {
        MoveResult::Moved(_) => Ok(to),
        MoveResult::DestinationTaken => {
            let tagged = version_tagged(&to, &input.version);
            let request = MoveRequest {
                from: from.to_owned(),
                to: tagged.clone(),
            };
            ctx.execute_activity(IngestActivities::move_object, request, options::short())
                .await?;
            Ok(tagged)
        }
    }
}

/// `a/b/patients.csv.gz` → `a/b/patients.<version12>.csv.gz`.
fn version_tagged(key: &str, version: &str) -> String {
    let tag: String = version
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
    let (stem, ext) = name.split_once('.').map_or((name, ""), |(s, e)| (s, e));
    let dot = if ext.is_empty() { "" } else { "." };
    let slash = if dir.is_empty() { "" } else { "/" };
    format!("{dir}{slash}{stem}.{tag}{dot}{ext}")
}

fn set_phase(ctx: &mut WorkflowContext<IngestFileWorkflow>, phase: IngestPhase) {
    ctx.state_mut(|s| s.status.phase = phase);
    ctx.upsert_search_attributes([keyword(sa::PHASE, phase.as_str())]);
}

fn keyword(name: &'static str, value: &str) -> SearchAttributeUpdate {
    SearchAttributeKey::<String>::keyword(name).value_set(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::version_tagged;

    #[test]
    fn version_tag_goes_before_the_extensions() {
        assert_eq!(
            version_tagged("raw/e/t/p.csv.gz", "ab:cd-ef"),
            "raw/e/t/p.abcdef.csv.gz"
        );
        assert_eq!(version_tagged("p", "0123456789abcdef"), "p.0123456789ab");
    }
}
