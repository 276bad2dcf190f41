//! The metrics port: what lakegate counts and times, recorded by activities.
//!
//! Activities, not workflows, record: workflow code is replayed (after a worker restart, on a
//! cache eviction), so a counter bumped there would count each file again; an activity runs once
//! per attempt. The worker implements this trait on the Temporal SDK's meter, so lakegate's
//! metrics and the SDK's are served by one exporter; tests and the offline CLI use [`NoMetrics`].
//!
//! Labels are dataset names (from contracts and pipeline settings), outcomes and dbt stage
//! folders: never object keys or cell values, which may carry PHI.

use std::time::Duration;

use lakegate_models::Zone;

/// Where a move left a file. The zones the models crate defines, plus the review decision that
/// `approved` records (quarantine → raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileOutcome {
    /// landing → raw: passed validation.
    Promoted,
    /// → quarantine: failed validation, or no contract claims the key.
    Quarantined,
    /// quarantine → raw: a reviewer approved it.
    Approved,
    /// quarantine → rejected: a reviewer rejected it, or the review timed out.
    Rejected,
}

impl FileOutcome {
    pub const ALL: [FileOutcome; 4] = [
        FileOutcome::Promoted,
        FileOutcome::Quarantined,
        FileOutcome::Approved,
        FileOutcome::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileOutcome::Promoted => "promoted",
            FileOutcome::Quarantined => "quarantined",
            FileOutcome::Approved => "approved",
            FileOutcome::Rejected => "rejected",
        }
    }

    /// The outcome a move from `from` to `to` stands for, if it ends a stage of a file's way.
    pub fn of_move(from: &str, to: &str) -> Option<FileOutcome> {
        match (Zone::of_key(from), Zone::of_key(to)?) {
            (Some(Zone::Quarantine), Zone::Raw) => Some(FileOutcome::Approved),
            (_, Zone::Raw) => Some(FileOutcome::Promoted),
            (_, Zone::Quarantine) => Some(FileOutcome::Quarantined),
            (_, Zone::Rejected) => Some(FileOutcome::Rejected),
            (_, Zone::Landing) => None,
        }
    }
}

/// The dataset label of a file no contract claims.
pub const UNMATCHED_DATASET: &str = "unmatched";

/// Receives lakegate's measurements. Implementations must be cheap and must not fail: a metric
/// never fails an activity.
pub trait Metrics: Send + Sync {
    /// A file reached `outcome` (counted once per successful move; a retried move that had
    /// completed counts again, so this is at-least-once).
    fn file_outcome(&self, dataset: &str, outcome: FileOutcome);
    /// Bytes of a file read by the validator.
    fn bytes_validated(&self, dataset: &str, bytes: u64);
    /// A crawl's duration: from the crawler's own start time to the poll that saw it finish.
    fn crawl_finished(&self, dataset: &str, duration: Duration);
    /// A dbt stage job's duration: from submission to the poll that saw it finish.
    fn job_finished(&self, dataset: &str, stage: &str, duration: Duration);
}

/// Records nothing: the default where no exporter is configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn file_outcome(&self, _: &str, _: FileOutcome) {}
    fn bytes_validated(&self, _: &str, _: u64) {}
    fn crawl_finished(&self, _: &str, _: Duration) {}
    fn job_finished(&self, _: &str, _: &str, _: Duration) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_map_to_outcomes() {
        let of = FileOutcome::of_move;
        assert_eq!(
            of("landing/s/d/f.csv", "raw/d/t/ingest_date=x/f.csv"),
            Some(FileOutcome::Promoted)
        );
        assert_eq!(
            of("landing/s/d/f.csv", "quarantine/s/d/f.csv"),
            Some(FileOutcome::Quarantined)
        );
        assert_eq!(
            of("quarantine/s/d/f.csv", "raw/d/t/ingest_date=x/f.csv"),
            Some(FileOutcome::Approved)
        );
        assert_eq!(
            of("quarantine/s/d/f.csv", "rejected/s/d/f.csv"),
            Some(FileOutcome::Rejected)
        );
        assert_eq!(of("raw/a", "landing/a"), None);
        assert_eq!(of("landing/a", "elsewhere/a"), None);
    }
}
