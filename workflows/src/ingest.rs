//! `IngestFileWorkflow`: one file version from landing/ to raw/ (or, through quarantine and a
//! person's decision, to raw/ or rejected/).

mod alerting;
mod in_steps;
mod review;

use std::time::{Duration, UNIX_EPOCH};

use lakegate_activities::{
    FirstPass, IngestActivities, MoveRequest, MoveResult, NotifyActivities,
    ValidateAndPromoteRequest,
};
use lakegate_models::keys::{fitted, raw_destination};
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{
    AlertKind, ContractMatch, Decision, IgnoredReview, IngestInput, IngestOutcome, IngestPhase,
    IngestStatus, PromotedFile, ReviewOutcome, ReviewSignal, WorkflowInput, Zone,
    civil_date_from_unix,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use self::in_steps::first_pass_in_steps;
use self::review::Reviews;
use crate::moves::move_or_tagged;
use crate::{alerts, options, patches};

/// Reason recorded when no contract claims a landing key.
pub const NO_CONTRACT_REASON: &str = "no contract matches";
/// Reason recorded when the file in landing/ was replaced after validation read it: the bytes
/// there now were never validated, so a person decides.
pub const CHANGED_REASON: &str = "changed during validation";

/// The rule a start outside landing/ breaks (the start of its failure message).
pub const LANDING_ONLY_RULE: &str = "IngestFileWorkflow moves only keys under landing/";

#[workflow]
pub struct IngestFileWorkflow {
    input: IngestInput,
    /// Why the start input did not decode (then `input` is a placeholder and the run fails).
    malformed: Option<String>,
    status: IngestStatus,
    reviews: Reviews,
}

#[workflow_methods]
impl IngestFileWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: WorkflowInput<IngestInput>) -> Self {
        let (input, malformed) = input.split();
        let status = IngestStatus::new(input.key.clone());
        Self {
            input,
            malformed,
            status,
            reviews: Reviews::default(),
        }
    }

    #[run(name = names::INGEST_FILE_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<IngestOutcome> {
        if let Some(why) = ctx.state(|s| s.malformed.clone()) {
            return Err(crate::malformed_input(names::INGEST_FILE_WORKFLOW, &why).into());
        }
        let input = ctx.state(|s| s.input.clone());
        // The trust boundary: only landing/ is this workflow's to take from. `patched` is called
        // on the refusing branch alone, so a landing key's history gets no marker (unchanged
        // command sequence) and a run recorded before the check replays down its old path.
        let zone = Zone::of_key(&input.key);
        if zone != Some(Zone::Landing) && ctx.patched(patches::INGEST_LANDING_ONLY) {
            return Err(ApplicationFailure::non_retryable(outside_landing(zone)).into());
        }
        // Workflow time is replay-safe; the partition date is the day the run started.
        let started = ctx.workflow_time().unwrap_or(UNIX_EPOCH);
        let ingest_date = civil_date_from_unix(
            started
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        );
        let first = if ctx.patched(patches::INGEST_ONE_ROUND_TRIP) {
            first_pass(ctx, &input, &ingest_date).await?
        } else {
            first_pass_in_steps(ctx, &input, &ingest_date).await?
        };
        let (contract, mut reason, read_etag) = match first {
            Start::Promoted => {
                ctx.state_mut(|s| {
                    if let Some(phase) = s.reviews.pending_early() {
                        s.status.ignored_reviews.push(IgnoredReview {
                            reason: format!(
                                "it came while the file was {}, and the file passed validation",
                                phase.as_str()
                            ),
                        });
                    }
                });
                return Ok(ctx.state(|s| s.status.clone()));
            }
            Start::Quarantine {
                contract,
                reason,
                read_etag,
            } => (contract, reason, read_etag),
        };
        let to_quarantine = fitted(&Zone::rehome(&input.key, Zone::Quarantine), None);
        // A report names the bytes it read: if those are gone, it must not stand as the reason.
        let quarantined = match move_to(
            ctx,
            &input,
            &input.key,
            to_quarantine.clone(),
            read_etag.as_deref(),
            contract.as_ref(),
        )
        .await?
        {
            Some(key) => key,
            None => {
                reason = CHANGED_REASON.to_owned();
                let again = move_to(
                    ctx,
                    &input,
                    &input.key,
                    to_quarantine,
                    None,
                    contract.as_ref(),
                );
                moved(again.await?)?
            }
        };
        ctx.state_mut(|s| {
            s.status.zone = Zone::Quarantine;
            s.status.key = quarantined.clone();
            s.status.quarantine_reason = Some(reason.clone());
        });
        ctx.upsert_search_attributes([keyword(sa::QUARANTINE_REASON, &reason)]);
        set_phase(ctx, IngestPhase::AwaitingReview);
        // State only (no command), so histories recorded before these fields replay unchanged.
        let since = ctx
            .workflow_time()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        ctx.state_mut(|s| {
            s.status.awaiting_review_since = Some(since);
            s.status.review_deadline = Some(since.saturating_add(input.review_timeout_secs));
        });
        // A signal sent before there was a report to read must not decide: the reviewer has to
        // see what failed. Runs recorded before the patch applied it here.
        if let Some(early) = ctx.state(|s| s.reviews.pending_early())
            && ctx.patched(patches::INGEST_REVIEW_IN_QUARANTINE_ONLY)
        {
            ctx.state_mut(|s| {
                s.reviews.drop_early();
                s.status.ignored_reviews.push(IgnoredReview {
                    reason: format!(
                        "it came while the file was {}, before there was a report to review; \
                         review it now that it awaits review",
                        early.as_str()
                    ),
                });
            });
        }

        let deadline = Duration::from_secs(input.review_timeout_secs);
        // Tell the reviewers (see the patch). The webhooks may be down for a while: the wait's
        // timers then count from the quarantine, not from when the alert got through.
        let alerting = ctx.patched(patches::INGEST_ALERTS);
        let (mut remaining, mut warn_after) = (deadline, None);
        if alerting {
            let alert = alerting::about(ctx, AlertKind::FileQuarantined);
            let lead = alerts::send(ctx, alert)
                .await
                .and_then(|receipt| receipt.review_warning_secs);
            let elapsed = alerting::now_secs(ctx).saturating_sub(since);
            remaining = deadline.saturating_sub(Duration::from_secs(elapsed));
            warn_after = alerting::warning_after(input.review_timeout_secs, lead, elapsed);
        }
        // One timer for the whole wait (see the patch); runs recorded before it re-armed the
        // timer on every iteration and must keep doing so to replay.
        // The timer lives across iterations, while `ctx` is lent to activities: it borrows a
        // clone of the context (a handle to the same run).
        let timer_ctx = ctx.clone();
        let mut whole_wait = ctx
            .patched(patches::INGEST_ONE_REVIEW_DEADLINE)
            .then(|| Box::pin(timer_ctx.timer(remaining)));
        let warning_ctx = ctx.clone();
        let mut warning = warn_after.map(|after| Box::pin(warning_ctx.timer(after)));
        let mut contract = contract;
        // Rejected by a reviewer rather than by the deadline: the review gets an answer.
        let mut by_review = false;
        loop {
            let decided = if let Some(whole_wait) = whole_wait.as_mut() {
                let mut whole_wait = whole_wait.as_mut();
                if let Some(warn) = warning.as_mut() {
                    let mut warn = warn.as_mut();
                    let woke = temporalio_sdk::workflows::select! {
                        _ = ctx.wait_condition(|s| s.reviews.has_pending()) => Some(true),
                        _ = whole_wait => Some(false),
                        _ = warn => None,
                    };
                    let Some(decided) = woke else {
                        warning = None;
                        let alert = alerting::about(ctx, AlertKind::ReviewDeadlineNear);
                        alerts::send(ctx, alert).await;
                        continue;
                    };
                    decided
                } else {
                    temporalio_sdk::workflows::select! {
                        _ = ctx.wait_condition(|s| s.reviews.has_pending()) => true,
                        _ = whole_wait => false,
                    }
                }
            } else {
                temporalio_sdk::workflows::select! {
                    _ = ctx.wait_condition(|s| s.reviews.has_pending()) => true,
                    _ = ctx.timer(deadline) => false,
                }
            };
            let review = ctx.state_mut(|s| s.reviews.take());
            match review {
                None if !decided => {
                    ctx.state_mut(|s| s.status.review_timed_out = true);
                    if alerting {
                        let alert = alerting::about(ctx, AlertKind::ReviewTimedOut);
                        alerts::send(ctx, alert).await;
                    }
                    break;
                }
                None => continue,
                Some(review) => {
                    let approve = review.decision == Decision::Approve;
                    ctx.state_mut(|s| s.status.review = Some(review));
                    if !approve {
                        by_review = true;
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
                            s.reviews.answer(ReviewOutcome::Waiting {
                                reason: format!(
                                    "approved, but {NO_CONTRACT_REASON} this key yet: add one \
                                     and approve again, or reject (the deadline stands)"
                                ),
                            });
                        });
                        continue;
                    };
                    // The reviewer decides on the bytes in quarantine as they are.
                    promote(
                        ctx,
                        &input,
                        &quarantined,
                        contract,
                        &ingest_date,
                        None,
                        true,
                    )
                    .await?;
                    ctx.state_mut(|s| {
                        let key = s.status.key.clone();
                        s.reviews.answer(ReviewOutcome::Promoted { key });
                    });
                    handlers_done(ctx).await;
                    return Ok(ctx.state(|s| s.status.clone()));
                }
            }
        }

        set_phase(ctx, IngestPhase::Rejecting);
        let rejected = moved(
            move_to(
                ctx,
                &input,
                &quarantined,
                fitted(&Zone::rehome(&quarantined, Zone::Rejected), None),
                None,
                contract.as_ref(),
            )
            .await?,
        )?;
        ctx.state_mut(|s| {
            s.status.zone = Zone::Rejected;
            if by_review {
                s.reviews.answer(ReviewOutcome::Rejected {
                    key: rejected.clone(),
                });
            }
            s.status.key = rejected;
        });
        set_phase(ctx, IngestPhase::Rejected);
        handlers_done(ctx).await;
        Ok(ctx.state(|s| s.status.clone()))
    }

    /// Approve or reject a quarantined file, for the Web UI's signal form and older clients (new
    /// clients use the `review` Update, which answers). A signal cannot answer, so the status
    /// says what became of each one:
    /// - the first readable one while the file awaits review decides;
    /// - one that arrives while the file still resolves or validates is held, and at quarantine
    ///   ignored (there was no report to review yet; runs recorded before the patch
    ///   `ingest-review-in-quarantine-only` applied it) or, if the file passes, ignored too;
    /// - one while another is held, or once the file is promoting, rejecting or settled, is
    ///   ignored;
    /// - ignored ones are listed in `ignored_reviews` with why, never dropped silently.
    ///
    /// The payload is read raw and checked by hand: a typed handler fails every workflow task of
    /// the run when a hand-typed signal does not decode (`"approved"`), wedging it. A signal that
    /// cannot be read is counted in `rejected_reviews` with the field it got wrong, never its text.
    #[signal(name = names::REVIEW_SIGNAL)]
    pub fn review(&mut self, _ctx: &mut SyncWorkflowContext<Self>, signal: serde_json::Value) {
        let signal = match ReviewSignal::from_raw(&signal) {
            Ok(signal) => signal,
            Err(rejected) => {
                self.status.rejected_reviews.push(rejected);
                return;
            }
        };
        if let Err(reason) = self.reviews.offer_signal(signal, self.status.phase) {
            self.status.ignored_reviews.push(IgnoredReview { reason });
        }
    }

    /// Approve or reject a quarantined file and get what came of it ([`ReviewOutcome`]), once
    /// the file has moved (or, approved without a contract, is known to keep waiting). The
    /// validator refuses, with a message naming the field or the rule, a review that does not
    /// read, one before the file is in quarantine, one while another is being acted on and one
    /// after the decision; a refused Update leaves no trace in the history and the file stays
    /// reviewable.
    #[update(name = names::REVIEW_UPDATE)]
    pub async fn review_update(
        ctx: &mut WorkflowContext<Self>,
        review: serde_json::Value,
    ) -> Result<ReviewOutcome, Box<dyn std::error::Error + Send + Sync>> {
        // The validator read it already; replay skips validators, so it is read again here.
        let review = ReviewSignal::from_update(&review).map_err(|rejected| rejected.reason)?;
        let ticket = ctx.state_mut(|s| s.reviews.hold_update(review))?;
        ctx.wait_condition(|s| s.reviews.answer_to(ticket).is_some())
            .await?;
        ctx.state(|s| s.reviews.answer_to(ticket).cloned())
            .ok_or_else(|| "the review was not answered".into())
    }

    /// Raw JSON, so a mistyped decision is refused here with a message, never by a decode error.
    #[update_validator(review_update)]
    pub fn validate_review(
        &self,
        _ctx: &WorkflowContextView,
        review: &serde_json::Value,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.reviews.check_update(&self.status, review)?;
        Ok(())
    }

    #[query(name = names::STATUS_QUERY)]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> IngestStatus {
        self.status.clone()
    }
}

