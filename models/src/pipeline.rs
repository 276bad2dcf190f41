//! Payloads of the crawl and transform workflows.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Signal-with-start payload: raw prefixes with new data for a crawler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewData {
    pub prefixes: Vec<String>,
}

/// What `IngestFileWorkflow` tells the pipeline after promoting a file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct PromotedFile {
    pub dataset: String,
    pub table: String,
    /// The partition folder the file landed in, e.g. `raw/ehr/patients/ingest_date=2026-11-26/`.
    pub prefix: String,
}

impl PromotedFile {
    /// The file now at `raw_key`, promoted under `contract`.
    pub fn new(contract: &crate::ContractMatch, raw_key: &str) -> Self {
        let prefix = raw_key
            .rsplit_once('/')
            .map_or(String::new(), |(dir, _)| format!("{dir}/"));
        Self {
            dataset: contract.dataset.clone(),
            table: contract.table.clone(),
            prefix,
        }
    }
}

/// Input of `CrawlWorkflow`, one long-lived workflow per crawler. The counters and `pending` are
/// carried across continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CrawlInput {
    pub crawler: String,
    /// The dataset whose raw/<dataset>/ folders this crawler covers; catalog tables elsewhere
    /// (other datasets sharing the database) are left out of its reports.
    #[serde(default)]
    pub dataset: String,
    /// Catalog database the crawler writes to.
    pub database: String,
    /// Dataset whose transform runs after each crawl; `None` crawls only.
    #[serde(default)]
    pub transform: Option<TransformInput>,
    #[serde(flatten)]
    pub timing: CrawlTiming,
    #[serde(default)]
    pub pending: Vec<String>,
    #[serde(default)]
    pub crawls_done: u64,
    /// Catalog tables seen after the previous crawl, to report what a crawl created or changed.
    #[serde(default)]
    pub known_tables: BTreeMap<String, TableFingerprint>,
    /// The last failed step, carried across continue-as-new so `lakegate pipeline` keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<CrawlRecord>,
    /// Crawls that failed in a row, carried across continue-as-new (the backoff goes on).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a crawl workflow coalesces, waits and rolls over: the same fields in the pipeline settings
/// file and in the workflow's input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CrawlTiming {
    /// A crawl starts once no new prefix arrived for this long...
    pub quiet_period_secs: u64,
    /// ...or once the oldest waiting prefix has waited this long.
    pub max_wait_secs: u64,
    /// First and largest gap between crawler state polls (durable timers, doubling).
    pub poll_initial_secs: u64,
    pub poll_max_secs: u64,
    /// A crawl still running after this long is reported as timed out.
    pub crawl_deadline_secs: u64,
    /// Crawls per run before continuing as new, to keep each history small.
    #[serde(default = "default_crawls_per_run")]
    pub crawls_per_run: u32,
}

fn default_crawls_per_run() -> u32 {
    20
}

/// Enough of a catalog table to tell whether a crawl changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TableFingerprint {
    pub columns: Vec<String>,
    pub partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CrawlRecord {
    /// Sequence number of the crawl over the workflow's lifetime (1-based).
    pub number: u64,
    pub prefixes: Vec<String>,
    /// The crawler was already running when asked; that run was waited for first.
    pub joined_running: bool,
    /// The crawler's LastCrawl status (SUCCEEDED, FAILED, CANCELLED) or TIMED_OUT.
    pub status: String,
    /// What failed, in lakegate's words and error classes (`crawler FAILED`, `table ehr_x:
    /// Conversion Error`); the crawler's or engine's own text is in the lake at `log_key`.
    #[serde(default)]
    pub error: Option<String>,
    /// Where the crawler's or catalog's error text is kept (the log zone, `logs/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    pub tables_created: Vec<String>,
    pub tables_updated: Vec<String>,
    /// What the step changed, table by table (tables registered from their contracts, and
    /// tables a crawler created or changed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<TableChange>,
    #[serde(default)]
    pub transform_workflow_id: Option<String>,
    #[serde(default)]
    pub transform_succeeded: Option<bool>,
}

/// One catalog table's change in a catalog step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TableChange {
    pub table: String,
    pub created: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_added: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_removed: Vec<String>,
    /// `<column> <old type> -> <new type>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_retyped: Vec<String>,
    /// Partition values (joined by `/`) the step added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions_added: Vec<String>,
    /// Rows now in the partitions the step's files went to, where the backend counts them (the
    /// local DuckDB does; Glue would need an Athena scan, so leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_rows: Option<u64>,
}

