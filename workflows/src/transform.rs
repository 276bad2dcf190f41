//! `TransformWorkflow`: a dbt project run stage by stage (`dbt build --select path:models/<stage>`)
//! as jobs on the JobRunner port, waited for on durable timers. A failed stage is resumed from its
//! failed node with `dbt retry`, unless dbt tests failed: a failing test is a data problem that
//! retrying cannot fix. Then the configured checks run on the query engine.

use std::time::{Duration, UNIX_EPOCH};

use lakegate_activities::ports::{JobSpec, JobState, QueryState};
use lakegate_activities::{
    DescribeJob, StartQuery, StopQuery, StoreJobLog, TerminateJob, TransformActivities,
};
use lakegate_models::names;
use lakegate_models::{
    Alert, AlertKind, Check, CheckResult, NodeResult, StageResult, TransformInput, TransformResult,
    WorkflowInput,
};
use temporalio_common::ActivityDefinition;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkflowCancellationToken, WorkflowContext, WorkflowContextView,
    WorkflowResult, WorkflowTermination,
};

use crate::{alerts, options, patches};

mod polling;

use polling::{Gap, Polling};

#[workflow]
pub struct TransformWorkflow {
    input: TransformInput,
    /// Why the start input did not decode (the run fails at once; see `crate::start`).
    malformed: Option<String>,
    result: TransformResult,
}

#[workflow_methods]
impl TransformWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: WorkflowInput<TransformInput>) -> Self {
        let (input, malformed) = input.split();
        let result = TransformResult {
            dataset: input.dataset.clone(),
            succeeded: false,
            stages: Vec::new(),
            checks: Vec::new(),
        };
        Self {
            input,
            malformed,
            result,
        }
    }

    /// Fails (with the stage, the failed nodes, the error class and the log's key in the lake
    /// in the message; never the log's text) when a stage fails; completes with `succeeded: false` when only checks failed. The `get_status` query
    /// returns the full result either way.
    #[run(name = names::TRANSFORM_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<TransformResult> {
        if let Some(why) = ctx.state(|s| s.malformed.clone()) {
            return Err(crate::malformed_input(names::TRANSFORM_WORKFLOW, &why).into());
        }
        let input = ctx.state(|s| s.input.clone());
        // Job names must be unique per run: a re-run under the same workflow id must not find the
        // previous run's jobs by name.
        let run_tag: String = ctx
            .run_id()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let job_prefix = format!("{}-{run_tag}", ctx.workflow_id());
        for stage in &input.stages {
            let result = match run_stage(ctx, &input, &job_prefix, stage).await {
                Ok(result) => result,
                Err(e) => {
                    // Only on the failing branch, so a successful run's commands are unchanged;
                    // a cancelled or evicted run sends nothing.
                    if matches!(e, WorkflowTermination::Failed(_))
                        && ctx.patched(patches::TRANSFORM_ALERTS)
                    {
                        let alert = stage_alert(ctx, &input.dataset, stage, &[]);
                        alerts::send(ctx, alert).await;
                    }
                    return Err(e);
                }
            };
            let failed = !result.succeeded;
            let message = failed.then(|| stage_failure_message(&result));
            if failed && ctx.patched(patches::TRANSFORM_ALERTS) {
                let alert = stage_alert(ctx, &input.dataset, stage, &result.nodes);
                alerts::send(ctx, alert).await;
            }
            ctx.state_mut(|s| s.result.stages.push(result));
            if let Some(message) = message {
                return Err(ApplicationFailure::non_retryable(message).into());
            }
        }
        for (index, check) in input.checks.iter().enumerate() {
            let token = format!("{job_prefix}-check-{index}");
            let result = run_check(ctx, &input, check, token).await?;
            ctx.state_mut(|s| s.result.checks.push(result));
        }
        ctx.state_mut(|s| s.result.succeeded = s.result.checks.iter().all(|c| c.passed));
        let failed_checks: Vec<String> = ctx.state(|s| {
            s.result
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.name.clone())
                .collect()
        });
        if !failed_checks.is_empty() && ctx.patched(patches::TRANSFORM_ALERTS) {
            let mut alert = Alert::new(AlertKind::CheckFailed, ctx.workflow_id());
            alert.dataset = Some(input.dataset.clone());
            alert
                .counts
                .insert("failed_checks".into(), failed_checks.len() as u64);
            alert.rules = failed_checks;
            alerts::send(ctx, alert).await;
        }
        Ok(ctx.state(|s| s.result.clone()))
    }

    #[query(name = names::STATUS_QUERY)]
    pub fn get_status(&self, _ctx: &WorkflowContextView) -> TransformResult {
        self.result.clone()
    }
}