/// Where a run stands after its first pass over the file.
enum Start {
    Promoted,
    /// To quarantine: why, and the ETag the report read (the quarantine move is conditional on it).
    Quarantine {
        contract: Option<ContractMatch>,
        reason: String,
        read_etag: Option<String>,
    },
}

/// The first pass in one activity (see [`patches::INGEST_ONE_ROUND_TRIP`]): resolve, validate
/// and, for a valid file, promote and notify the crawl. The search attributes a valid file gets
/// are set in one upsert per workflow task.
async fn first_pass(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    input: &IngestInput,
    ingest_date: &str,
) -> WorkflowResult<Start> {
    ctx.state_mut(|s| s.status.phase = IngestPhase::Validating);
    ctx.upsert_search_attributes([keyword(sa::PHASE, IngestPhase::Validating.as_str())]);
    let request = ValidateAndPromoteRequest {
        key: input.key.clone(),
        version: input.version.clone(),
        ingest_date: ingest_date.to_owned(),
        notify_crawl: !input.crawl_later,
    };
    let pass = ctx
        .execute_activity(
            IngestActivities::validate_and_promote,
            request,
            options::validate_file(),
        )
        .await?;
    let (contract, report, reason, read_etag) = match pass {
        FirstPass::Promoted {
            contract,
            report,
            key,
            crawl_workflow_id,
        } => {
            let phase = IngestPhase::Promoted;
            ctx.upsert_search_attributes([
                keyword(sa::DATASET, &contract.dataset),
                keyword(sa::TABLE, &contract.table),
                keyword(sa::PHASE, phase.as_str()),
            ]);
            ctx.state_mut(|s| {
                s.status.contract = Some(contract);
                s.status.report = Some(report);
                s.status.zone = Zone::Raw;
                s.status.key = key;
                s.status.crawl_workflow_id = crawl_workflow_id;
                s.status.phase = phase;
            });
            return Ok(Start::Promoted);
        }
        FirstPass::NoContract => {
            return Ok(Start::Quarantine {
                contract: None,
                reason: NO_CONTRACT_REASON.to_owned(),
                read_etag: None,
            });
        }
        FirstPass::Failed { contract, report } => {
            let (reason, etag) = (report.quarantine_reason(), report.etag.clone());
            (contract, report, reason, etag)
        }
        // The bytes in landing/ now were never validated: quarantine them as they are.
        FirstPass::Changed { contract, report } => {
            (contract, report, CHANGED_REASON.to_owned(), None)
        }
    };
    ctx.upsert_search_attributes([
        keyword(sa::DATASET, &contract.dataset),
        keyword(sa::TABLE, &contract.table),
    ]);
    ctx.state_mut(|s| {
        s.status.contract = Some(contract.clone());
        s.status.report = Some(report);
    });
    Ok(Start::Quarantine {
        contract: Some(contract),
        reason,
        read_etag,
    })
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
    if_etag: Option<&str>,
    notify_crawl: bool,
) -> WorkflowResult<bool> {
    set_phase(ctx, IngestPhase::Promoting);
    let to = raw_destination(contract, ingest_date, &input.key);
    let Some(promoted) = move_to(ctx, input, from, to, if_etag, Some(contract)).await? else {
        return Ok(false);
    };
    let file = PromotedFile::new(contract, &promoted);
    ctx.state_mut(|s| {
        s.status.zone = Zone::Raw;
        s.status.key = promoted;
    });
    if notify_crawl {
        let crawl = ctx
            .execute_activity(NotifyActivities::notify_crawl, file, options::short())
            .await?;
        ctx.state_mut(|s| s.status.crawl_workflow_id = crawl);
    }
    set_phase(ctx, IngestPhase::Promoted);
    Ok(true)
}

