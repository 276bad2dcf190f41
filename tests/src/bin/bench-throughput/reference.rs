//! The reference: the cheapest workflow that makes the same round trips, timed beside lakegate.

use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

pub(crate) const REFERENCE_WORKFLOW: &str = "BenchReferenceWorkflow";
pub(crate) const REFERENCE_ACTIVITY: &str = "bench_reference_echo";

/// The least a workflow can do with activities: one round trip per step, in sequence, with the
/// activity options lakegate's short activities use. One step is the reference; four are
/// as many round trips as a promoted file makes (resolve, validate, move, notify), which tells
/// round trips apart from the work lakegate does in them.
#[workflow]
#[derive(Default)]
pub(crate) struct ReferenceWorkflow;

#[workflow_methods]
impl ReferenceWorkflow {
    #[run(name = REFERENCE_WORKFLOW)]
    pub(crate) async fn run(
        ctx: &mut WorkflowContext<Self>,
        steps: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let mut echoed = Vec::with_capacity(steps.len());
        for step in steps {
            echoed.push(
                ctx.execute_activity(
                    ReferenceActivities::echo,
                    step,
                    lakegate_workflows::options::short(),
                )
                .await?,
            );
        }
        Ok(echoed)
    }
}

pub(crate) struct ReferenceActivities;

#[activities]
impl ReferenceActivities {
    #[activity(name = REFERENCE_ACTIVITY)]
    async fn echo(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
        Ok(input)
    }
}

pub(crate) fn reference_queue(task_queue: &str) -> String {
    format!("{task_queue}-reference")
}
