//! `LandingSweepWorkflow`: one sweep of landing/, run on a Temporal Schedule as the safety net
//! for S3 events that never arrived. A workflow rather than a cron job so each sweep is retried,
//! visible in the UI and recorded.

use lakegate_activities::SweepActivities;
use lakegate_models::{SweepInput, SweepResult, WorkflowInput, names};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::options;

#[workflow]
pub struct LandingSweepWorkflow {
    input: SweepInput,
    /// Why the start input did not decode (the run fails at once; see `crate::start`).
    malformed: Option<String>,
}

#[workflow_methods]
impl LandingSweepWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: WorkflowInput<SweepInput>) -> Self {
        let (input, malformed) = input.split();
        Self { input, malformed }
    }

    #[run(name = names::LANDING_SWEEP_WORKFLOW)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SweepResult> {
        if let Some(why) = ctx.state(|s| s.malformed.clone()) {
            return Err(crate::malformed_input(names::LANDING_SWEEP_WORKFLOW, &why).into());
        }
        let input = ctx.state(|s| s.input.clone());
        // A listing of a large landing zone and one start per file: minutes, not seconds, so
        // `options::sweep`'s 30-minute attempt. It does not heartbeat: a worker lost mid-sweep
        // costs a retry only once that attempt times out.
        Ok(ctx
            .execute_activity(SweepActivities::sweep_landing, input, options::sweep())
            .await?)
    }
}