/// Moves `from` to `to`; if another file already holds `to`, to a name tagged with this file's
/// version instead, so two different files with one name are both kept. With `if_etag`, only
/// while `from` still has that ETag: `None` when it was replaced (nothing moved). `contract`
/// only labels the activity's metrics.
async fn move_to(
    ctx: &mut WorkflowContext<IngestFileWorkflow>,
    input: &IngestInput,
    from: &str,
    to: String,
    if_etag: Option<&str>,
    contract: Option<&ContractMatch>,
) -> WorkflowResult<Option<String>> {
    let request = |to: &str| MoveRequest {
        from: from.to_owned(),
        to: to.to_owned(),
        if_etag: if_etag.map(str::to_owned),
        dataset: contract.map(|c| c.dataset.clone()),
    };
    // A taken tagged name holds this very version (an earlier attempt's move): moved.
    let (to, moved) = move_or_tagged(ctx, to, &input.version, request).await?;
    Ok((moved != MoveResult::SourceChanged).then_some(to))
}

/// Why a start outside landing/ is refused: the rule and the zone, never the key (a key can
/// hold a name).
fn outside_landing(zone: Option<Zone>) -> String {
    let zone = zone.map_or("no known zone", Zone::prefix);
    format!("{LANDING_ONLY_RULE}; the start's key is in {zone}")
}

/// The key an unconditional move reached (it cannot report a changed source).
fn moved(key: Option<String>) -> WorkflowResult<String> {
    key.ok_or_else(|| {
        ApplicationFailure::non_retryable("an unconditional move reported a changed source").into()
    })
}

/// Waits until every `review` Update handler has returned its answer: a run that completed first
/// would leave its caller with "workflow completed" instead of the outcome. No command, so runs
/// recorded before the Update replay unchanged.
async fn handlers_done(ctx: &mut WorkflowContext<IngestFileWorkflow>) {
    let view = ctx.clone();
    // Cancellation ends the wait as well; the run completes either way.
    let _ = ctx
        .wait_condition(move |_| view.all_handlers_finished())
        .await;
}

fn set_phase(ctx: &mut WorkflowContext<IngestFileWorkflow>, phase: IngestPhase) {
    ctx.state_mut(|s| s.status.phase = phase);
    ctx.upsert_search_attributes([keyword(sa::PHASE, phase.as_str())]);
}

fn keyword(name: &'static str, value: &str) -> SearchAttributeUpdate {
    SearchAttributeKey::<String>::keyword(name).value_set(value.to_owned())
}