fn dbt_flags(input: &TransformInput) -> Vec<String> {
    vec![
        "--project-dir".into(),
        input.project_dir.clone(),
        "--profiles-dir".into(),
        input.profiles_dir.clone(),
        "--target".into(),
        input.target.clone(),
    ]
}

async fn run_stage(
    ctx: &mut WorkflowContext<TransformWorkflow>,
    input: &TransformInput,
    job_prefix: &str,
    stage: &str,
) -> WorkflowResult<StageResult> {
    let mut result = StageResult {
        stage: stage.to_owned(),
        jobs: Vec::new(),
        succeeded: false,
        nodes: Vec::new(),
        log_tail: Vec::new(),
        failure: None,
        log_key: None,
        error_class: None,
    };
    let mut resume_from: Option<String> = None;
    for attempt in 1..=input.max_attempts.max(1) {
        let name = format!("{job_prefix}-{stage}-{attempt}");
        let mut command = vec!["dbt".to_owned()];
        match &resume_from {
            // `dbt retry` re-runs only what failed or was skipped, reading the previous
            // attempt's run_results.json, which the runner carries over into this job.
            Some(_) => command.push("retry".into()),
            None => command.extend([
                "build".into(),
                "--select".into(),
                format!("path:models/{stage}"),
            ]),
        }
        command.extend(dbt_flags(input));
        let spec = JobSpec {
            name: name.clone(),
            command,
            environment: input.environment.clone(),
            resume_from: resume_from.clone(),
        };
        let job_id = ctx
            .execute_activity(TransformActivities::submit_job, spec, options::short())
            .await?;
        result.jobs.push(job_id.clone());
        let submitted_at_ms = ctx
            .workflow_time()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let job = DescribeJob::Stage {
            job_id: job_id.clone(),
            dataset: input.dataset.clone(),
            stage: stage.to_owned(),
            submitted_at_ms,
        };
        let state = match wait_for_job(ctx, input, job).await? {
            Waited::Finished(state) => state,
            Waited::Terminated(why) => {
                // A stage that hit its deadline is not retried: a job stuck RUNNABLE on a queue
                // without capacity would be stuck again, and every attempt would cost the
                // deadline once more.
                keep_log(ctx, &mut result, &job_id).await?;
                result.failure = Some(why);
                return Ok(result);
            }
        };
        let nodes = ctx
            .execute_activity(
                TransformActivities::dbt_run_results,
                job_id.clone(),
                options::short(),
            )
            .await?;
        merge_nodes(&mut result.nodes, nodes.as_deref().unwrap_or_default());
        if state == JobState::Succeeded {
            result.succeeded = true;
            // The log tail of an earlier failed attempt stays: it says what was recovered from.
            result.failure = None;
            return Ok(result);
        }
        keep_log(ctx, &mut result, &job_id).await?;
        let failed_tests: Vec<&str> = failed_nodes(&result.nodes)
            .filter(|id| id.starts_with("test."))
            .collect();
        if !failed_tests.is_empty() {
            result.failure = Some(format!(
                "dbt tests failed (not retried): {}",
                failed_tests.join(", ")
            ));
            return Ok(result);
        }
        result.failure = Some(format!("job {job_id} failed (attempt {attempt})"));
        // Without run_results.json dbt never got to run a node: start the stage over.
        resume_from = nodes.is_some().then_some(name);
    }
    Ok(result)
}

/// Later attempts (`dbt retry`) report only the nodes they re-ran; keep the latest per node.
fn merge_nodes(all: &mut Vec<NodeResult>, latest: &[NodeResult]) {
    for node in latest {
        match all.iter_mut().find(|n| n.unique_id == node.unique_id) {
            Some(existing) => *existing = node.clone(),
            None => all.push(node.clone()),
        }
    }
}

/// `transform_failed` for `stage`: the failed nodes' ids (dbt's, PHI-free) and how many.
fn stage_alert(
    ctx: &WorkflowContext<TransformWorkflow>,
    dataset: &str,
    stage: &str,
    nodes: &[NodeResult],
) -> Alert {
    let mut alert = Alert::new(AlertKind::TransformFailed, ctx.workflow_id());
    alert.dataset = Some(dataset.to_owned());
    alert.rules = std::iter::once(format!("stage {stage}"))
        .chain(failed_nodes(nodes).map(str::to_owned))
        .collect();
    alert
        .counts
        .insert("failed_nodes".into(), alert.rules.len() as u64 - 1);
    alert
}