impl TableChange {
    /// Whether the table's schema or partitions changed at all.
    pub fn is_change(&self) -> bool {
        self.created
            || !self.columns_added.is_empty()
            || !self.columns_removed.is_empty()
            || !self.columns_retyped.is_empty()
            || !self.partitions_added.is_empty()
    }
}

/// Answer of the crawl workflow's `get_status` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CrawlStatus {
    /// `waiting` (for data or the quiet period), `crawling` or `transforming`.
    pub phase: String,
    pub pending_prefixes: usize,
    pub crawls_done: u64,
    #[serde(default)]
    pub last: Option<CrawlRecord>,
    /// Crawls that failed in a row; their prefixes are still pending.
    #[serde(default)]
    pub consecutive_failures: u32,
    /// The most recent step that did not succeed, even when later ones did: a success must not
    /// hide that some files never reached the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<CrawlRecord>,
}

/// Input of `TransformWorkflow`: a dbt project run stage by stage as jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TransformInput {
    pub dataset: String,
    /// dbt project and profiles directories as the job sees them.
    pub project_dir: String,
    pub profiles_dir: String,
    /// dbt target (profile output), e.g. `duckdb` locally, `athena` in production.
    pub target: String,
    /// Model folders under models/, in order (e.g. staging, intermediate, marts).
    pub stages: Vec<String>,
    /// Extra environment for every job.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Attempts per stage for failures that are not failed dbt tests (the first run included).
    pub max_attempts: u32,
    pub poll_initial_secs: u64,
    pub poll_max_secs: u64,
    /// Checks run on the query engine after the last stage.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// How long one stage's job may take from its submission, queueing (RUNNABLE) included,
    /// before the workflow terminates it and fails the stage.
    #[serde(default = "default_job_deadline_secs")]
    pub job_deadline_secs: u64,
    /// How long one check's query may run, queueing included, before the workflow stops it
    /// (Athena StopQueryExecution, the local DuckDB process killed) and fails the check.
    #[serde(default = "default_query_deadline_secs")]
    pub query_deadline_secs: u64,
}

/// Six hours: far beyond a dbt stage on the example project, short enough that a job stuck
/// RUNNABLE on a queue without capacity fails the same working day.
pub fn default_job_deadline_secs() -> u64 {
    6 * 3600
}

