//! `LandingSweepWorkflow`: one sweep of landing/, run on a Temporal Schedule as the safety net
//! for S3 events that never arrived. A workflow rather than a cron job so each sweep is retried,
//! visible in the UI and recorded.

use lakegate_activities::SweepActivities;
use lakegate_models::{SweepInput, SweepResult, names};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::options;

#[workflow]
#[derive(Default)]
pub struct LandingSweepWorkflow;

#[workflow_methods]
impl LandingSweepWorkflow {
    #[run(name = names::LANDING_SWEEP_WORKFLOW)]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: SweepInput,
    ) -> WorkflowResult<SweepResult> {
        // A listing of a large landing zone and one start per file: minutes, not seconds, so
        // `options::sweep`'s 30-minute attempt. It does not heartbeat: a worker lost mid-sweep
        // costs a retry only once that attempt times out.
        Ok(ctx
            .execute_activity(SweepActivities::sweep_landing, input, options::sweep())
            .await?)
    }
}
