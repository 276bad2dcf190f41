//! Payload types, ids and names that lakegate's workflows, activities, CLI and other services
//! share. Everything here is plain serde JSON so the Temporal UI shows it and any SDK can send it,
//! and nothing here does I/O.
//!
//! PHI rule: no type in this crate carries a cell value or an object key in clear text where it
//! would reach a search attribute or a log line. Object keys do travel in workflow inputs (the
//! workflow must know which object to move), so ids and search attributes use hashes and dataset
//! names instead.

mod alert;
mod ids;
mod ingest;
pub mod keys;
mod pipeline;
mod report;
mod retract;
mod review;
pub mod schema;
mod start;
mod zone;

pub use alert::{Alert, AlertKind, AlertReceipt};
pub use ids::{ingest_workflow_id, short_hash};
pub use ingest::{
    ContractMatch, DEFAULT_REVIEW_TIMEOUT_SECS, Decision, IngestInput, IngestOutcome, IngestPhase,
    IngestStatus, ReviewSignal,
};
pub use pipeline::{
    BackfillInput, BackfillProgress, Check, CheckResult, CrawlInput, CrawlRecord, CrawlStatus,
    CrawlTiming, IngestFile, LandingPage, NewData, NodeResult, PromotedFile, StageResult,
    SweepInput, SweepResult, TableChange, TableFingerprint, TransformInput, TransformResult,
    default_job_deadline_secs, default_query_deadline_secs,
};
pub use report::{RuleOutcome, Severity, ValidationReport, Verdict};
pub use retract::{PromotedRun, RETRACT_SHAPE, RetractInput, RetractPhase, RetractStatus};
pub use review::{IgnoredReview, REVIEW_SHAPE, RejectedReview, ReviewOutcome};
pub use start::{WorkflowInput, decode as decode_input};
pub use zone::{
    INDEX_ZONE, LOG_ZONE, RECORD_AREAS, Zone, civil_date_from_unix, civil_datetime_from_unix,
    log_key,
};

/// Names that other SDKs, the Temporal CLI and the UI use to address lakegate. Changing any of
/// them breaks running workflows and callers, so they are spelled out once, here.
pub mod names {
    /// Task queue served by `lakegate worker` unless `LAKEGATE_TASK_QUEUE` says otherwise.
    pub const DEFAULT_TASK_QUEUE: &str = "lakegate";
    pub const INGEST_FILE_WORKFLOW: &str = "IngestFileWorkflow";
    /// Signal carrying a [`crate::ReviewSignal`].
    pub const REVIEW_SIGNAL: &str = "review";
    /// Update carrying a [`crate::ReviewSignal`] and answering a [`crate::ReviewOutcome`]. The
    /// same name as the signal: Temporal keeps signal and update names apart, so the Web UI's
    /// signal form and older clients keep working while new clients get an answer.
    pub const REVIEW_UPDATE: &str = "review";
    /// Query answering an [`crate::IngestStatus`].
    pub const STATUS_QUERY: &str = "get_status";

    pub const RESOLVE_CONTRACT_ACTIVITY: &str = "resolve_contract";
    pub const VALIDATE_ACTIVITY: &str = "validate_object";
    pub const MOVE_ACTIVITY: &str = "move_object";
    pub const NOTIFY_CRAWL_ACTIVITY: &str = "notify_crawl";
    /// Resolve, validate and, when the file passes, promote (and notify the crawl) in one
    /// activity: a valid file's happy path costs one server round trip.
    pub const VALIDATE_AND_PROMOTE_ACTIVITY: &str = "validate_and_promote";
    pub const LANDING_SWEEP_WORKFLOW: &str = "LandingSweepWorkflow";
    pub const ONBOARD_DATASET_WORKFLOW: &str = "OnboardDatasetWorkflow";
    pub const PROGRESS_QUERY: &str = "get_progress";
    pub const LIST_LANDING_PAGE_ACTIVITY: &str = "list_landing_page";
    pub const START_INGESTS_ACTIVITY: &str = "start_ingests";
    pub const COUNT_LANDING_ACTIVITY: &str = "count_landing";
    pub const SETTLED_INGESTS_ACTIVITY: &str = "settled_ingests";
    pub const SWEEP_LANDING_ACTIVITY: &str = "sweep_landing";

    pub const CRAWL_WORKFLOW: &str = "CrawlWorkflow";
    /// Signal carrying a [`crate::NewData`]; sent with signal-with-start.
    pub const NEW_DATA_SIGNAL: &str = "new_data";
    pub const TRANSFORM_WORKFLOW: &str = "TransformWorkflow";

    pub const START_CRAWL_ACTIVITY: &str = "start_crawl";
    pub const CRAWLER_STATUS_ACTIVITY: &str = "crawler_status";
    pub const LIST_TABLES_ACTIVITY: &str = "list_tables";
    pub const REGISTER_CATALOG_ACTIVITY: &str = "register_catalog";
    pub const SUBMIT_JOB_ACTIVITY: &str = "submit_job";
    pub const DESCRIBE_JOB_ACTIVITY: &str = "describe_job";
    pub const JOB_LOG_TAIL_ACTIVITY: &str = "job_log_tail";
    pub const STORE_JOB_LOG_ACTIVITY: &str = "store_job_log";
    pub const DBT_RUN_RESULTS_ACTIVITY: &str = "dbt_run_results";
    pub const TERMINATE_JOB_ACTIVITY: &str = "terminate_job";
    pub const START_QUERY_ACTIVITY: &str = "start_query";
    pub const QUERY_STATE_ACTIVITY: &str = "query_state";
    pub const QUERY_SUMMARY_ACTIVITY: &str = "query_summary";
    pub const STOP_QUERY_ACTIVITY: &str = "stop_query";

    /// Takes a promoted file back: raw/ to rejected/, catalog and transform refreshed.
    pub const RETRACT_WORKFLOW: &str = "RetractWorkflow";
    /// Reads an ingest run's result and finds its promoted file in raw/.
    pub const INSPECT_PROMOTED_ACTIVITY: &str = "inspect_promoted";

    /// The id of the one retract an ingest run's file may have: a second retract of the same
    /// run meets the first instead of moving anything again.
    pub fn retract_workflow_id(ingest_workflow_id: &str) -> String {
        format!("retract-{ingest_workflow_id}")
    }
    /// Posts an [`crate::Alert`] to the webhooks of pipeline.yaml that subscribe to its kind.
    pub const SEND_ALERT_ACTIVITY: &str = "send_alert";

    /// The id of the crawl workflow that owns `crawler`: one per crawler, so signal-with-start
    /// from every ingest lands in the same run.
    pub fn crawl_workflow_id(crawler: &str) -> String {
        format!("crawl-{crawler}")
    }

    /// The id of the transform that follows crawl number `crawl` of `crawler` (a child of the
    /// crawl workflow, so the UI links the two).
    pub fn transform_workflow_id(crawler: &str, crawl: u64) -> String {
        format!("transform-{crawler}-{crawl}")
    }

    /// Custom search attributes (all Keyword). `lakegate dev` registers them on the dev server;
    /// production clusters register them once with `temporal operator search-attribute create`.
    pub mod search_attributes {
        pub const DATASET: &str = "LakegateDataset";
        pub const TABLE: &str = "LakegateTable";
        pub const PHASE: &str = "LakegatePhase";
        pub const QUARANTINE_REASON: &str = "LakegateQuarantineReason";
        pub const ALL: [&str; 4] = [DATASET, TABLE, PHASE, QUARANTINE_REASON];
    }
}
