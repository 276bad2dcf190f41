//! `lakegate backfill`: onboard every file under a landing prefix (OnboardDatasetWorkflow), with
//! a progress line. Files whose ingest failed, was terminated, cancelled or timed out are settled
//! but not onboarded: the summary names them and the exit code is [`EXIT_FAILED`].

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use lakegate::LakeConfig;
use lakegate::client::{self, RunState};

use super::{EXIT_FAILED, dev_address, outln};

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
    outln!("backfill of {prefix}: {id}")?;
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
            outln!(
                "backfill done: {} files in {} s ({} already had a workflow)",
                progress.files,
                began.elapsed().as_secs(),
                progress.already_known
            )?;
            if progress.failed > 0 {
                outln!(
                    "{} FAILED: their ingest workflows failed, were terminated, cancelled or \
                     timed out, so those files were not onboarded (the Web UI says why; the same \
                     backfill again retries the ones still in landing/)",
                    progress.failed
                )?;
                return Ok(ExitCode::from(EXIT_FAILED));
            }
            return Ok(ExitCode::SUCCESS);
        }
        // A backfill that was terminated or failed never reports done: say so instead of
        // waiting for ever.
        if client::run_state(&client, &id).await? == Some(RunState::Failed) {
            bail!("the backfill workflow {id} ended before every file settled (see the Web UI)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
