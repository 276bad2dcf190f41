//! The polls of a wait for a job or a check's query: gaps that double, a deadline, and a timer
//! that a cancellation of the transform cuts short.

use std::time::Duration;

use lakegate_models::TransformInput;
use temporalio_sdk::WorkflowContext;

use super::{TransformWorkflow, now};

/// What the wait before the next poll ended with.
pub(super) enum Gap {
    /// Poll again.
    Waited,
    /// The deadline has passed, this long after the wait began.
    Deadline(Duration),
    /// The transform was cancelled meanwhile.
    Cancelled,
}

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

    /// Waits before the next poll. Without the deadline (runs from before its patch): one timer
    /// of the gap. With it: nothing once the deadline has passed, else the gap cut short at the
    /// deadline, or by a cancellation of the transform.
    pub(super) async fn wait(
        &mut self,
        ctx: &mut WorkflowContext<TransformWorkflow>,
        with_deadline: bool,
    ) -> Gap {
        if !with_deadline {
            ctx.timer(self.gap).await;
            self.double_gap();
            return Gap::Waited;
        }
        let waited = self.waited(ctx);
        if waited >= self.deadline {
            return Gap::Deadline(waited);
        }
        let wait = self.gap.min(self.deadline - waited);
        let cancelled = temporalio_sdk::workflows::select! {
            _ = ctx.cancelled() => true,
            _ = ctx.timer(wait) => false,
        };
        if cancelled {
            return Gap::Cancelled;
        }
        self.double_gap();
        Gap::Waited
    }
}
