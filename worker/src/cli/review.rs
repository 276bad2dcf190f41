//! `lakegate review`: approve or reject a quarantined file (the `review` signal), then show the
//! outcome.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::ValueEnum;
use lakegate::{LakeConfig, client};
use lakegate_models::{Decision, IngestPhase, ReviewSignal};

use super::{dev_address, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    workflow_id: String,
    decision: DecisionArg,
    /// Who decided; recorded in the workflow history.
    #[arg(long)]
    reviewer: String,
    /// Why; recorded in the workflow history.
    #[arg(long, default_value = "")]
    reason: String,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DecisionArg {
    Approve,
    Reject,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        workflow_id,
        decision,
        reviewer,
        reason,
    } = args;
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let decision = match decision {
        DecisionArg::Approve => Decision::Approve,
        DecisionArg::Reject => Decision::Reject,
    };
    let before = client::query_status(&client, &workflow_id).await?;
    if before.phase != IngestPhase::AwaitingReview {
        bail!(
            "{workflow_id} is not waiting for review (phase: {})",
            before.phase.as_str()
        );
    }
    client::send_review(
        &client,
        &workflow_id,
        ReviewSignal {
            decision,
            reviewer,
            reason,
        },
    )
    .await?;
    let status = client::wait_for_status(&client, &workflow_id, Duration::from_secs(120), |s| {
        matches!(s.phase, IngestPhase::Promoted | IngestPhase::Rejected)
            || (s.phase == IngestPhase::AwaitingReview && s.review.is_some())
    })
    .await?;
    render::print_status(&workflow_id, &status);
    Ok(ExitCode::SUCCESS)
}
