//! Sending an alert from a workflow. An alert is a side effect for people: its failure (every
//! webhook down for an hour) is counted by the caller and never fails or blocks the run.

use lakegate_activities::AlertActivities;
use lakegate_models::{Alert, AlertReceipt};
use temporalio_sdk::WorkflowContext;

use crate::options;

/// Sends `alert`; `None` when it could not be delivered.
pub(crate) async fn send<W>(ctx: &mut WorkflowContext<W>, alert: Alert) -> Option<AlertReceipt> {
    ctx.execute_activity(AlertActivities::send_alert, alert, options::alert())
        .await
        .ok()
}