/// One hour: Athena's own default DML timeout is 30 minutes, so a check query that runs longer
/// is stuck or scanning far more than a check should, and the transform must not wait on it.
pub fn default_query_deadline_secs() -> u64 {
    3600
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Check {
    /// Passes when the table has at least one row.
    RowCount { table: String },
    /// Passes when `max(column)` is within `max_age_hours` of the check's time.
    Freshness {
        table: String,
        column: String,
        max_age_hours: u64,
    },
    /// Passes when the query returns no rows (each row is a violation, as in dbt tests).
    Sql { name: String, sql: String },
}

impl Check {
    pub fn name(&self) -> String {
        match self {
            Check::RowCount { table } => format!("row_count:{table}"),
            Check::Freshness { table, column, .. } => format!("freshness:{table}.{column}"),
            Check::Sql { name, .. } => format!("sql:{name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// What was measured: a row count, an age in hours, a number of violating rows.
    pub observed: String,
    /// Why the query did not finish: the engine's error class (`Conversion Error`,
    /// `INVALID_CAST_ARGUMENT`). Histories before the log zone hold a redacted message here.
    #[serde(default)]
    pub error: Option<String>,
    /// Where the engine's error text is kept (the log zone, `logs/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
}

/// One dbt node's result, from run_results.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeResult {
    pub unique_id: String,
    /// dbt's status: success, error, fail, warn, skipped, pass.
    pub status: String,
    #[serde(default)]
    pub execution_time_secs: f64,
    /// dbt's `failures`: rows a test found failing (none for models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageResult {
    pub stage: String,
    /// Job ids, one per attempt (the first `dbt build`, then `dbt retry`s).
    pub jobs: Vec<String>,
    pub succeeded: bool,
    /// Final per-node status of the stage.
    pub nodes: Vec<NodeResult>,
    /// Histories before `transform-logs-in-lake`: the failing job's log tail, redacted. Empty
    /// since: dbt's output stays in the lake (`log_key`), never in a history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// What failed, in lakegate's words: which job, which attempt, which tests.
    #[serde(default)]
    pub failure: Option<String>,
    /// The failed job's log, in the lake's log zone (`logs/<workflow id>/...`). Kept when a later
    /// attempt succeeds: it says what was recovered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// The error class found in that log (`Conversion Error`, `Binder Error`, `dbt test
    /// failed`), never the error's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransformResult {
    pub dataset: String,
    pub succeeded: bool,
    pub stages: Vec<StageResult>,
    pub checks: Vec<CheckResult>,
}

/// Input of `LandingSweepWorkflow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepInput {
    /// Files younger than this are left to their events (which may still be on the way).
    pub older_than_secs: u64,
    #[serde(default = "crate::ingest::default_review_timeout")]
    pub review_timeout_secs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SweepResult {
    /// Files in landing/.
    pub seen: u64,
    /// Files whose IngestFileWorkflow the sweep started: their events were lost.
    pub started: u64,
    /// Files that already had a workflow (in flight).
    pub already_known: u64,
    /// Files inside the grace period.
    pub too_recent: u64,
}

/// Input of `OnboardDatasetWorkflow`: every file under a landing prefix, at most `max_in_flight`
/// of them unsettled at any time. The cursor, the files in flight and the counts are carried
/// across continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackfillInput {
    /// A prefix under landing/, e.g. `landing/synthea/ehr/`.
    pub prefix: String,
    /// Files being validated at once: as soon as one settles (promoted, rejected or waiting for
    /// review) the next one starts.
    pub max_in_flight: u32,
    #[serde(default = "crate::ingest::default_review_timeout")]
    pub review_timeout_secs: u64,
    /// Rounds (list and start, then check what settled) per run before continuing as new, so
    /// 100,000 files stay within Temporal's history limits.
    #[serde(default = "default_rounds_per_run", alias = "batches_per_run")]
    pub rounds_per_run: u32,
    /// Last key listed (keys are listed in order).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Ingest workflow ids started and not yet settled.
    #[serde(default)]
    pub in_flight: Vec<String>,
    /// The listing has passed the last key under the prefix.
    #[serde(default)]
    pub listing_done: bool,
    /// Partition folders promoted so far, crawled together once every file has settled.
    #[serde(default)]
    pub to_crawl: Vec<PromotedFile>,
    #[serde(default)]
    pub progress: BackfillProgress,
}

impl BackfillInput {
    pub fn new(prefix: impl Into<String>, max_in_flight: u32) -> Self {
        Self {
            prefix: prefix.into(),
            max_in_flight,
            review_timeout_secs: crate::ingest::default_review_timeout(),
            rounds_per_run: default_rounds_per_run(),
            cursor: None,
            in_flight: Vec::new(),
            listing_done: false,
            to_crawl: Vec::new(),
            progress: BackfillProgress::default(),
        }
    }
}

fn default_rounds_per_run() -> u32 {
    50
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackfillProgress {
    /// Files under the prefix when the backfill began (files landing later are onboarded too,
    /// so `files` can pass it).
    #[serde(default)]
    pub total: Option<u64>,
    /// Files handed to IngestFileWorkflow so far.
    pub files: u64,
    /// Of those, files that already had a workflow (an event got there first).
    pub already_known: u64,
    /// Files whose workflow has settled.
    pub settled: u64,
    /// Of the settled, ingests that failed, were terminated, cancelled or timed out: their files
    /// were not onboarded.
    #[serde(default)]
    pub failed: u64,
    /// True once the prefix is exhausted and every file settled.
    pub done: bool,
    /// The crawl workflows asked, at the end, to crawl what the backfill promoted.
    #[serde(default)]
    pub crawl_workflow_ids: Vec<String>,
}

impl BackfillProgress {
    pub fn in_flight(&self) -> u64 {
        self.files.saturating_sub(self.settled)
    }
}

/// One page of a landing listing with each file's ingest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandingPage {
    /// Files still in landing/ when their version was read.
    pub files: Vec<IngestFile>,
    /// The last key listed, whether or not it was still there: where the next page starts.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Fewer keys than asked for were left: the listing is complete.
    #[serde(default)]
    pub exhausted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestFile {
    pub key: String,
    pub version: String,
}
