//! The `lakegate` command line: the clap types in one place, one module per command, shared
//! rendering in `render`. A new command is a module with an `Args` struct and a `run` function,
//! a variant of [`Command`], an arm in [`run`] and a line in [`CONFIG_FLAGS`].
//!
//! Exit codes, the same for every command unless its help says more: 0 success, 1 an error
//! (the message is on stderr), 2 a usage error (clap's), 141 stdout was closed early (`| head`).

mod backfill;
mod console;
mod contract;
mod dev;
mod ingest;
mod pipeline;
mod query;
mod render;
mod replay;
mod retract;
mod review;
mod schedule;
mod status;
mod validate;
mod worker;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use lakegate::LakeConfig;

/// Some files wait for review (`ingest`).
pub const EXIT_AWAITING_REVIEW: u8 = 3;
/// Some files were rejected or their workflow failed (`ingest`), some ingests of a backfill
/// failed (`backfill`), a crawl or transform failed (`pipeline`), or a retract was refused
/// (`retract`).
pub const EXIT_FAILED: u8 = 4;
/// What a process killed by SIGPIPE reports to its shell: stdout was closed before the output
/// was written, and the command stopped quietly.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// `println!` that hands back the write error instead of panicking, so a closed stdout
/// (`lakegate review ... | head`) ends the command quietly through [`is_broken_pipe`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
pub(crate) use outln;

/// True when `error` comes from writing to a closed pipe.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

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
        While `lakegate dev` runs, client commands find its server and settings by themselves \
        (from <data-dir>/dev.json).\n\n\
        Exit codes: 0 success, 1 error, 2 usage error, 141 stdout closed early; ingest, \
        backfill, pipeline, validate, replay and retract name more in their help."
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
    ///
    /// Exit code 0 when every file is promoted, 3 when some wait for review (and none failed),
    /// 4 when some were rejected or their workflow failed, 1 for an error. With --no-wait: 0
    /// once every workflow is started.
    Ingest(ingest::Args),
    /// Show an ingest workflow's phase, contract, validation report and decision.
    Status(status::Args),
    /// Show (or wait for) a dataset's crawls and transform: tables, dbt models, checks.
    ///
    /// Exit code 0 when the last crawl and its transform succeeded, 4 when either failed, 1 for
    /// an error or a timeout.
    Pipeline(pipeline::Args),
    /// Run SQL on the configured query engine (DuckDB locally) and print the rows.
    Query(query::Args),
    /// Onboard every file already under a landing prefix (OnboardDatasetWorkflow), a bounded
    /// number at a time, with a progress bar.
    ///
    /// Exit code 0 when every file settled (promoted, rejected or waiting for review), 4 when
    /// some ingest workflows failed, were terminated, cancelled or timed out, 1 for an error
    /// (the backfill workflow itself ended early, say). With --no-wait: 0 once it is started.
    Backfill(backfill::Args),
    /// Temporal Schedules: a landing sweep (the safety net for lost S3 events) and nightly
    /// transforms.
    Schedule(schedule::Args),
    /// Check files against a contract offline, with the same engine as the ingest workflow.
    /// Exit code 0 when all pass, 1 when a file fails, 2 for a bad contract or unreadable file.
    Validate(validate::Args),
    /// Write contracts: `contract draft` infers one from sample files.
    Contract(contract::Args),
    /// Replay a workflow history against this build: is it safe to deploy while such runs are
    /// open? Exit code 0 when compatible, 1 when not, 2 for unreadable input or no connection.
    Replay(replay::Args),
    /// Approve or reject a quarantined file (the `review` signal).
    Review(review::Args),
    /// Take a promoted file back (RetractWorkflow): move it from raw/ to rejected/, record who
    /// and why, refresh its table in the catalog and rerun the transform.
    ///
    /// The file is named by the IngestFileWorkflow that promoted it. Exit code 0 when the file
    /// was retracted (with --no-wait: once the retract started), 4 when the retract was refused
    /// (the run did not promote, its file is no longer in raw/, or it was retracted already),
    /// 1 for an error.
    Retract(retract::Args),
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

/// The global configuration flags (by argument id) each command reads; `--help` of a command
/// hides the others. `None`: all of them.
const CONFIG_FLAGS: &[(&str, Option<&[&str]>)] = &[
    ("worker", None),
    ("dev", None),
    (
        "ingest",
        Some(&[
            "data_dir",
            "bucket",
            "task_queue",
            "backend",
            "aws_endpoint_url",
            "aws_emulator",
        ]),
    ),
    ("status", Some(&["data_dir"])),
    ("pipeline", Some(&["data_dir", "pipeline"])),
    (
        "query",
        Some(&[
            "data_dir",
            "bucket",
            "venv",
            "backend",
            "aws_endpoint_url",
            "aws_emulator",
            "athena_workgroup",
            "athena_output",
        ]),
    ),
    ("backfill", Some(&["data_dir", "task_queue"])),
    ("schedule", Some(&["data_dir", "task_queue", "pipeline"])),
    ("validate", Some(&[])),
    ("contract", Some(&[])),
    ("replay", Some(&["data_dir"])),
    ("review", Some(&["data_dir"])),
    ("retract", Some(&["data_dir", "task_queue"])),
];

/// The clap command with each subcommand's help trimmed to the configuration flags it reads.
/// The others are still accepted (scripts and environment variables set them for every command),
/// only left out of the help: each subcommand gets its own hidden copy of them, which clap's
/// propagation of global flags then leaves alone (and passes on to nested subcommands).
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    let config: Vec<clap::Arg> =
        <LakeConfig as clap::Args>::augment_args(clap::Command::new("config"))
            .get_arguments()
            .cloned()
            .collect();
    for (name, uses) in CONFIG_FLAGS {
        let Some(uses) = uses else { continue };
        command = command.mut_subcommand(*name, |sub| {
            sub.args(
                config
                    .iter()
                    .filter(|arg| !uses.contains(&arg.get_id().as_str()))
                    .map(|arg| arg.clone().hide(true)),
            )
        });
    }
    command
}

/// Parses the command line with [`command`]; exits on `--help` and usage errors like clap.
pub fn parse() -> (Cli, clap::ArgMatches) {
    let matches = command().get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(e) => e.exit(),
    }
}

/// Runs one command; `Err` is reported by `main` with exit code 1.
pub async fn run(cli: Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let mut config = cli.config;
    if !matches!(cli.command, Command::Worker(_) | Command::Dev(_)) {
        dev::adopt_settings(&mut config, matches);
    }
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
        Command::Contract(args) => contract::run(&config, args).await,
        Command::Replay(args) => replay::run(&config, args).await,
        Command::Review(args) => review::run(&config, args).await,
        Command::Retract(args) => retract::run(&config, args).await,
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
    // Colours only on a terminal: `dev --detach` sends stderr to .lakegate/dev.log.
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
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
