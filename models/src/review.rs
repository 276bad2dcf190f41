//! Lenient reading of the `review` signal. The signal is typed by hand (the Web UI's signal form,
//! `temporal workflow signal`), so a mistake must be reported, not fail every workflow task of the
//! run (which is what a typed handler does when the payload does not decode).

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

impl ReviewSignal {
    /// Reads a raw signal payload, or says which field is wrong (without quoting it).
    pub fn from_raw(value: &Value) -> Result<ReviewSignal, RejectedReview> {
        let wrong = |field: &str, expected: &str| RejectedReview {
            reason: format!("{field}: expected {expected}; a review is {REVIEW_SHAPE}"),
        };
        let Value::Object(fields) = value else {
            return Err(wrong("signal", "a JSON object"));
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
            (r#""SENT1""#, "signal:", "SENT1"),
        ] {
            let reason = rejected(raw);
            assert!(reason.starts_with(field), "{reason}");
            assert!(!reason.contains(sent), "{reason} quotes the payload");
            assert!(!reason.contains("SENT1"), "{reason} quotes the payload");
        }
    }
}
