//! The transform workflow's activities: dbt jobs on the job runner and check queries on the
//! query engine, each one short call the workflow polls.

use std::sync::Arc;

use lakegate_models::NodeResult;
use lakegate_models::names;
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ingest::port_failure;
use crate::metrics::{Metrics, NoMetrics};
use crate::ports::{JobRunner, JobSpec, JobState, JobStatus, ObjectStore, QueryEngine, QueryState};
use crate::toollog::{LogZone, error_class};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartQuery {
    pub sql: String,
    /// Idempotency token: the workflow id plus the check's name, so a retried start reconnects.
    pub token: String,
}

/// A check query's result as the workflow sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuerySummary {
    /// Rows on the first page of the result.
    pub rows: u64,
    /// The first cell, when it is an integer (a count, an age in hours).
    pub first_integer: Option<i64>,
}

/// A query the workflow gave up on: past its deadline, or its transform was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopQuery {
    pub query_id: String,
    /// Why, for the engine's own record (the local engine reports it as the CANCELLED reason).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminateJob {
    pub job_id: String,
    pub reason: String,
}

/// The job `describe_job` polls. The stage and submission time only time the job for metrics;
/// a bare job id, what workflows sent before they passed them, still decodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DescribeJob {
    Stage {
        job_id: String,
        dataset: String,
        stage: String,
        /// Workflow time when the submit returned, in Unix milliseconds.
        submitted_at_ms: u64,
    },
    Id(String),
}

impl DescribeJob {
    pub fn job_id(&self) -> &str {
        match self {
            DescribeJob::Stage { job_id, .. } | DescribeJob::Id(job_id) => job_id,
        }
    }
}

pub struct TransformActivities {
    jobs: Arc<dyn JobRunner>,
    query: Arc<dyn QueryEngine>,
    metrics: Arc<dyn Metrics>,
    logs: LogZone,
}

impl TransformActivities {
    pub fn new(jobs: Arc<dyn JobRunner>, query: Arc<dyn QueryEngine>) -> Self {
        Self {
            jobs,
            query,
            metrics: Arc::new(NoMetrics),
            logs: LogZone::default(),
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Job logs and engine error text go to the lake's log zone; without it, only their class
    /// is reported.
    pub fn with_logs(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.logs = LogZone::new(store);
        self
    }
}

/// Lines of a failed job's log kept in the log zone: dbt prints the failing nodes and their
/// errors near the end, after the progress lines of every node.
const STORED_LOG_LINES: usize = 2000;

/// The failed job whose log `store_job_log` keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreJobLog {
    pub job_id: String,
    pub stage: String,
}

/// Where a job's log went and what kind of error it reports, in place of its text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLog {
    #[serde(default)]
    pub log_key: Option<String>,
    #[serde(default)]
    pub error_class: Option<String>,
    /// Lines kept.
    #[serde(default)]
    pub lines: u64,
}

