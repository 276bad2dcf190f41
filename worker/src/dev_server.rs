//! A Temporal dev server (`temporal server start-dev` from the project's virtualenv) that this
//! process starts, owns and stops by PID.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use lakegate_models::names::search_attributes;

#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// The `temporal` CLI binary.
    pub temporal_bin: PathBuf,
    /// gRPC port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Web UI port; `None` runs headless.
    pub ui_port: Option<u16>,
    /// SQLite file that keeps workflows across restarts; `None` keeps them in memory.
    pub db_file: Option<PathBuf>,
    /// Where the server's output goes; `None` discards it.
    pub log_file: Option<PathBuf>,
    /// A codec server the Web UI decodes payloads through (`--ui-codec-endpoint`).
    pub ui_codec_endpoint: Option<String>,
}

impl DevServerOptions {
    /// Headless, in memory, on a free port: a throwaway server for a test or a one-off run.
    pub fn ephemeral(temporal_bin: PathBuf, log_file: PathBuf) -> Self {
        Self {
            temporal_bin,
            port: 0,
            ui_port: None,
            db_file: None,
            log_file: Some(log_file),
            ui_codec_endpoint: None,
        }
    }
}

#[derive(Debug)]
pub struct DevServer {
    child: Child,
    address: String,
    log_file: Option<PathBuf>,
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl DevServer {
    /// Starts the server and returns once its gRPC port accepts connections.
    pub fn start(options: &DevServerOptions) -> anyhow::Result<Self> {
        if !options.temporal_bin.exists() {
            bail!(
                "the Temporal CLI is not at {}; run scripts/bootstrap to create the virtualenv",
                options.temporal_bin.display()
            );
        }
        let port = if options.port == 0 {
            free_port()?
        } else {
            options.port
        };
        let mut command = Command::new(&options.temporal_bin);
        command.args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ]);
        command.args(["--log-level", "warn"]);
        match options.ui_port {
            Some(ui) => command.args(["--ui-port", &ui.to_string()]),
            None => command.arg("--headless"),
        };
        if let Some(endpoint) = &options.ui_codec_endpoint {
            command.args(["--ui-codec-endpoint", endpoint]);
        }
        if let Some(db) = &options.db_file {
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir)?;
            }
            command.arg("--db-filename").arg(db);
        }
        for name in search_attributes::ALL {
            command.args(["--search-attribute", &format!("{name}=Keyword")]);
        }
        let (stdout, stderr) = match &options.log_file {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let file =
                    File::create(path).with_context(|| format!("creating {}", path.display()))?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .context("starting temporal server start-dev")?;
        let mut server = DevServer {
            child,
            address: format!("127.0.0.1:{port}"),
            log_file: options.log_file.clone(),
        };
        server.wait_ready(Duration::from_secs(90))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let addr: SocketAddr = self.address.parse()?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "temporal server start-dev exited with {status} before it was ready{}",
                    self.log_hint()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "temporal dev server not ready on {} after {timeout:?}{}",
                    self.address,
                    self.log_hint()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_hint(&self) -> String {
        match &self.log_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("; see {}:\n{}", path.display(), tail.join("\n"))
            }
            None => String::new(),
        }
    }

    /// `host:port` of the gRPC endpoint.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server: SIGTERM so it can close its database cleanly, SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        terminate(self.child.id());
        wait_or_kill(&mut self.child, Duration::from_secs(10));
    }
}

/// Waits up to `grace` for a child asked to stop to exit, then kills it; reaped either way.
pub fn wait_or_kill(child: &mut std::process::Child, grace: Duration) {
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends SIGTERM to one process, by PID.
pub fn terminate(pid: u32) {
    if let Some(pid) = to_pid(pid) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// True while a process with this PID exists and has not exited.
pub fn is_alive(pid: u32) -> bool {
    to_pid(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok()) && !is_zombie(pid)
}

fn to_pid(pid: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
