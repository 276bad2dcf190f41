//! `lakegate validate`: check files against a contract offline, with the ingest workflow's engine.

use std::path::PathBuf;
use std::process::ExitCode;

use lakegate::LakeConfig;

use super::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The dataset contract (YAML).
    #[arg(long)]
    contract: PathBuf,
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(_config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let code = lakegate_validate::run_offline(
        &args.contract,
        &args.files,
        args.output == Output::Json,
        &mut std::io::stdout(),
    );
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)))
}
