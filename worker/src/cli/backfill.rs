//! `lakegate backfill`: onboard every file under a landing prefix (OnboardDatasetWorkflow), with
//! a progress line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lakegate::{LakeConfig, client};

use super::dev_address;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A prefix under landing/, e.g. landing/synthea/ehr/.
    prefix: String,
    /// Files validated at once: the next starts as soon as one settles.
    #[arg(long, default_value_t = 20)]
    max_in_flight: u32,
    /// Print the workflow id and return.
    #[arg(long)]
    no_wait: bool,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        prefix,
        max_in_flight,
        no_wait,
    } = args;
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let input = lakegate_models::BackfillInput::new(prefix.clone(), max_in_flight);
    let id = client::start_backfill(&client, &config.task_queue, input).await?;
    println!("backfill of {prefix}: {id}");
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let began = Instant::now();
    let mut last_printed: Option<(u64, Instant)> = None;
    loop {
        let progress = client::backfill_progress(&client, &id).await?;
        let line = lakegate::progress::backfill_line(&progress, began.elapsed());
        if interactive {
            eprint!("\r{line}");
        } else if last_printed.is_none_or(|(settled, at)| {
            // A log gets a line when something moved, at most every few seconds.
            settled != progress.settled && at.elapsed() >= Duration::from_secs(5)
        }) || progress.done
        {
            eprintln!("{line}");
            last_printed = Some((progress.settled, Instant::now()));
        }
        if progress.done {
            if interactive {
                eprintln!();
            }
            println!(
                "backfill done: {} files in {} s ({} already had a workflow)",
                progress.files,
                began.elapsed().as_secs(),
                progress.already_known
            );
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
