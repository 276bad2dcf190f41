//! `lakegate schedule`: Temporal Schedules for the landing sweep and nightly transforms.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use lakegate::{LakeConfig, client, schedules};

use super::dev_address;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: ScheduleCommand,
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Sweep landing/ on an interval, onboarding files whose events never arrived.
    Sweep {
        #[arg(long, default_value = schedules::SWEEP_SCHEDULE_ID)]
        id: String,
        /// Seconds between sweeps.
        #[arg(long, default_value_t = 900)]
        every_secs: u64,
        /// Only files older than this many seconds (younger ones may still get their event).
        #[arg(long, default_value_t = 600)]
        older_than_secs: u64,
    },
    /// Run a dataset's transform (dbt stages and checks) on a cron schedule.
    Transform {
        #[arg(long)]
        dataset: String,
        /// Cron expression, e.g. "0 2 * * *" for 02:00 UTC nightly.
        #[arg(long, default_value = "0 2 * * *")]
        cron: String,
        /// Schedule id; default lakegate-transform-<dataset>.
        #[arg(long)]
        id: Option<String>,
    },
    /// List schedules.
    List,
    Pause {
        id: String,
    },
    Unpause {
        id: String,
    },
    Delete {
        id: String,
    },
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    match args.action {
        ScheduleCommand::Sweep {
            id,
            every_secs,
            older_than_secs,
        } => {
            schedules::create_sweep(
                &client,
                config,
                &id,
                Duration::from_secs(every_secs),
                Duration::from_secs(older_than_secs),
            )
            .await?;
            println!(
                "schedule {id}: sweep landing/ every {every_secs} s for files older than {older_than_secs} s"
            );
        }
        ScheduleCommand::Transform { dataset, cron, id } => {
            let id = id.unwrap_or_else(|| format!("lakegate-transform-{dataset}"));
            schedules::create_transform(&client, config, &id, &dataset, &cron).await?;
            println!("schedule {id}: transform {dataset} at \"{cron}\"");
        }
        ScheduleCommand::List => {
            for (id, workflow, paused) in schedules::list(&client).await? {
                println!(
                    "{id:<40} {workflow:<24} {}",
                    if paused { "paused" } else { "active" }
                );
            }
        }
        ScheduleCommand::Pause { id } => {
            schedules::pause(&client, &id, true).await?;
            println!("schedule {id} paused");
        }
        ScheduleCommand::Unpause { id } => {
            schedules::pause(&client, &id, false).await?;
            println!("schedule {id} active");
        }
        ScheduleCommand::Delete { id } => {
            schedules::delete(&client, &id).await?;
            println!("schedule {id} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}
