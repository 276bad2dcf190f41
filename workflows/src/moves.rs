//! The move IngestFileWorkflow and RetractWorkflow both make: to the file's name in its new zone,
//! or, when a different file already holds that name, to the name tagged with this file's
//! version, so both files are kept and nothing is overwritten.

use lakegate_activities::{IngestActivities, MoveRequest, MoveResult};
use lakegate_models::keys::version_tagged;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

use crate::options;

/// Moves with `request(to)` and, if `to` is taken, with `request(tagged)`: one `move_object`
/// activity, or two. The name tried last and what its move answered; each workflow decides
/// what a taken tagged name means.
pub(crate) async fn move_or_tagged<W>(
    ctx: &mut WorkflowContext<W>,
    to: String,
    tag: &str,
    request: impl Fn(&str) -> MoveRequest,
) -> WorkflowResult<(String, MoveResult)> {
    let first = ctx
        .execute_activity(
            IngestActivities::move_object,
            request(&to),
            options::short(),
        )
        .await?;
    if first != MoveResult::DestinationTaken {
        return Ok((to, first));
    }
    let tagged = version_tagged(&to, tag);
    let second = ctx
        .execute_activity(
            IngestActivities::move_object,
            request(&tagged),
            options::short(),
        )
        .await?;
    Ok((tagged, second))
}
