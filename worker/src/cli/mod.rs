//! The `lakegate` command line: the clap types in one place, one module per command, shared
//! rendering in `render`. A new command is a module with an `Args` struct and a `run` function,
//! a variant of [`Command`] and an arm in [`run`].

mod backfill;
mod console;
mod dev;
mod ingest;
mod pipeline;
mod query;
mod render;
mod replay;
mod review;
mod schedule;
mod status;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use lakegate::LakeConfig;

#[derive(Debug, Parser)]
#[command(
    name = "lakegate",
    version,
    about = "Onboard data files into a lake as durable Temporal workflows.",
    long_about = "Onboard data files into a lake as durable Temporal workflows.\n\n\
        Quick start (local, no AWS account):\n  \
        lakegate dev --detach                         start a Temporal dev server and a worker\n  \
        lakegate ingest --dataset ehr examples/ehr/sample/*.csv\n  \
        lakegate review <workflow-id> approve --reviewer you --reason \"checked\"\n  \
        lakegate dev --stop\n\n\
        Temporal connection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS and \
        temporal.toml profiles (TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE), as in every Temporal SDK. \
        While `lakegate dev` runs, client commands find its server by themselves."
)]
pub struct Cli {
    #[command(flatten)]
    pub config: LakeConfig,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "LAKEGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker for lakegate's workflows and activities until SIGINT or SIGTERM.
    Worker(worker::Args),
    /// Serve the review console (upload, review inbox, file pages, runs, audit log) until
    /// SIGINT or SIGTERM.
    Console(console::Args),
    /// Start a local Temporal dev server (Web UI on :8233) and a worker; Ctrl-C stops both.
    Dev(dev::Args),
    /// Place files in landing/ and start their IngestFileWorkflows.
    Ingest(ingest::Args),
    /// Show an ingest workflow's phase, contract, validation report and decision.
    Status(status::Args),
    /// Show (or wait for) a dataset's crawls and transform: tables, dbt models, checks.
    Pipeline(pipeline::Args),
    /// Run SQL on the configured query engine (DuckDB locally) and print the rows.
    Query(query::Args),
    /// Onboard every file already under a landing prefix (OnboardDatasetWorkflow), a bounded
    /// number at a time, with a progress bar.
    Backfill(backfill::Args),
    /// Temporal Schedules: a landing sweep (the safety net for lost S3 events) and nightly
    /// transforms.
    Schedule(schedule::Args),
    /// Check files against a contract offline, with the same engine as the ingest workflow.
    /// Exit code 0 when all pass, 1 when a file fails, 2 for a bad contract or unreadable file.
    Validate(validate::Args),
    /// Replay a workflow history against this build: is it safe to deploy while such runs are
    /// open? Exit code 0 when compatible, 1 when not, 2 for unreadable input or no connection.
    Replay(replay::Args),
    /// Approve or reject a quarantined file (the `review` signal).
    Review(review::Args),
    /// Serve Temporal's codec server protocol (POST /encode, /decode) with the payload keys, for
    /// the Web UI's codec endpoint and `temporal ... --codec-endpoint`.
    CodecServer(lakegate::codec_server::CodecServerArgs),
}

/// `--output` of the commands that print a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Runs one command; `Err` is reported by `main` with exit code 1.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Worker(args) => worker::run(&config, args).await,
        Command::Console(args) => console::run(&config, args).await,
        Command::Dev(args) => dev::run(&config, args).await,
        Command::Ingest(args) => ingest::run(&config, args).await,
        Command::Status(args) => status::run(&config, args).await,
        Command::Pipeline(args) => pipeline::run(&config, args).await,
        Command::Query(args) => query::run(&config, args).await,
        Command::Backfill(args) => backfill::run(&config, args).await,
        Command::Schedule(args) => schedule::run(&config, args).await,
        Command::Validate(args) => validate::run(&config, args).await,
        Command::Replay(args) => replay::run(&config, args).await,
        Command::Review(args) => review::run(&config, args).await,
        Command::CodecServer(args) => {
            lakegate::codec_server::run(args, &config, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The running `lakegate dev` server's address, unless the user configured Temporal explicitly.
pub(crate) use dev::dev_address;

/// Logs on stderr, plus `spans` (the OTLP trace export, with the `otel` feature) under the same
/// filter, so traces carry exactly what the logs carry.
pub fn init_logging<L>(format: LogFormat, spans: Option<L>)
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
{
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("LAKEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,temporalio_sdk_core=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    tracing_subscriber::registry()
        .with(spans)
        .with(fmt)
        .with(filter)
        .init();
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives while the worker is still starting is not
/// lost to the default action (which would kill the process mid-task).
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            tracing::warn!("cannot install signal handlers; stop with SIGKILL");
            return futures::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
