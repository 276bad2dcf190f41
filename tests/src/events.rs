//! A run's history read event by event, as the server stored it (the SDK's JSON form, payloads
//! decrypted): for assertions that something happened in a run, or never did.

use serde_json::Value;

use crate::TestEnv;

impl TestEnv {
    /// The events of the latest run of `workflow_id`.
    pub async fn events(&self, workflow_id: &str) -> Vec<Value> {
        let history: Value =
            serde_json::from_slice(&self.history_json(workflow_id).await.unwrap()).unwrap();
        history["events"].as_array().cloned().unwrap_or_default()
    }
}

/// How many of `events` carry `attributes` (e.g. `"WorkflowTaskFailedEventAttributes"`).
pub fn count_events(events: &[Value], attributes: &str) -> usize {
    events
        .iter()
        .filter(|e| e["attributes"].get(attributes).is_some())
        .count()
}

/// The failure that ended a failed run; panics when the run did not fail.
pub fn run_failure(events: &[Value]) -> &Value {
    failure_of_run(events).expect("the run failed")
}

/// The failure that ended the run, if it failed.
pub fn failure_of_run(events: &[Value]) -> Option<&Value> {
    events
        .iter()
        .find_map(|e| e["attributes"].get("WorkflowExecutionFailedEventAttributes"))
        .map(|failed| &failed["failure"])
}

/// The message the codec moved into a failure's (encrypted) encoded attributes; the history
/// here is decrypted, so they read as JSON. `None` when the failure has none.
pub fn encoded_message(failure: &Value) -> Option<String> {
    let encoded = failure["encodedAttributes"]["data"].as_str()?;
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
    let attributes: Value = serde_json::from_slice(&bytes).unwrap();
    Some(attributes["message"].as_str().unwrap().to_owned())
}
