//! `OnboardDatasetWorkflow`: a backfill of every file under a landing prefix, `max_in_flight` at
//! a time. Each file gets its own `IngestFileWorkflow`, under the id an event would have used, so
//! files that already have one are not onboarded twice. A batch counts as done when each of its
//! files is promoted, rejected or waiting for review, so quarantined files never hold the
//! backfill up. Crawls and transforms follow through the usual coalescing crawl workflow.

use std::time::Duration;

use lakegate_activities::{PageRequest, StartRequest, SweepActivities};
use lakegate_models::{BackfillInput, BackfillProgress, names};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::options;

#[workflow]
pub struct OnboardDatasetWorkflow {
    input: BackfillInput,
    progress: BackfillProgress,
}

#[workflow_methods]
impl OnboardDatasetWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: BackfillInput) -> Self {
        let progress = input.progress.clone();
        Self { input, progress }
    }

    #[run(name = names::ONBOARD_DATASET_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<BackfillProgress> {
        let input = ctx.state(|s| s.input.clone());
        let mut cursor = input.cursor.clone();
        for _ in 0..input.batches_per_run.max(1) {
            let page = ctx
                .execute_activity(
                    SweepActivities::list_landing_page,
                    PageRequest {
                        prefix: input.prefix.clone(),
                        after: cursor.clone(),
                        limit: input.max_in_flight.max(1),
                    },
                    options::validate(),
                )
                .await?;
            let Some(last) = page.files.last() else {
                ctx.state_mut(|s| s.progress.done = true);
                return Ok(ctx.state(|s| s.progress.clone()));
            };
            cursor = Some(last.key.clone());
            let count = page.files.len() as u64;
            let started = ctx
                .execute_activity(
                    SweepActivities::start_ingests,
                    StartRequest {
                        files: page.files,
                        review_timeout_secs: input.review_timeout_secs,
                    },
                    options::validate(),
                )
                .await?;
            ctx.state_mut(|s| {
                s.progress.files += count;
                s.progress.already_known += started.already_known;
            });
            let mut gap = Duration::from_secs(1);
            loop {
                let settled = ctx
                    .execute_activity(
                        SweepActivities::count_settled,
                        started.workflow_ids.clone(),
                        options::validate(),
                    )
                    .await?;
                if settled >= count {
                    ctx.state_mut(|s| s.progress.settled += count);
                    break;
                }
                ctx.timer(gap).await;
                gap = (gap * 2).min(Duration::from_secs(30));
            }
        }
        let next = BackfillInput {
            cursor,
            progress: ctx.state(|s| s.progress.clone()),
            ..input
        };
        ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
        unreachable!("continue_as_new always returns an error")
    }

    #[query(name = names::PROGRESS_QUERY)]
    pub fn get_progress(&self, _ctx: &WorkflowContextView) -> BackfillProgress {
        self.progress.clone()
    }
}