/// The failed job's log: kept in the lake's log zone, the stage recording its key and error
/// class (`transform-logs-in-lake`); before, its redacted tail went into the history.
async fn keep_log(
    ctx: &mut WorkflowContext<TransformWorkflow>,
    result: &mut StageResult,
    job_id: &str,
) -> WorkflowResult<()> {
    if !ctx.patched(patches::TRANSFORM_LOGS_IN_LAKE) {
        result.log_tail = ctx
            .execute_activity(
                TransformActivities::job_log_tail,
                job_id.to_owned(),
                options::short(),
            )
            .await?;
        return Ok(());
    }
    let request = StoreJobLog {
        job_id: job_id.to_owned(),
        stage: result.stage.clone(),
    };
    let log = ctx
        .execute_activity(
            TransformActivities::store_job_log,
            request,
            options::short(),
        )
        .await?;
    result.log_key = log.log_key;
    result.error_class = log.error_class;
    Ok(())
}

/// Names, statuses, counts, classes and a key: no log text, which would put dbt's and the
/// engine's words (and the values they quote) into the failure.
fn stage_failure_message(stage: &StageResult) -> String {
    let failed: Vec<&str> = failed_nodes(&stage.nodes).collect();
    format!(
        "stage {} failed: {}; failed nodes: [{}]; error class: {}; log: {}",
        stage.stage,
        stage.failure.as_deref().unwrap_or("unknown"),
        failed.join(", "),
        stage.error_class.as_deref().unwrap_or("none"),
        stage.log_key.as_deref().unwrap_or("not kept")
    )
}

/// The ids of the nodes dbt reported as `error` or `fail`.
fn failed_nodes(nodes: &[NodeResult]) -> impl Iterator<Item = &str> {
    nodes
        .iter()
        .filter(|n| matches!(n.status.as_str(), "error" | "fail"))
        .map(|n| n.unique_id.as_str())
}

/// How the wait for a job ended.
enum Waited {
    Finished(JobState),
    /// Past its deadline: terminated, with what to report.
    Terminated(String),
}

