//! `lakegate dev`: a local Temporal dev server and a worker, in the foreground or detached, and
//! the files through which client commands find it: `dev.pid` from the start, and `dev.json`
//! (its address and settings) once the worker polls.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lakegate::console::ConsoleArgs;
use lakegate::dev_server::{self, DevServer, DevServerOptions};
use lakegate::{LakeConfig, client, worker};
use lakegate_models::{DEFAULT_REVIEW_TIMEOUT_SECS, Zone};
use serde::{Deserialize, Serialize};

use super::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
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
    console: ConsoleArgs,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    if args.stop {
        stop_dev(config)?;
    } else if args.detach {
        start_dev_detached(config, args.ui_port).await?;
    } else {
        run_dev(config, args.port, args.ui_port, &args.console).await?;
    }
    Ok(ExitCode::SUCCESS)
}

const DEV_METRICS_ADDR: &str = "127.0.0.1:9464";

fn pid_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("dev.pid")
}

/// Written once the dev worker polls: the [`DevState`] client commands read.
fn ready_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("dev.json")
}

/// What a running `lakegate dev` tells client commands, so a second terminal needs no flags.
/// Paths are absolute: the client may run from another folder.
#[derive(Debug, Serialize, Deserialize)]
struct DevState {
    pid: u32,
    /// `host:port` of the Temporal dev server.
    address: String,
    data_dir: PathBuf,
    bucket: String,
    contracts: PathBuf,
    pipeline: PathBuf,
    venv: PathBuf,
    task_queue: String,
}

impl DevState {
    fn of(config: &LakeConfig, address: &str) -> anyhow::Result<Self> {
        let absolute =
            |p: &Path| std::path::absolute(p).with_context(|| format!("resolving {}", p.display()));
        Ok(Self {
            pid: std::process::id(),
            address: address.to_owned(),
            data_dir: absolute(&config.data_dir)?,
            bucket: config.bucket.clone(),
            contracts: absolute(&config.contracts)?,
            pipeline: absolute(&config.pipeline)?,
            venv: absolute(&config.venv)?,
            task_queue: config.task_queue.clone(),
        })
    }

