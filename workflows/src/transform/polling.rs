//! The polls of a wait for a job or a check's query: gaps that double, a deadline, and a timer
//! that a cancellation of the transform cuts short.

use std::time::Duration;

use lakegate_models::TransformInput;
use temporalio_sdk::WorkflowContext;

use super::{TransformWorkflow, now};

/// The polls of a wait with a deadline: a gap from `poll_initial_secs`, doubled after each poll
/// up to `poll_max_secs`; the deadline counts from the moment the wait began.
pub(super) struct Polling {
    started: Duration,
    pub(super) deadline: Duration,
    gap: Duration,
    max_gap: Duration,
}

impl Polling {
    pub(super) fn new(
        ctx: &WorkflowContext<TransformWorkflow>,
        input: &TransformInput,
        deadline_secs: u64,
    ) -> Self {
        Self {
            started: now(ctx),
            deadline: Duration::from_secs(deadline_secs.max(1)),
            gap: Duration::from_secs(input.poll_initial_secs.max(1)),
            max_gap: Duration::from_secs(input.poll_max_secs.max(1)),
        }
    }

    pub(super) fn waited(&self, ctx: &WorkflowContext<TransformWorkflow>) -> Duration {
        now(ctx).saturating_sub(self.started)
    }

    fn double_gap(&mut self) {
        self.gap = (self.gap * 2).min(self.max_gap);
    }

    /// The wait before the deadline patch: one timer of the gap, then the gap doubled.
    pub(super) async fn sleep(&mut self, ctx: &mut WorkflowContext<TransformWorkflow>) {
        ctx.timer(self.gap).await;
        self.double_gap();
    }

    /// Waits the gap (cut short at the deadline, `waited` being the time spent so far); true
    /// when the transform was cancelled meanwhile.
    pub(super) async fn cancelled_while_waiting(
        &mut self,
        ctx: &mut WorkflowContext<TransformWorkflow>,
        waited: Duration,
    ) -> bool {
        let wait = self.gap.min(self.deadline - waited);
        let cancelled = temporalio_sdk::workflows::select! {
            _ = ctx.cancelled() => true,
            _ = ctx.timer(wait) => false,
        };
        if !cancelled {
            self.double_gap();
        }
        cancelled
    }
}
