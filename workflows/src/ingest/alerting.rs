//! The alerts of a quarantined file (issue 15): quarantined, review deadline near, review timed
//! out. Built from the run's status only: rule ids, counts, dataset and table, never the key.

use std::time::{Duration, UNIX_EPOCH};

use lakegate_models::{Alert, AlertKind, IngestStatus};
use temporalio_sdk::WorkflowContext;

use super::IngestFileWorkflow;

/// An alert about this run of `kind`, with what its status says.
pub(super) fn about(ctx: &WorkflowContext<IngestFileWorkflow>, kind: AlertKind) -> Alert {
    let mut alert = Alert::new(kind, ctx.workflow_id());
    ctx.state(|s| fill(&mut alert, &s.status));
    alert
}

fn fill(alert: &mut Alert, status: &IngestStatus) {
    if let Some(contract) = &status.contract {
        alert.dataset = Some(contract.dataset.clone());
        alert.table = Some(contract.table.clone());
    }
    alert.deadline = status.review_deadline;
    match &status.report {
        Some(report) => {
            let failed: Vec<_> = report.failed_rules().collect();
            alert.rules = failed.iter().map(|r| r.id()).collect();
            alert.counts.insert("rows".into(), report.rows);
            alert.counts.insert(
                "failures".into(),
                failed.iter().map(|r| r.failures).sum::<u64>(),
            );
        }
        // No report: the reason is one of the workflow's own constants (no contract, changed).
        None => alert.rules = status.quarantine_reason.iter().cloned().collect(),
    }
}

/// Seconds since the Unix epoch, in workflow time.
pub(super) fn now_secs(ctx: &WorkflowContext<IngestFileWorkflow>) -> u64 {
    ctx.workflow_time()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// When to send `review_deadline_near`, counted from now: `lead` before the deadline, or never
/// when that moment has passed (or the wait is shorter than the lead).
pub(super) fn warning_after(timeout: u64, lead: Option<u64>, elapsed: u64) -> Option<Duration> {
    let at = timeout.checked_sub(lead?)?;
    (at > elapsed).then(|| Duration::from_secs(at - elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_comes_lead_before_the_deadline_or_not_at_all() {
        assert_eq!(
            warning_after(100, Some(30), 5),
            Some(Duration::from_secs(65))
        );
        assert_eq!(warning_after(100, Some(30), 70), None);
        assert_eq!(warning_after(100, Some(100), 0), None);
        assert_eq!(warning_after(100, Some(200), 0), None);
        assert_eq!(warning_after(100, None, 0), None);
    }
}