#[activities]
impl TransformActivities {
    #[activity(name = names::SUBMIT_JOB_ACTIVITY)]
    pub async fn submit_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        spec: JobSpec,
    ) -> Result<String, ActivityError> {
        self.jobs.submit(&spec).await.map_err(port_failure)
    }

    /// A job seen finished is timed from its submission (the workflow's clock) to this poll
    /// (the worker's): queueing included, and at most one poll gap late. The workflow stops
    /// polling a finished job, so each is timed once (again only if this attempt's answer is
    /// lost and the activity retried).
    #[activity(name = names::DESCRIBE_JOB_ACTIVITY)]
    pub async fn describe_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: DescribeJob,
    ) -> Result<JobStatus, ActivityError> {
        let status = self
            .jobs
            .describe(request.job_id())
            .await
            .map_err(port_failure)?;
        if let DescribeJob::Stage {
            dataset,
            stage,
            submitted_at_ms,
            ..
        } = &request
            && matches!(status.state, JobState::Succeeded | JobState::Failed)
        {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let took = now.saturating_sub(std::time::Duration::from_millis(*submitted_at_ms));
            self.metrics.job_finished(dataset, stage, took);
        }
        Ok(status)
    }

    #[activity(name = names::TERMINATE_JOB_ACTIVITY)]
    pub async fn terminate_job(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: TerminateJob,
    ) -> Result<(), ActivityError> {
        self.jobs
            .terminate(&request.job_id, &request.reason)
            .await
            .map_err(port_failure)
    }

    /// Histories before `transform-logs-in-lake` scheduled this; it stays registered for a task
    /// such a run scheduled before the upgrade, and answers with no lines: a log tail, however
    /// redacted, is tool text.
    #[activity(name = names::JOB_LOG_TAIL_ACTIVITY)]
    pub async fn job_log_tail(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _job_id: String,
    ) -> Result<Vec<String>, ActivityError> {
        Ok(Vec::new())
    }

    /// Keeps the end of a failed job's log in the log zone, at
    /// `logs/<workflow id>/<stage>-<job id>.log`, and returns that key and the log's error class.
    #[activity(name = names::STORE_JOB_LOG_ACTIVITY)]
    pub async fn store_job_log(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: StoreJobLog,
    ) -> Result<JobLog, ActivityError> {
        let lines = self
            .jobs
            .log_tail(&request.job_id, STORED_LOG_LINES)
            .await
            .map_err(port_failure)?;
        let mut text = lines.join("\n");
        text.push('\n');
        let name = format!("{}-{}", request.stage, request.job_id);
        let log_key = self
            .logs
            .keep(&ctx, &name, &text)
            .await
            .map_err(port_failure)?;
        Ok(JobLog {
            log_key,
            error_class: Some(error_class(&text).unwrap_or_else(|| "dbt job failed".to_owned())),
            lines: lines.len() as u64,
        })
    }

    /// The nodes of dbt's run_results.json, or `None` if the job left none (it failed before
    /// dbt ran).
    #[activity(name = names::DBT_RUN_RESULTS_ACTIVITY)]
    pub async fn dbt_run_results(
        self: Arc<Self>,
        _ctx: ActivityContext,
        job_id: String,
    ) -> Result<Option<Vec<NodeResult>>, ActivityError> {
        let Some(bytes) = self
            .jobs
            .artifact(&job_id, "target/run_results.json")
            .await
            .map_err(port_failure)?
        else {
            return Ok(None);
        };
        parse_run_results(&bytes).map(Some).map_err(|e| {
            ApplicationFailure::non_retryable(format!("run_results.json of {job_id}: {e}")).into()
        })
    }

    #[activity(name = names::START_QUERY_ACTIVITY)]
    pub async fn start_query(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: StartQuery,
    ) -> Result<String, ActivityError> {
        self.query
            .start_query(&request.sql, &request.token)
            .await
            .map_err(port_failure)
    }

    /// FAILED and CANCELLED come back as states, not errors: the workflow records them as a
    /// failed check. Engines quote the value a query failed on in their reasons, so the reason
    /// is kept in the log zone and the state carries its key and error class.
    #[activity(name = names::QUERY_STATE_ACTIVITY)]
    pub async fn query_state(
        self: Arc<Self>,
        ctx: ActivityContext,
        query_id: String,
    ) -> Result<QueryState, ActivityError> {
        let state = self
            .query
            .query_state(&query_id)
            .await
            .map_err(port_failure)?;
        let (failed, reason) = match state {
            QueryState::Failed { reason, .. } => (true, reason),
            QueryState::Cancelled { reason, .. } => (false, reason),
            other => return Ok(other),
        };
        let log_key = self
            .logs
            .keep(&ctx, &format!("query-{query_id}"), &reason)
            .await
            .map_err(port_failure)?;
        let fallback = if failed {
            "query failed"
        } else {
            "query cancelled"
        };
        let reason = error_class(&reason).unwrap_or_else(|| fallback.to_owned());
        Ok(if failed {
            QueryState::Failed { reason, log_key }
        } else {
            QueryState::Cancelled { reason, log_key }
        })
    }

    /// Stopping a finished query is a no-op, so a retried stop is harmless.
    #[activity(name = names::STOP_QUERY_ACTIVITY)]
    pub async fn stop_query(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: StopQuery,
    ) -> Result<(), ActivityError> {
        self.query
            .stop_query(&request.query_id, &request.reason)
            .await
            .map_err(port_failure)
    }

    /// What a check needs of a result, and nothing a check's SQL might select: a violation
    /// query can return rows of patient data, which must not reach the workflow's history.
    #[activity(name = names::QUERY_SUMMARY_ACTIVITY)]
    pub async fn query_summary(
        self: Arc<Self>,
        _ctx: ActivityContext,
        query_id: String,
    ) -> Result<QuerySummary, ActivityError> {
        let page = self
            .query
            .results(&query_id, None)
            .await
            .map_err(port_failure)?;
        let first_integer = page
            .rows
            .first()
            .and_then(|row| row.first())
            .and_then(|cell| cell.as_deref())
            .and_then(|text| text.trim().parse().ok());
        Ok(QuerySummary {
            rows: page.rows.len() as u64,
            first_integer,
        })
    }
}

/// dbt's run_results.json, reduced to what the workflow reports.
pub fn parse_run_results(bytes: &[u8]) -> Result<Vec<NodeResult>, serde_json::Error> {
    #[derive(Deserialize)]
    struct RunResults {
        results: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        unique_id: String,
        status: String,
        #[serde(default)]
        execution_time: f64,
        #[serde(default)]
        failures: Option<u64>,
    }
    let parsed: RunResults = serde_json::from_slice(bytes)?;
    Ok(parsed
        .results
        .into_iter()
        .map(|e| NodeResult {
            unique_id: e.unique_id,
            status: e.status,
            execution_time_secs: e.execution_time,
            failures: e.failures,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_job_still_takes_a_bare_job_id() {
        let old: DescribeJob = serde_json::from_str(r#""job-1""#).unwrap();
        assert_eq!(old, DescribeJob::Id("job-1".into()));
        let new = DescribeJob::Stage {
            job_id: "job-2".into(),
            dataset: "ehr".into(),
            stage: "staging".into(),
            submitted_at_ms: 5,
        };
        let json = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<DescribeJob>(&json).unwrap(), new);
        assert_eq!(new.job_id(), "job-2");
    }

    #[test]
    fn run_results_reduce_to_node_statuses() {
        let json = br#"{"metadata": {}, "results": [
            {"unique_id": "model.ehr.stg_patients", "status": "success", "execution_time": 0.5,
             "message": "OK", "adapter_response": {}},
            {"unique_id": "test.ehr.not_null_x", "status": "fail", "execution_time": 0.1,
             "failures": 3, "message": "Got 3 results, configured to fail if != 0"}
        ], "elapsed_time": 1.0}"#;
        let nodes = parse_run_results(json).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1].status, "fail");
        assert_eq!(nodes[1].failures, Some(3));
        assert_eq!(nodes[0].unique_id, "model.ehr.stg_patients");
    }
}
