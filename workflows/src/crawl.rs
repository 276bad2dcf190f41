//! `CrawlWorkflow`: one long-lived workflow per crawler. Promoted files arrive as `new_data`
//! signals (signal-with-start); prefixes are coalesced over a quiet period so a burst of files
//! gives a handful of crawls, the crawl is waited for on durable timers, its catalog changes are
//! recorded, the dataset's transform runs as a child, and the run continues as new every few
//! crawls so its history stays small.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, UNIX_EPOCH};

use lakegate_activities::ports::{CrawlRequest, CrawlStart, CrawlerState, TableInfo};
use lakegate_activities::{CatalogRequest, CrawlActivities};
use lakegate_models::names;
use lakegate_models::{
    CrawlInput, CrawlRecord, CrawlStatus, NewData, TableChange, TableFingerprint, WorkflowInput,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ChildWorkflowOptions, ContinueAsNewOptions, SyncWorkflowContext,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

use crate::transform::TransformWorkflow;
use crate::{options, patches};

mod changes;

use changes::record_changes;

/// How many times a crawl waits out someone else's run before giving up on starting its own.
const MAX_JOINS: u32 = 3;

#[workflow]
pub struct CrawlWorkflow {
    input: CrawlInput,
    /// Why the start input did not decode (the run fails at once; see `crate::start`).
    malformed: Option<String>,
    pending: BTreeSet<String>,
    /// Counts signals, so the quiet period restarts on every arrival, even of a known prefix.
    arrivals: u64,
    phase: &'static str,
    crawls_done: u64,
    /// Crawls that failed in a row (crawl-keep-pending): the next waits out a backoff.
    failures: u32,
    last: Option<CrawlRecord>,
    last_failure: Option<CrawlRecord>,
}

#[workflow_methods]
impl CrawlWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: WorkflowInput<CrawlInput>) -> Self {
        let (input, malformed) = input.split();
        let pending = input.pending.iter().cloned().collect();
        let crawls_done = input.crawls_done;
        let failures = input.failures;
        let last_failure = input.last_failure.clone();
        Self {
            input,
            malformed,
            pending,
            arrivals: 0,
            phase: "waiting",
            crawls_done,
            failures,
            last: None,
            last_failure,
        }
    }

    #[run(name = names::CRAWL_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        if let Some(why) = ctx.state(|s| s.malformed.clone()) {
            return Err(crate::malformed_input(names::CRAWL_WORKFLOW, &why).into());
        }
        let input = ctx.state(|s| s.input.clone());
        let mut crawls_done = input.crawls_done;
        let mut known_tables = input.known_tables.clone();
        let mut crawls_this_run = 0u32;
        if ctx.patched(patches::CRAWL_KEEP_PENDING) {
            return run_keeping_pending(ctx, input).await;
        }
        loop {
            ctx.state_mut(|s| s.phase = "waiting");
            ctx.wait_condition(|s| !s.pending.is_empty()).await?;
            coalesce(ctx, &input).await;
            let prefixes: Vec<String> =
                ctx.state_mut(|s| std::mem::take(&mut s.pending).into_iter().collect());

            ctx.state_mut(|s| s.phase = "crawling");
            crawls_done += 1;
            let mut record = if ctx.patched(patches::CONTRACT_CATALOG) {
                catalog_step(ctx, &input, crawls_done, prefixes, &mut known_tables).await?
            } else {
                crawl_step(
                    ctx,
                    &input,
                    crawls_done,
                    prefixes,
                    &mut known_tables,
                    Listing::Required,
                )
                .await?
            };
            if record.status == "SUCCEEDED" {
                // A crawl or list_tables activity that fails for good does end a run without
                // the crawl-keep-pending patch; the next promoted file's signal-with-start
                // begins a new one.
                transform(ctx, &input, crawls_done, &mut record).await;
            }
            ctx.state_mut(|s| {
                if record.status != "SUCCEEDED" {
                    s.last_failure = Some(record.clone());
                }
                s.last = Some(record);
                s.crawls_done = crawls_done;
            });
            crawls_this_run += 1;

            if crawls_this_run >= input.timing.crawls_per_run.max(1)
                || ctx.continue_as_new_suggested()
            {
                let next = CrawlInput {
                    pending: ctx.state(|s| s.pending.iter().cloned().collect()),
                    crawls_done,
                    known_tables,
                    last_failure: ctx.state(|s| s.last_failure.clone()),
                    ..input
                };
                ctx.continue_as_new(next.into(), ContinueAsNewOptions::default())?;
                unreachable!("continue_as_new always returns an error");
            }
        }
    }

    #[signal(name = names::NEW_DATA_SIGNAL)]
    pub fn new_data(&mut self, _ctx: &mut SyncWorkflowContext<Self>, data: NewData) {
        self.pending.extend(data.prefixes);
        self.arrivals += 1;
    }

    #[query(name = names::STATUS_QUERY)]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> CrawlStatus {
        CrawlStatus {
            phase: self.phase.to_owned(),
            pending_prefixes: self.pending.len(),
            crawls_done: self.crawls_done,
            last: self.last.clone(),
            consecutive_failures: self.failures,
            last_failure: self.last_failure.clone(),
        }
    }
}