fn now(ctx: &WorkflowContext<TransformWorkflow>) -> Duration {
    ctx.workflow_time()
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

async fn wait_for_job(
    ctx: &mut WorkflowContext<TransformWorkflow>,
    input: &TransformInput,
    job: DescribeJob,
) -> WorkflowResult<Waited> {
    let with_deadline = ctx.patched(patches::TRANSFORM_JOB_DEADLINE);
    let mut poll = Polling::new(ctx, input, input.job_deadline_secs);
    // Batch's TerminateJob of a finished job is a no-op; a job the runner no longer knows is
    // already gone.
    let terminate = |reason: &str| TerminateJob {
        job_id: job.job_id().to_owned(),
        reason: reason.to_owned(),
    };
    loop {
        // With the deadline, a cancellation is handled at the timer below (terminate the job,
        // then end cancelled): a poll in flight when it arrives must finish, not fail the run
        // with the job still running.
        let describe = if with_deadline {
            own_token(options::short())
        } else {
            options::short()
        };
        let status = ctx
            .execute_activity(TransformActivities::describe_job, job.clone(), describe)
            .await?;
        if matches!(status.state, JobState::Succeeded | JobState::Failed) {
            return Ok(Waited::Finished(status.state));
        }
        match poll.wait(ctx, with_deadline).await {
            Gap::Waited => {}
            Gap::Deadline(waited) => {
                let why = format!(
                    "job {} terminated: still {:?} {} s after submission (job_deadline_secs {})",
                    job.job_id(),
                    status.state,
                    waited.as_secs(),
                    poll.deadline.as_secs()
                );
                clean_up(ctx, TransformActivities::terminate_job, terminate(&why)).await?;
                return Ok(Waited::Terminated(why));
            }
            Gap::Cancelled => {
                let why = format!(
                    "job {} terminated: the transform was cancelled {} s after submission",
                    job.job_id(),
                    poll.waited(ctx).as_secs()
                );
                clean_up(ctx, TransformActivities::terminate_job, terminate(&why)).await?;
                return Err(WorkflowTermination::Cancelled { details: None });
            }
        }
    }
}

/// Runs a clean-up activity (terminate a job, stop a query), also from a cancelled workflow: it
/// gets a cancellation token of its own, so the workflow's cancellation does not cancel the
/// clean-up as well.
async fn clean_up<A: ActivityDefinition>(
    ctx: &mut WorkflowContext<TransformWorkflow>,
    activity: A,
    input: A::Input,
) -> WorkflowResult<()> {
    ctx.execute_activity(activity, input, own_token(options::short()))
        .await?;
    Ok(())
}

/// `opts` with a cancellation token of their own: the workflow's cancellation does not cancel
/// the activity.
fn own_token(mut opts: ActivityOptions) -> ActivityOptions {
    opts.cancellation_token = Some(WorkflowCancellationToken::new());
    opts
}

/// `select count(*)` over a check's query. The newline keeps a trailing `--` comment from
/// swallowing the closing parenthesis; a trailing `;` would end the statement early.
fn count_rows_sql(sql: &str) -> String {
    let body = sql.trim().trim_end_matches(';');
    format!("select count(*) from (\n{body}\n) as violations")
}

async fn run_check(
    ctx: &mut WorkflowContext<TransformWorkflow>,
    input: &TransformInput,
    check: &Check,
    token: String,
) -> WorkflowResult<CheckResult> {
    let counted =
        matches!(check, Check::Sql { .. }) && ctx.patched(patches::CHECK_COUNTS_EVERY_ROW);
    let sql = match check {
        Check::RowCount { table } => format!("select count(*) from {table}"),
        Check::Freshness { table, column, .. } => format!(
            "select date_diff('hour', cast(max({column}) as timestamp), cast(current_timestamp as timestamp)) from {table}"
        ),
        // Counted by the engine: the first result page holds at most one page of rows (1,000 on
        // Athena), and the violating rows themselves never need to leave the engine.
        Check::Sql { sql, .. } if counted => count_rows_sql(sql),
        Check::Sql { sql, .. } => sql.clone(),
    };
    let mut result = CheckResult {
        name: check.name(),
        passed: false,
        observed: String::new(),
        error: None,
        log_key: None,
    };
    let with_deadline = ctx.patched(patches::CHECK_QUERY_DEADLINE);
    // With the deadline, a cancellation is handled at the timer below (stop the query, then end
    // cancelled): a start or poll in flight when it arrives must finish, so the query it started
    // is known and can be stopped.
    let poll_options = || {
        if with_deadline {
            own_token(options::short())
        } else {
            options::short()
        }
    };
    let query_id = ctx
        .execute_activity(
            TransformActivities::start_query,
            StartQuery { sql, token },
            poll_options(),
        )
        .await?;
    let mut poll = Polling::new(ctx, input, input.query_deadline_secs);
    let stop = |reason: &str| StopQuery {
        query_id: query_id.clone(),
        reason: reason.to_owned(),
    };
    loop {
        let state = ctx
            .execute_activity(
                TransformActivities::query_state,
                query_id.clone(),
                poll_options(),
            )
            .await?;
        let still = match state {
            QueryState::Succeeded => break,
            QueryState::Failed { reason, log_key } | QueryState::Cancelled { reason, log_key } => {
                result.error = Some(reason);
                result.log_key = log_key;
                return Ok(result);
            }
            QueryState::Queued => "QUEUED",
            QueryState::Running => "RUNNING",
        };
        match poll.wait(ctx, with_deadline).await {
            Gap::Waited => {}
            Gap::Deadline(waited) => {
                let why = format!(
                    "check {} stopped: its query {query_id} was still {still} {} s after it started (query_deadline_secs {})",
                    result.name,
                    waited.as_secs(),
                    poll.deadline.as_secs()
                );
                clean_up(ctx, TransformActivities::stop_query, stop(&why)).await?;
                result.error = Some(why);
                return Ok(result);
            }
            Gap::Cancelled => {
                let why = format!(
                    "check {} stopped: the transform was cancelled {} s after its query {query_id} started",
                    result.name,
                    poll.waited(ctx).as_secs()
                );
                clean_up(ctx, TransformActivities::stop_query, stop(&why)).await?;
                return Err(WorkflowTermination::Cancelled { details: None });
            }
        }
    }
    let summary = ctx
        .execute_activity(
            TransformActivities::query_summary,
            query_id,
            options::short(),
        )
        .await?;
    let first = summary.first_integer;
    match check {
        Check::RowCount { .. } => {
            result.observed = format!("{} rows", first.unwrap_or(0));
            result.passed = first.is_some_and(|n| n > 0);
        }
        Check::Freshness { max_age_hours, .. } => {
            result.observed = first.map_or("no rows".into(), |h| format!("{h} hours old"));
            result.passed = first.is_some_and(|h| h >= 0 && h.unsigned_abs() <= *max_age_hours);
        }
        Check::Sql { .. } => {
            let violations = if counted {
                first.map_or(0, i64::unsigned_abs)
            } else {
                summary.rows
            };
            result.observed = format!("{violations} violating rows");
            result.passed = if counted {
                first == Some(0)
            } else {
                summary.rows == 0
            };
        }
    }
    Ok(result)
}
