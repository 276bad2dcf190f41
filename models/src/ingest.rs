use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ValidationReport, Zone};

pub const DEFAULT_REVIEW_TIMEOUT_SECS: u64 = 7 * 24 * 3600;

/// Input of `IngestFileWorkflow`: one object version in landing/. (`Default` is only the
/// placeholder state of a run whose input did not decode, see [`crate::WorkflowInput`].)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestInput {
    pub bucket: String,
    pub key: String,
    /// S3's version id (its ETag, unquoted, in an unversioned bucket), or the content SHA-256
    /// on the local backend (docs/clients.md). Part of the workflow id, so the same bytes are
    /// onboarded once.
    pub version: String,
    /// How long a quarantined file waits for a `review` signal before it is rejected.
    #[serde(default = "default_review_timeout")]
    pub review_timeout_secs: u64,
    /// Set by a backfill, which asks for one crawl of all its files once they have settled
    /// instead of one notification per file. A file promoted only after review notifies the
    /// crawl itself, as the backfill has moved on by then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crawl_later: bool,
}

pub(crate) fn default_review_timeout() -> u64 {
    DEFAULT_REVIEW_TIMEOUT_SECS
}

/// Which contract and table a landing key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ContractMatch {
    pub dataset: String,
    pub table: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestPhase {
    Resolving,
    Validating,
    Promoting,
    /// In quarantine/, waiting for a review (the `review` Update or signal).
    AwaitingReview,
    Rejecting,
    Promoted,
    Rejected,
}

impl IngestPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestPhase::Resolving => "resolving",
            IngestPhase::Validating => "validating",
            IngestPhase::Promoting => "promoting",
            IngestPhase::AwaitingReview => "awaiting_review",
            IngestPhase::Rejecting => "rejecting",
            IngestPhase::Promoted => "promoted",
            IngestPhase::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Reject,
}

/// The `review` signal. Small enough to type into the Temporal UI's signal form:
/// `{"decision": "approve", "reviewer": "alice", "reason": "header fixed upstream"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewSignal {
    pub decision: Decision,
    pub reviewer: String,
    #[serde(default)]
    pub reason: String,
}

/// Answer of the `get_status` query, and the bulk of the workflow's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IngestStatus {
    pub phase: IngestPhase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractMatch>,
    /// Why the file went to quarantine (rule ids and columns, or "no contract matches").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ValidationReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewSignal>,
    /// True when the review wait ran out and the file was rejected for it.
    #[serde(default)]
    pub review_timed_out: bool,
    /// When the file began waiting for review (Unix seconds, workflow time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_review_since: Option<u64>,
    /// When an undecided file will be rejected (Unix seconds, workflow time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_deadline: Option<u64>,
    /// `review` signals that could not be read, in arrival order (field and expected shape only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected_reviews: Vec<crate::RejectedReview>,
    /// `review` signals that were read but not acted on, in arrival order, each with why (it
    /// came before quarantine, while another review was pending, or after the decision).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_reviews: Vec<crate::IgnoredReview>,
    /// Where the object is now.
    pub zone: Zone,
    pub key: String,
    /// The crawl workflow told about this file once it reached raw/ (links the runs in the UI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawl_workflow_id: Option<String>,
}

impl IngestStatus {
    pub fn new(key: String) -> Self {
        Self {
            phase: IngestPhase::Resolving,
            contract: None,
            quarantine_reason: None,
            report: None,
            review: None,
            review_timed_out: false,
            awaiting_review_since: None,
            review_deadline: None,
            rejected_reviews: Vec::new(),
            ignored_reviews: Vec::new(),
            zone: Zone::Landing,
            key,
            crawl_workflow_id: None,
        }
    }
}

/// Result of `IngestFileWorkflow`.
pub type IngestOutcome = IngestStatus;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_signal_is_typeable() {
        let s: ReviewSignal =
            serde_json::from_str(r#"{"decision":"approve","reviewer":"alice"}"#).unwrap();
        assert_eq!(s.decision, Decision::Approve);
        assert_eq!(s.reason, "");
    }

    #[test]
    fn input_defaults_review_timeout() {
        let i: IngestInput =
            serde_json::from_str(r#"{"bucket":"b","key":"landing/x","version":"v"}"#).unwrap();
        assert_eq!(i.review_timeout_secs, DEFAULT_REVIEW_TIMEOUT_SECS);
    }
}
