//! `RetractWorkflow`'s input and status: taking a promoted file back out of raw/ into rejected/,
//! with who asked and why.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ContractMatch, Zone};

/// The shape a retract input must have, quoted in every refusal of one.
pub const RETRACT_SHAPE: &str =
    r#"{"ingest_workflow_id": "ingest-<hash>", "reviewer": "<name>", "reason": "<text>"}"#;

/// Input of `RetractWorkflow`. The file is named by the ingest run that promoted it, never by a
/// key: the workflow reads the promoted key from that run's result, so no client can point a
/// retract at an object of its choosing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetractInput {
    pub ingest_workflow_id: String,
    /// Who retracted (the OS user or `--reviewer`).
    pub reviewer: String,
    /// Why. Free text typed by a person: kept in the encrypted payloads, never in a search
    /// attribute or a log line.
    pub reason: String,
}

impl RetractInput {
    /// Reads a raw start payload, or says which field is wrong (never quoting its value). Every
    /// field must be a non-empty string: a retract without who or why is no record.
    pub fn from_raw(value: &Value) -> Result<RetractInput, String> {
        let wrong = |field: &str, expected: &str| {
            format!(
                "RetractWorkflow input {field}: expected {expected}; the input is {RETRACT_SHAPE}"
            )
        };
        let Value::Object(fields) = value else {
            return Err(wrong("(the whole input)", "a JSON object"));
        };
        let text = |field: &str| match fields.get(field).and_then(Value::as_str) {
            Some(text) if !text.trim().is_empty() => Ok(text.to_owned()),
            _ => Err(wrong(field, "a non-empty string")),
        };
        Ok(RetractInput {
            ingest_workflow_id: text("ingest_workflow_id")?,
            reviewer: text("reviewer")?,
            reason: text("reason")?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetractPhase {
    /// Reading the ingest run's result and finding its file in raw/.
    Checking,
    /// Moving the file from raw/ to rejected/.
    Moving,
    /// Handing the emptied partition to the dataset's crawl workflow (catalog, transform).
    Cataloguing,
    Retracted,
    /// The ingest run did not promote a file that is still in raw/: nothing moved.
    Refused,
}

impl RetractPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RetractPhase::Checking => "checking",
            RetractPhase::Moving => "moving",
            RetractPhase::Cataloguing => "cataloguing",
            RetractPhase::Retracted => "retracted",
            RetractPhase::Refused => "refused",
        }
    }
}

/// Answer of `RetractWorkflow`'s `get_status` query, and its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RetractStatus {
    pub phase: RetractPhase,
    pub ingest_workflow_id: String,
    pub reviewer: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractMatch>,
    /// The key the ingest run promoted the file to (in raw/).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_key: Option<String>,
    /// Where the file is now: raw/ until the move, then rejected/.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<Zone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The crawl workflow told about the emptied partition (`None`: no pipeline configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawl_workflow_id: Option<String>,
    /// Why the retract was refused (names the run and its phase, never a key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl RetractStatus {
    pub fn new(input: &RetractInput) -> Self {
        Self {
            phase: RetractPhase::Checking,
            ingest_workflow_id: input.ingest_workflow_id.clone(),
            reviewer: input.reviewer.clone(),
            reason: input.reason.clone(),
            contract: None,
            promoted_key: None,
            zone: None,
            key: None,
            crawl_workflow_id: None,
            refused: None,
        }
    }
}

/// What the retract's first activity found about the ingest run and its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromotedRun {
    /// The run completed with its file in raw/, and the file is still there.
    InRaw {
        contract: ContractMatch,
        key: String,
        /// The object's ETag now: the move happens only while it still has it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        etag: Option<String>,
    },
    /// Why this run's file cannot be retracted (names the run and its phase, never a key).
    Refused { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_input_reads_leniently_too() {
        let input = RetractInput {
            ingest_workflow_id: "ingest-abc".into(),
            reviewer: "alice".into(),
            reason: "bad values".into(),
        };
        let raw = serde_json::to_value(&input).unwrap();
        assert_eq!(RetractInput::from_raw(&raw).unwrap(), input);
    }

    #[test]
    fn mistakes_name_the_field_and_never_the_value() {
        for (raw, field) in [
            (r#""SENT1""#, "(the whole input)"),
            (r#"{"reviewer":"SENT1","reason":"x"}"#, "ingest_workflow_id"),
            (
                r#"{"ingest_workflow_id":"SENT1","reviewer":7,"reason":"x"}"#,
                "reviewer",
            ),
            (
                r#"{"ingest_workflow_id":"SENT1","reviewer":"a","reason":"  "}"#,
                "reason",
            ),
        ] {
            let error = RetractInput::from_raw(&serde_json::from_str(raw).unwrap()).unwrap_err();
            assert!(error.contains(&format!("input {field}:")), "{error}");
            assert!(!error.contains("SENT1"), "{error}");
        }
    }
}
