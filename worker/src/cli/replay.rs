//! `lakegate replay`: replay a workflow history against this build.

use std::process::ExitCode;

use lakegate::LakeConfig;

use super::dev_address;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A history file (JSON from `temporal workflow show --output json`, the Web UI's
    /// download or the Rust SDK), or else the id of a workflow to fetch from the cluster.
    target: String,
    /// A specific run of the workflow (default: the latest).
    #[arg(long)]
    run_id: Option<String>,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let address = dev_address(config);
    let codec = config.codec()?;
    let code = lakegate::replay::run_cli(
        &args.target,
        args.run_id.as_deref(),
        address.as_deref(),
        codec.as_ref(),
    )
    .await;
    Ok(ExitCode::from(code))
}
