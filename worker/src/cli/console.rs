//! `lakegate console`: serve the review console until SIGINT or SIGTERM.

use std::process::ExitCode;

use lakegate::console::{ConsoleArgs, RunningConsole};
use lakegate::{LakeConfig, client};

use super::dev_address;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub console: ConsoleArgs,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let shutdown = super::shutdown_signal();
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let running = lakegate::console::start(config, &args.console, client).await?;
    print(&running);
    shutdown.await;
    running.stop().await?;
    Ok(ExitCode::SUCCESS)
}

/// Where the console is, and with token sign-in the link that signs a browser in.
pub fn print(running: &RunningConsole) {
    println!("Review console: http://{}", running.addr);
    if let Some(url) = &running.sign_in_url {
        println!("Console sign-in (local token): {url}");
    }
}
