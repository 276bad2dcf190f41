//! `OnboardDatasetWorkflow`: a backfill of every file under a landing prefix, at most
//! `max_in_flight` unsettled at a time. Each file gets its own `IngestFileWorkflow`, under the id
//! an event would have used, so files that already have one are not onboarded twice. A file
//! counts as settled when it is promoted, rejected or waiting for review, so quarantined files
//! never hold the backfill up, and a slow file holds up only its own slot. Crawls and transforms
//! are left to the backfill: once every file has settled it asks for one crawl of everything it
//! promoted, so a backfill of thousands of files is one crawl and one transform, not dozens.

use std::time::Duration;

use lakegate_activities::{NotifyActivities, PageRequest, StartRequest, SweepActivities};
use lakegate_models::{BackfillInput, BackfillProgress, WorkflowInput, names};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::options;

/// First wait between checks when nothing settled; doubles up to [`MAX_POLL`].
const MIN_POLL: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(30);

#[workflow]
pub struct OnboardDatasetWorkflow {
    input: BackfillInput,
    /// Why the start input did not decode (the run fails at once; see `crate::start`).
    malformed: Option<String>,
    progress: BackfillProgress,
}

#[workflow_methods]
impl OnboardDatasetWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: WorkflowInput<BackfillInput>) -> Self {
        let (input, malformed) = input.split();
        let progress = input.progress.clone();
        Self {
            input,
            malformed,
            progress,
        }
    }

    #[run(name = names::ONBOARD_DATASET_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<BackfillProgress> {
        if let Some(why) = ctx.state(|s| s.malformed.clone()) {
            return Err(crate::malformed_input(names::ONBOARD_DATASET_WORKFLOW, &why).into());
        }
        let input = ctx.state(|s| s.input.clone());
        let max_in_flight = input.max_in_flight.max(1) as usize;
        let mut cursor = input.cursor.clone();
        let mut in_flight = input.in_flight.clone();
        let mut listing_done = input.listing_done;
        let mut to_crawl = input.to_crawl.clone();
        if ctx.state(|s| s.progress.total.is_none()) {
            let total = ctx
                .execute_activity(
                    SweepActivities::count_landing,
                    input.prefix.clone(),
                    options::bulk(),
                )
                .await?;
            ctx.state_mut(|s| s.progress.total = Some(total));
        }
        let mut gap = MIN_POLL;
        for _ in 0..input.rounds_per_run.max(1) {
            if !listing_done && in_flight.len() < max_in_flight {
                let page = ctx
                    .execute_activity(
                        SweepActivities::list_landing_page,
                        PageRequest {
                            prefix: input.prefix.clone(),
                            after: cursor.clone(),
                            limit: (max_in_flight - in_flight.len()) as u32,
                        },
                        options::bulk(),
                    )
                    .await?;
                listing_done = page.exhausted;
                cursor = page.cursor.or(cursor);
                if !page.files.is_empty() {
                    let count = page.files.len() as u64;
                    let started = ctx
                        .execute_activity(
                            SweepActivities::start_ingests,
                            StartRequest {
                                files: page.files,
                                review_timeout_secs: input.review_timeout_secs,
                                crawl_later: true,
                            },
                            options::bulk(),
                        )
                        .await?;
                    in_flight.extend(started.workflow_ids);
                    ctx.state_mut(|s| {
                        s.progress.files += count;
                        s.progress.already_known += started.already_known;
                    });
                }
            }
            if in_flight.is_empty() {
                if listing_done {
                    let mut crawls = Vec::new();
                    for file in to_crawl {
                        if let Some(id) = ctx
                            .execute_activity(
                                NotifyActivities::notify_crawl,
                                file,
                                options::short(),
                            )
                            .await?
                            && !crawls.contains(&id)
                        {
                            crawls.push(id);
                        }
                    }
                    ctx.state_mut(|s| {
                        s.progress.crawl_workflow_ids = crawls;
                        s.progress.done = true;
                    });
                    return Ok(ctx.state(|s| s.progress.clone()));
                }
                // Every file of that page had moved on already; list the next one.
                continue;
            }
            let settled = ctx
                .execute_activity(
                    SweepActivities::settled_ingests,
                    in_flight.clone(),
                    options::bulk(),
                )
                .await?;
            if settled.is_empty() {
                ctx.timer(gap).await;
                gap = (gap * 2).min(MAX_POLL);
            } else {
                in_flight.retain(|id| !settled.iter().any(|s| s.workflow_id == *id));
                let failed = settled.iter().filter(|s| s.failed).count() as u64;
                ctx.state_mut(|s| {
                    s.progress.settled += settled.len() as u64;
                    s.progress.failed += failed;
                });
                for file in settled.into_iter().filter_map(|s| s.promoted) {
                    if let Err(at) = to_crawl.binary_search(&file) {
                        to_crawl.insert(at, file);
                    }
                }
                gap = MIN_POLL;
            }
        }
        let next = BackfillInput {
            cursor,
            in_flight,
            listing_done,
            to_crawl,
            progress: ctx.state(|s| s.progress.clone()),
            ..input
        };
        ctx.continue_as_new(next.into(), ContinueAsNewOptions::default())?;
        unreachable!("continue_as_new always returns an error")
    }

    #[query(name = names::PROGRESS_QUERY)]
    pub fn get_progress(&self, _ctx: &WorkflowContextView) -> BackfillProgress {
        self.progress.clone()
    }
}
