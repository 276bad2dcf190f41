//! Payload types, ids and names that lakegate's workflows, activities, CLI and other services
//! share. Everything here is plain serde JSON so the Temporal UI shows it and any SDK can send it,
//! and nothing here does I/O.
//!
//! PHI rule: no type in this crate carries a cell value or an object key in clear text where it
//! would reach a search attribute or a log line. Object keys do travel in workflow inputs (the
//! workflow must know which object to move), so ids and search attributes use hashes and dataset
//! names instead.

mod ids;
mod ingest;
mod report;
mod zone;

pub use ids::{ingest_workflow_id, short_hash};
pub use ingest::{
    ContractMatch, DEFAULT_REVIEW_TIMEOUT_SECS, Decision, IngestInput, IngestOutcome, IngestPhase,
    IngestStatus, ReviewSignal,
};
pub use report::{RuleOutcome, Severity, ValidationReport, Verdict};
pub use zone::{Zone, civil_date_from_unix};

/// Names that other SDKs, the Temporal CLI and the UI use to address lakegate. Changing any of
/// them breaks running workflows and callers, so they are spelled out once, here.
pub mod names {
    /// Task queue served by `lakegate worker` unless `LAKEGATE_TASK_QUEUE` says otherwise.
    pub const DEFAULT_TASK_QUEUE: &str = "lakegate";
    pub const INGEST_FILE_WORKFLOW: &str = "IngestFileWorkflow";
    /// Signal carrying a [`crate::ReviewSignal`].
    pub const REVIEW_SIGNAL: &str = "review";
    /// Query answering an [`crate::IngestStatus`].
    pub const STATUS_QUERY: &str = "get_status";

    pub const RESOLVE_CONTRACT_ACTIVITY: &str = "resolve_contract";
    pub const VALIDATE_ACTIVITY: &str = "validate_object";
    pub const MOVE_ACTIVITY: &str = "move_object";

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
