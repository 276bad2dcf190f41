//! Lenient reading of a review (the `review` signal and the `review` Update), and what the Update
//! answers. A review is typed by hand (the Web UI's forms, `temporal workflow signal`/`update`), so
//! a mistake must be reported, not fail every workflow task of the run (which is what a typed
//! handler does when the payload does not decode).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Decision, ReviewSignal};

/// The shape a `review` signal must have, quoted in every rejection.
pub const REVIEW_SHAPE: &str =
    r#"{"decision": "approve"|"reject", "reviewer": "<name>", "reason": "<text, optional>"}"#;

/// A `review` signal the workflow could not read. `reason` names the field and the expected
/// shape, never the value sent (a reviewer may paste anything into the form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RejectedReview {
    pub reason: String,
}

/// A `review` signal that was read but not acted on (it came before quarantine, while another
/// review was pending, or after a decision). `reason` says which, never the signal's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IgnoredReview {
    pub reason: String,
}

/// The answer of the `review` Update, given once the workflow has acted on the decision.
/// JSON: `{"outcome": "promoted", "key": "raw/..."}`, `{"outcome": "rejected", "key":
/// "rejected/..."}` or `{"outcome": "waiting", "reason": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReviewOutcome {
    /// Approved and moved to raw/ (the key it has there).
    Promoted { key: String },
    /// Rejected and moved to rejected/.
    Rejected { key: String },
    /// Approved, but the file cannot be promoted yet (no contract claims it): it stays in
    /// quarantine and can be reviewed again.
    Waiting { reason: String },
}

impl std::fmt::Display for ReviewOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewOutcome::Promoted { key } => write!(f, "promoted to {key}"),
            ReviewOutcome::Rejected { key } => write!(f, "rejected to {key}"),
            ReviewOutcome::Waiting { reason } => write!(f, "still waiting: {reason}"),
        }
    }
}

impl ReviewSignal {
    /// Reads a raw signal payload, or says which field is wrong (without quoting it).
    pub fn from_raw(value: &Value) -> Result<ReviewSignal, RejectedReview> {
        let wrong = |field: &str, expected: &str| RejectedReview {
            reason: format!("{field}: expected {expected}; a review is {REVIEW_SHAPE}"),
        };
        let Value::Object(fields) = value else {
            return Err(wrong("review", "a JSON object"));
        };
        let decision = match fields.get("decision").and_then(Value::as_str) {
            Some("approve") => Decision::Approve,
            Some("reject") => Decision::Reject,
            _ => return Err(wrong("decision", r#""approve" or "reject""#)),
        };
        let Some(reviewer) = fields.get("reviewer").and_then(Value::as_str) else {
            return Err(wrong("reviewer", "a string"));
        };
        let reason = match fields.get("reason") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(reason)) => reason.clone(),
            Some(_) => return Err(wrong("reason", "a string")),
        };
        Ok(ReviewSignal {
            decision,
            reviewer: reviewer.to_owned(),
            reason,
        })
    }

    /// Reads a `review` Update's payload: as [`Self::from_raw`], and the reviewer must name
    /// someone (the Update's validator refuses what the lenient signal only records).
    pub fn from_update(value: &Value) -> Result<ReviewSignal, RejectedReview> {
        let review = Self::from_raw(value)?;
        if review.reviewer.trim().is_empty() {
            return Err(RejectedReview {
                reason: format!(
                    "reviewer: expected a non-empty string naming who decides; a review is \
                     {REVIEW_SHAPE}"
                ),
            });
        }
        Ok(review)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(raw: &str) -> String {
        ReviewSignal::from_raw(&serde_json::from_str(raw).unwrap())
            .unwrap_err()
            .reason
    }

    #[test]
    fn a_typed_signal_reads_as_before() {
        let raw = r#"{"decision":"approve","reviewer":"alice","reason":"ok"}"#;
        let typed: ReviewSignal = serde_json::from_str(raw).unwrap();
        let lenient = ReviewSignal::from_raw(&serde_json::from_str(raw).unwrap()).unwrap();
        assert_eq!(lenient, typed);
        let no_reason = r#"{"decision":"reject","reviewer":"bob"}"#;
        let lenient = ReviewSignal::from_raw(&serde_json::from_str(no_reason).unwrap()).unwrap();
        assert_eq!(lenient.reason, "");
    }

    #[test]
    fn mistakes_name_the_field_and_never_the_value() {
        for (raw, field, sent) in [
            (
                r#"{"decision":"approved","reviewer":"SENT1"}"#,
                "decision:",
                "approved",
            ),
            (
                r#"{"decision":"Approve","reviewer":"SENT1"}"#,
                "decision:",
                "Approve",
            ),
            (r#"{"decision":"approve"}"#, "reviewer:", "SENT1"),
            (
                r#"{"decision":"approve","reviewer":"SENT1","reason":7}"#,
                "reason:",
                "SENT1",
            ),
            (r#""SENT1""#, "review:", "SENT1"),
        ] {
            let reason = rejected(raw);
            assert!(reason.starts_with(field), "{reason}");
            assert!(!reason.contains(sent), "{reason} quotes the payload");
            assert!(!reason.contains("SENT1"), "{reason} quotes the payload");
        }
    }

    #[test]
    fn an_update_needs_a_reviewer_who_is_someone() {
        for raw in [
            r#"{"decision":"approve","reviewer":""}"#,
            r#"{"decision":"approve","reviewer":"   "}"#,
        ] {
            let value = serde_json::from_str(raw).unwrap();
            assert!(
                ReviewSignal::from_raw(&value).is_ok(),
                "the signal stays lenient"
            );
            let reason = ReviewSignal::from_update(&value).unwrap_err().reason;
            assert!(
                reason.starts_with("reviewer: expected a non-empty"),
                "{reason}"
            );
        }
        let ok = serde_json::json!({"decision": "reject", "reviewer": "bob"});
        assert_eq!(ReviewSignal::from_update(&ok).unwrap().reviewer, "bob");
    }

    #[test]
    fn the_outcome_is_tagged_json() {
        let promoted = ReviewOutcome::Promoted {
            key: "raw/x".into(),
        };
        assert_eq!(
            serde_json::to_value(&promoted).unwrap(),
            serde_json::json!({"outcome": "promoted", "key": "raw/x"})
        );
        let waiting: ReviewOutcome =
            serde_json::from_str(r#"{"outcome":"waiting","reason":"r"}"#).unwrap();
        assert_eq!(waiting, ReviewOutcome::Waiting { reason: "r".into() });
    }
}
