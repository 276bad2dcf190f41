//! `lakegate review`: approve or reject a quarantined file through the `review` Update, which
//! answers once the workflow has acted: promoted, rejected, or still waiting and why. A review
//! the workflow refuses (not in quarantine yet, already decided, another review first) exits 1
//! with the workflow's message, and nothing was decided.

use std::process::ExitCode;

use anyhow::bail;
use clap::ValueEnum;
use lakegate::{LakeConfig, client};
use lakegate_models::{Decision, ReviewSignal};

use super::{dev_address, outln, render};

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
    let review = ReviewSignal {
        decision,
        reviewer,
        reason,
    };
    let outcome = match client::review(&client, &workflow_id, &review).await? {
        Ok(outcome) => outcome,
        Err(refused) => bail!("{workflow_id}: review refused: {refused}"),
    };
    outln!("outcome:   {outcome}")?;
    let status = client::query_status(&client, &workflow_id).await?;
    render::print_status(&workflow_id, &status)?;
    Ok(ExitCode::SUCCESS)
}