fn now(ctx: &WorkflowContext<CrawlWorkflow>) -> Duration {
    ctx.workflow_time()
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Events after which a run continues as new even without the server's suggestion: well below
/// the server's 10,240-event warning, so a burst of signals cannot push a run toward its limit.
pub const HISTORY_BOUND: u32 = 4_000;

/// The loop of runs that have the crawl-keep-pending patch: see [`patches::CRAWL_KEEP_PENDING`].
async fn run_keeping_pending(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: CrawlInput,
) -> WorkflowResult<()> {
    let mut crawls_done = input.crawls_done;
    let mut known_tables = input.known_tables.clone();
    let mut crawls_this_run = 0u32;
    loop {
        ctx.state_mut(|s| s.phase = "waiting");
        ctx.wait_condition(|s| !s.pending.is_empty()).await?;
        let failures = ctx.state(|s| s.failures);
        if failures > 0 {
            ctx.state_mut(|s| s.phase = "backing_off");
            ctx.timer(failure_backoff(&input, failures)).await;
        }
        let history_full = !coalesce_until_history_full(ctx, &input).await;
        if history_full || crawls_this_run >= input.timing.crawls_per_run.max(1) {
            return continue_as_new(ctx, &input, crawls_done, known_tables);
        }
        // A snapshot, not a take: the prefixes leave `pending` only once a crawl covering
        // them succeeded, and prefixes signalled meanwhile stay for the next crawl.
        let prefixes: Vec<String> = ctx.state(|s| s.pending.iter().cloned().collect());
        ctx.state_mut(|s| s.phase = "crawling");
        crawls_done += 1;
        crawls_this_run += 1;
        let step = if ctx.patched(patches::CONTRACT_CATALOG) {
            catalog_step(
                ctx,
                &input,
                crawls_done,
                prefixes.clone(),
                &mut known_tables,
            )
            .await
        } else {
            crawl_step(
                ctx,
                &input,
                crawls_done,
                prefixes.clone(),
                &mut known_tables,
                Listing::BestEffort,
            )
            .await
        };
        let mut record = match step {
            Ok(record) => record,
            Err(WorkflowTermination::Failed(_)) => failed_record(crawls_done, prefixes.clone()),
            Err(other) => return Err(other),
        };
        if record.status == "SUCCEEDED" {
            ctx.state_mut(|s| {
                for prefix in &prefixes {
                    s.pending.remove(prefix);
                }
                s.failures = 0;
            });
            transform(ctx, &input, crawls_done, &mut record).await;
        } else {
            ctx.state_mut(|s| s.failures = s.failures.saturating_add(1));
        }
        ctx.state_mut(|s| {
            if record.status != "SUCCEEDED" {
                s.last_failure = Some(record.clone());
            }
            s.last = Some(record);
            s.crawls_done = crawls_done;
        });
        if ctx.continue_as_new_suggested() || ctx.history_length() >= HISTORY_BOUND {
            return continue_as_new(ctx, &input, crawls_done, known_tables);
        }
    }
}

/// Runs the dataset's transform (if it has one) as a child after crawl number `number`, noting
/// its id and outcome in `record`. A failed transform is recorded, not raised: the crawler keeps
/// serving.
async fn transform(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    number: u64,
    record: &mut CrawlRecord,
) {
    let Some(transform) = &input.transform else {
        return;
    };
    ctx.state_mut(|s| s.phase = "transforming");
    let id = names::transform_workflow_id(&input.crawler, number);
    record.transform_workflow_id = Some(id.clone());
    let started = ctx
        .start_child_workflow(
            TransformWorkflow::run,
            transform.clone(),
            // The Web UI's summary, in clear: the dataset's name only.
            ChildWorkflowOptions::builder()
                .workflow_id(id)
                .static_summary(format!(
                    "Transform dataset {}: dbt stages, then checks",
                    input.dataset
                ))
                .build(),
        )
        .await;
    record.transform_succeeded = Some(match started {
        Ok(child) => child.result().await.is_ok_and(|r| r.succeeded),
        Err(_) => false,
    });
}

/// What a crawl whose activity failed (after its retries) leaves in the record. The activity's
/// error text is Glue's and stays out of the history.
fn failed_record(number: u64, prefixes: Vec<String>) -> CrawlRecord {
    let error = "a crawl activity failed after its retries; the prefixes stay pending";
    new_record(number, prefixes, "ACTIVITY_FAILED", Some(error.into()))
}

/// A step's record before any table change, log or transform is known.
fn new_record(
    number: u64,
    prefixes: Vec<String>,
    status: &str,
    error: Option<String>,
) -> CrawlRecord {
    CrawlRecord {
        number,
        prefixes,
        joined_running: false,
        status: status.to_owned(),
        error,
        tables_created: Vec::new(),
        tables_updated: Vec::new(),
        changes: Vec::new(),
        transform_workflow_id: None,
        transform_succeeded: None,
        log_key: None,
    }
}

/// The wait before the next attempt after `failures` failed crawls in a row: the quiet period
/// doubled per failure, at most an hour.
fn failure_backoff(input: &CrawlInput, failures: u32) -> Duration {
    let base = input.timing.quiet_period_secs.max(1);
    let factor = 1u64 << failures.min(12);
    Duration::from_secs(base.saturating_mul(factor).min(3600))
}

fn continue_as_new(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    crawls_done: u64,
    known_tables: BTreeMap<String, TableFingerprint>,
) -> WorkflowResult<()> {
    let next = CrawlInput {
        pending: ctx.state(|s| s.pending.iter().cloned().collect()),
        crawls_done,
        known_tables,
        failures: ctx.state(|s| s.failures),
        last_failure: ctx.state(|s| s.last_failure.clone()),
        ..input.clone()
    };
    ctx.continue_as_new(next.into(), ContinueAsNewOptions::default())?;
    unreachable!("continue_as_new always returns an error")
}

/// [`coalesce`], but returns `false` (at once) when the run should continue as new: the server
/// suggests it or the history reached [`HISTORY_BOUND`], as a stream of signals can do without
/// a single crawl.
async fn coalesce_until_history_full(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
) -> bool {
    coalesce_or_stop(ctx, input, true).await
}

/// Returns once no signal arrived for the quiet period, or the first prefix has waited the
/// maximum.
async fn coalesce(ctx: &mut WorkflowContext<CrawlWorkflow>, input: &CrawlInput) {
    coalesce_or_stop(ctx, input, false).await;
}

/// The quiet-period wait of [`coalesce`]; with `history_bound`, also `false` as soon as the run
/// should continue as new (see [`coalesce_until_history_full`]). Both read the same timers and
/// conditions, so either's history replays as before.
async fn coalesce_or_stop(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    history_bound: bool,
) -> bool {
    let started = now(ctx);
    let max_wait = Duration::from_secs(input.timing.max_wait_secs);
    loop {
        if history_bound
            && (ctx.continue_as_new_suggested() || ctx.history_length() >= HISTORY_BOUND)
        {
            return false;
        }
        let waited = now(ctx).saturating_sub(started);
        if waited >= max_wait {
            return true;
        }
        let quiet = Duration::from_secs(input.timing.quiet_period_secs).min(max_wait - waited);
        let seen = ctx.state(|s| s.arrivals);
        let arrived = temporalio_sdk::workflows::select! {
            _ = ctx.wait_condition(move |s| s.arrivals != seen) => true,
            _ = ctx.timer(quiet) => false,
        };
        if !arrived {
            return true;
        }
    }
}

/// The catalog step before contracts: crawl every prefix, then read the catalog back to see what
/// the crawl changed.
async fn crawl_step(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    number: u64,
    prefixes: Vec<String>,
    known_tables: &mut BTreeMap<String, TableFingerprint>,
    listing: Listing,
) -> WorkflowResult<CrawlRecord> {
    let mut record = crawl(ctx, input, number, prefixes).await?;
    if record.status == "SUCCEEDED" {
        match list_tables(ctx, input).await {
            Ok(tables) => record_changes(&mut record, known_tables, &tables, &input.dataset),
            Err(_) if listing == Listing::BestEffort => {
                record.error = Some("listing the catalog's tables failed".into())
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(record)
}

/// What a failed listing after a successful crawl does to the step.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// It fails the step (and, before crawl-keep-pending, the run).
    Required,
    /// The crawl-keep-pending loop before contracts: the crawl succeeded, so the prefixes are in
    /// the catalog; only the report is missing, and the next listing catches up.
    BestEffort,
}

/// The database's tables, read back after a crawl.
async fn list_tables(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
) -> Result<Vec<TableInfo>, ActivityExecutionError> {
    ctx.execute_activity(
        CrawlActivities::list_tables,
        input.database.clone(),
        options::short(),
    )
    .await
}

/// Registers the tables whose contracts declare columns (one activity, seconds), then crawls
/// what is left, if anything. The record lists every prefix and both halves' changes.
async fn catalog_step(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    number: u64,
    prefixes: Vec<String>,
    known_tables: &mut BTreeMap<String, TableFingerprint>,
) -> WorkflowResult<CrawlRecord> {
    let step = ctx
        .execute_activity(
            CrawlActivities::register_catalog,
            CatalogRequest {
                database: input.database.clone(),
                prefixes: prefixes.clone(),
            },
            options::short(),
        )
        .await?;
    let mut record = if step.crawl.is_empty() {
        new_record(number, Vec::new(), "SUCCEEDED", None)
    } else {
        crawl_step(
            ctx,
            input,
            number,
            step.crawl,
            known_tables,
            Listing::Required,
        )
        .await?
    };
    record.prefixes = prefixes;
    for change in &step.changes {
        if change.created {
            record.tables_created.push(change.table.clone());
        } else if change.is_change() {
            record.tables_updated.push(change.table.clone());
        }
    }
    let crawled = record
        .tables_created
        .iter()
        .chain(&record.tables_updated)
        .filter(|t| !step.changes.iter().any(|c| &c.table == *t))
        .map(|t| TableChange {
            table: t.clone(),
            created: record.tables_created.contains(t),
            ..TableChange::default()
        })
        .collect::<Vec<_>>();
    record.changes = step.changes;
    record.changes.extend(crawled);
    if let Some(error) = step.error {
        record.status = "FAILED".to_owned();
        record.log_key = record.log_key.or(step.log_key);
        record.error = Some(match record.error.take() {
            Some(crawl_error) => format!("{error}; crawl: {crawl_error}"),
            None => error,
        });
    }
    Ok(record)
}

/// Starts the crawler on `prefixes` and waits for it. "Already running" means waiting for that
/// run, then starting ours, since the other run may not cover these prefixes.
async fn crawl(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
    number: u64,
    prefixes: Vec<String>,
) -> WorkflowResult<CrawlRecord> {
    let request = CrawlRequest {
        crawler: input.crawler.clone(),
        database: input.database.clone(),
        prefixes: prefixes.clone(),
    };
    let mut joined_running = false;
    for join in 0..=MAX_JOINS {
        let start = ctx
            .execute_activity(
                CrawlActivities::start_crawl,
                request.clone(),
                options::short(),
            )
            .await?;
        let finished = wait_until_ready(ctx, input).await?;
        if start == CrawlStart::JoinedRunning && join < MAX_JOINS {
            joined_running = true;
            continue;
        }
        let (status, error, log_key) = match finished {
            None => (
                "TIMED_OUT".to_owned(),
                Some(format!(
                    "still running after {} s",
                    input.timing.crawl_deadline_secs
                )),
                None,
            ),
            Some(last) => (last.status, last.error_message, last.log_key),
        };
        return Ok(CrawlRecord {
            joined_running,
            log_key,
            ..new_record(number, prefixes, &status, error)
        });
    }
    unreachable!("the last join attempt returns")
}

/// Polls the crawler on durable timers, doubling the gap, until it is READY (returning its last
/// crawl) or the deadline passes (`None`).
async fn wait_until_ready(
    ctx: &mut WorkflowContext<CrawlWorkflow>,
    input: &CrawlInput,
) -> WorkflowResult<Option<lakegate_activities::ports::LastCrawl>> {
    let deadline = now(ctx) + Duration::from_secs(input.timing.crawl_deadline_secs);
    let mut gap = Duration::from_secs(input.timing.poll_initial_secs.max(1));
    let max_gap = Duration::from_secs(input.timing.poll_max_secs.max(1));
    loop {
        let status = ctx
            .execute_activity(
                CrawlActivities::crawler_status,
                input.crawler.clone(),
                options::short(),
            )
            .await?;
        if status.state == CrawlerState::Ready {
            return Ok(Some(status.last_crawl.unwrap_or(
                lakegate_activities::ports::LastCrawl {
                    status: "UNKNOWN".into(),
                    error_message: Some("the crawler reported no last crawl".into()),
                    log_group: None,
                    log_stream: None,
                    started_at: None,
                    log_key: None,
                },
            )));
        }
        if now(ctx) >= deadline {
            return Ok(None);
        }
        ctx.timer(gap).await;
        gap = (gap * 2).min(max_gap);
    }
}
