//! `lakegate status`: an ingest workflow's phase, contract, validation report and decision.

use std::process::ExitCode;

use lakegate::{LakeConfig, client};

use super::{Output, dev_address, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    workflow_id: String,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let status = client::query_status(&client, &args.workflow_id).await?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        render::print_status(&args.workflow_id, &status);
    }
    Ok(ExitCode::SUCCESS)
}