    /// Written whole under a temporary name and renamed, so a reader never sees half of it.
    fn write(&self, path: &Path) -> anyhow::Result<()> {
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    /// The state of a `lakegate dev` that is still running, unless the user configured Temporal
    /// explicitly (then its server, not the dev one, is meant).
    fn running(config: &LakeConfig) -> Option<Self> {
        if std::env::var_os("TEMPORAL_ADDRESS").is_some()
            || std::env::var_os("TEMPORAL_PROFILE").is_some()
        {
            return None;
        }
        let state: Self = serde_json::from_slice(&std::fs::read(ready_file(config)).ok()?).ok()?;
        dev_server::is_alive(state.pid).then_some(state)
    }
}

/// The running `lakegate dev` server's address, unless the user configured Temporal explicitly.
pub fn dev_address(config: &LakeConfig) -> Option<String> {
    DevState::running(config).map(|state| state.address)
}

/// Takes the running `lakegate dev`'s settings for every setting this command line and the
/// environment left at its default, so a client command in a second terminal acts on the lake,
/// contracts, pipeline and task queue the dev worker serves.
pub fn adopt_settings(config: &mut LakeConfig, matches: &clap::ArgMatches) {
    let Some(state) = DevState::running(config) else {
        return;
    };
    let defaulted = |id: &str| {
        // The innermost subcommand's matches: global flags given anywhere are visible there.
        let mut m = matches;
        while let Some((_, sub)) = m.subcommand() {
            m = sub;
        }
        matches!(
            m.value_source(id),
            None | Some(clap::parser::ValueSource::DefaultValue)
        )
    };
    if defaulted("bucket") {
        config.bucket = state.bucket;
    }
    if defaulted("contracts") {
        config.contracts = state.contracts;
    }
    if defaulted("pipeline") {
        config.pipeline = state.pipeline;
    }
    if defaulted("venv") {
        config.venv = state.venv;
    }
    if defaulted("task_queue") {
        config.task_queue = state.task_queue;
    }
}

/// ` --data-dir <dir>` when the data directory is not the default one, for the hints printed.
fn data_dir_flag(config: &LakeConfig) -> String {
    if config.data_dir == Path::new(DEFAULT_DATA_DIR) {
        String::new()
    } else {
        format!(" --data-dir {}", config.data_dir.display())
    }
}

const DEFAULT_DATA_DIR: &str = ".lakegate";

/// Where `lakegate dev` writes the console's sign-in link (owner-only), for `--detach` to print.
fn console_file(config: &LakeConfig) -> PathBuf {
    config.data_dir.join("console.url")
}

async fn run_dev(
    config: &LakeConfig,
    port: u16,
    ui_port: u16,
    console: &ConsoleArgs,
) -> anyhow::Result<()> {
    // First, so a stop request during start-up still stops the server this starts.
    let shutdown = super::shutdown_signal();
    std::fs::create_dir_all(config.lake_root())
        .with_context(|| format!("creating {}", config.lake_root().display()))?;
    for zone in Zone::ALL {
        std::fs::create_dir_all(config.lake_root().join(zone.prefix()))?;
    }
    let _ = std::fs::remove_file(ready_file(config));
    std::fs::write(pid_file(config), std::process::id().to_string())?;
    let codec = config.dev_codec()?;
    let (codec_endpoint, codec_server) = lakegate::codec_server::start_dev(&codec, ui_port).await?;
    let mut server = DevServer::start(&DevServerOptions {
        temporal_bin: config.venv_bin("temporal"),
        port,
        ui_port: Some(ui_port),
        db_file: Some(config.data_dir.join("temporal.db")),
        log_file: Some(config.data_dir.join("temporal.log")),
        ui_codec_endpoint: Some(codec_endpoint.clone()),
    })?;
    let client = client::connect_with_retry(
        Some(server.address()),
        Some(&codec),
        Duration::from_secs(60),
    )
    .await?;
    outln!(
        "Temporal dev server on {} (pid {})",
        server.address(),
        server.pid()
    )?;
    outln!("Temporal Web UI: http://127.0.0.1:{ui_port}")?;
    outln!(
        "Payloads encrypted with key '{}'; codec server: {codec_endpoint} \
         (temporal ... --codec-endpoint {codec_endpoint})",
        codec.keys().current_id()
    )?;
    outln!("Lake: {}", config.lake_root().display())?;
    // Metrics on the conventional port when it is free; a second dev instance goes without.
    let telemetry = lakegate::telemetry::Telemetry::prometheus(DEV_METRICS_ADDR.parse()?)
        .unwrap_or_else(|e| {
            tracing::info!("no metrics endpoint: {e:#}");
            lakegate::telemetry::Telemetry::off()
        });
    if let Some(addr) = telemetry.metrics_addr() {
        outln!("Metrics: http://{addr}/metrics")?;
    }
    // The console second: a busy port leaves the dev environment without it, not without a worker.
    let mut console = console.clone();
    console.ui_url = format!("http://127.0.0.1:{ui_port}");
    let running = match lakegate::console::start(config, &console, client.clone()).await {
        Ok(running) => {
            super::console::print(&running);
            write_private(
                &console_file(config),
                running.sign_in_url.as_deref().unwrap_or_default(),
            )?;
            Some(running)
        }
        Err(e) => {
            outln!("No review console: {e:#}")?;
            None
        }
    };
    outln!(
        "Worker serving task queue '{}', watching {} for dropped files. Ctrl-C stops everything.",
        config.task_queue,
        config.lake_root().join(Zone::Landing.prefix()).display()
    )?;
    let watch = lakegate::watch::landing_watcher(config, DEFAULT_REVIEW_TIMEOUT_SECS);
    // Last: `--detach` returns once this exists, and prints the console link written above.
    DevState::of(config, server.address())?.write(&ready_file(config))?;
    let result =
        worker::run_worker_watching(client, config, &telemetry, Some(watch), shutdown).await;
    codec_server.abort();
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

async fn start_dev_detached(config: &LakeConfig, ui_port: u16) -> anyhow::Result<()> {
    if let Some(address) = dev_address(config) {
        outln!("lakegate dev is already running (Temporal on {address}).")?;
        outln!("Temporal Web UI: http://127.0.0.1:{ui_port}")?;
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let _ = std::fs::remove_file(ready_file(config));
    let log_path = config.data_dir.join("dev.log");
    let log = std::fs::File::create(&log_path)?;
    let exe = std::env::current_exe()?;
    // This very command line without --detach: every flag (and, inherited, every environment
    // variable) reaches the background process, including the ones added after this was written.
    let args = std::env::args_os()
        .skip(1)
        .filter(|arg| arg.as_os_str() != "--detach");
    let mut child = std::process::Command::new(exe)
        .args(args)
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
    outln!(
        "lakegate dev is running in the background (pid {}, log {}).",
        child.id(),
        log_path.display()
    )?;
    outln!("Temporal Web UI: http://127.0.0.1:{ui_port}")?;
    let flag = data_dir_flag(config);
    if !flag.is_empty() {
        outln!("Client commands find it with:{flag} (or LAKEGATE_DATA_DIR)")?;
    }
    match std::fs::read_to_string(console_file(config)) {
        Ok(url) if !url.is_empty() => outln!("Review console sign-in: {url}")?,
        _ => outln!("Review console: see {}", log_path.display())?,
    }
    outln!("Stop it with: lakegate dev --stop{flag}")?;
    Ok(())
}

fn stop_dev(config: &LakeConfig) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(pid_file(config)) else {
        outln!("lakegate dev is not running.")?;
        return Ok(());
    };
    let pid: u32 = text.trim().parse().context("reading dev.pid")?;
    if !dev_server::is_alive(pid) {
        let _ = std::fs::remove_file(pid_file(config));
        let _ = std::fs::remove_file(ready_file(config));
        outln!("lakegate dev is not running.")?;
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
    outln!("lakegate dev stopped.")?;
    Ok(())
}
