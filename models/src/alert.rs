//! Alerts: what a workflow tells the people around the pipeline, through the webhooks in
//! pipeline.yaml. Everything here is PHI-free by construction: ids, dataset and table names, rule
//! ids, counts and times. Never a landing key (it can hold a name) and never tool text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The events a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A file went to quarantine/ and waits for a person.
    FileQuarantined,
    /// A quarantined file's review deadline is near; at the deadline it is rejected.
    ReviewDeadlineNear,
    /// Nobody decided in time: the file was rejected.
    ReviewTimedOut,
    /// A transform's SQL or row-count check failed.
    CheckFailed,
    /// A transform stage failed (its dbt job, or a failed dbt test).
    TransformFailed,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::FileQuarantined,
        AlertKind::ReviewDeadlineNear,
        AlertKind::ReviewTimedOut,
        AlertKind::CheckFailed,
        AlertKind::TransformFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::FileQuarantined => "file_quarantined",
            AlertKind::ReviewDeadlineNear => "review_deadline_near",
            AlertKind::ReviewTimedOut => "review_timed_out",
            AlertKind::CheckFailed => "check_failed",
            AlertKind::TransformFailed => "transform_failed",
        }
    }

    /// A short sentence for chat messages.
    pub fn headline(self) -> &'static str {
        match self {
            AlertKind::FileQuarantined => "File quarantined, waiting for review",
            AlertKind::ReviewDeadlineNear => "Review deadline near",
            AlertKind::ReviewTimedOut => "Review timed out, file rejected",
            AlertKind::CheckFailed => "Transform check failed",
            AlertKind::TransformFailed => "Transform failed",
        }
    }
}

/// One alert, as a workflow hands it to the `send_alert` activity. The plain-JSON webhook body
/// is this struct (plus a console link), so its fields are part of the webhook contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    /// The workflow the alert is about (an ingest's id is a hash, never the key).
    pub workflow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Failed rule ids (`rule(column)`), check names or dbt stage names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// Counts that go with the rules, e.g. `failed_rows`, `violating_rows`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u64>,
    /// Review deadline, seconds since the Unix epoch (quarantine alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
}

impl Alert {
    pub fn new(kind: AlertKind, workflow_id: impl Into<String>) -> Self {
        Self {
            kind,
            workflow_id: workflow_id.into(),
            dataset: None,
            table: None,
            rules: Vec::new(),
            counts: BTreeMap::new(),
            deadline: None,
        }
    }
}

/// What `send_alert` did. Recorded in the history, so the workflow's later choices (whether to
/// arm a deadline-near timer) replay from it and not from the worker's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertReceipt {
    /// Names of the webhooks that accepted the alert.
    #[serde(default)]
    pub delivered: Vec<String>,
    /// Webhooks still down after their tries, with why (`name: HTTP 503`), when others took it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<String>,
    /// For a quarantine alert: how long before the review deadline to send the deadline-near
    /// alert; `None` when no webhook subscribes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_warning_secs: Option<u64>,
}
