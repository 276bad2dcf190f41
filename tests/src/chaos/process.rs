//! The run's `lakegate` processes: the environment each gets, the worker that is killed and
//! restarted, and the binary they run.

use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use lakegate::dev_server;

use super::{BUCKET, TASK_QUEUE};
use crate::{repo_root, venv};

/// The environment every `lakegate` process of the run gets: the run's server, lake and task
/// queue, and none of the caller's Temporal settings.
#[derive(Clone)]
pub(super) struct LakegateEnv {
    pub(super) bin: PathBuf,
    pub(super) vars: Vec<(String, String)>,
}

impl LakegateEnv {
    pub(super) fn new(bin: PathBuf, address: &str, data_dir: &Path) -> Self {
        let path = |p: &Path| p.display().to_string();
        let vars = vec![
            ("TEMPORAL_ADDRESS".into(), address.to_owned()),
            ("TEMPORAL_NAMESPACE".into(), "default".into()),
            ("LAKEGATE_DATA_DIR".into(), path(data_dir)),
            ("LAKEGATE_BUCKET".into(), BUCKET.into()),
            (
                "LAKEGATE_CONTRACTS".into(),
                path(&repo_root().join("examples/ehr/contracts")),
            ),
            ("LAKEGATE_TASK_QUEUE".into(), TASK_QUEUE.into()),
            ("LAKEGATE_VENV".into(), path(&venv())),
            // No pipeline: files stop at raw/, so every workflow here is an IngestFileWorkflow
            // that ends.
            (
                "LAKEGATE_PIPELINE".into(),
                path(&data_dir.join("no-pipeline.yaml")),
            ),
            ("LAKEGATE_BACKEND".into(), "local".into()),
        ];
        Self { bin, vars }
    }

    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        for (name, _) in std::env::vars() {
            if name.starts_with("TEMPORAL_") || name.starts_with("LAKEGATE_") {
                command.env_remove(name);
            }
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null());
        command
    }
}

pub(super) fn log_to(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// The `lakegate worker` process, restarted with a fresh log file per incarnation.
pub(super) struct WorkerProcess {
    pub(super) env: LakegateEnv,
    pub(super) logs: PathBuf,
    pub(super) child: Option<Child>,
    pub(super) incarnations: usize,
}

impl WorkerProcess {
    pub(super) fn start(&mut self) -> anyhow::Result<()> {
        let (stdout, stderr) = log_to(&self.log_path(self.incarnations))?;
        let child = self
            .env
            .command()
            .arg("worker")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("starting lakegate worker")?;
        self.child = Some(child);
        self.incarnations += 1;
        Ok(())
    }

    fn log_path(&self, incarnation: usize) -> PathBuf {
        self.logs.join(format!("worker-{incarnation:02}.log"))
    }

    /// SIGKILL, by PID, and reap it. Fails if the process had already gone.
    pub(super) fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("no worker to kill")?;
        if let Some(status) = child.try_wait()? {
            bail!("the worker had already exited ({status}) when it was to be killed");
        }
        child.kill()?;
        let status = child.wait()?;
        anyhow::ensure!(
            status.signal() == Some(9),
            "the worker ended with {status}, not by SIGKILL"
        );
        Ok(())
    }

    /// Starts the worker again if it exited by itself (as a process supervisor would); true when
    /// it did.
    pub(super) fn supervise(&mut self) -> anyhow::Result<bool> {
        let exited = match &mut self.child {
            Some(child) => child.try_wait()?.is_some(),
            None => true,
        };
        if exited {
            self.start()?;
        }
        Ok(exited)
    }

    /// SIGTERM, by PID, so it stops cleanly; SIGKILL after 30 s.
    pub(super) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        dev_server::terminate(child.id());
        dev_server::wait_or_kill(&mut child, Duration::from_secs(30));
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Builds the `lakegate` binary (local backend only, as `scripts/demo` builds it) unless
/// LAKEGATE_BIN names one, and returns its path.
pub fn lakegate_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LAKEGATE_BIN") {
        return Ok(path.into());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo test` gives this process the test crate's CARGO_MANIFEST_DIR, CARGO_PKG_NAME and
    // so on. Build scripts (ring's, for one) rerun when those change, so passing them on would
    // rebuild the TLS and Temporal stack here and again in the next ordinary build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "OUT_DIR"
            || [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_CFG_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--package", "lakegate", "--bin", "lakegate"])
        .args([
            "--no-default-features",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(repo_root().join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build for the lakegate binary")?;
    anyhow::ensure!(output.status.success(), "cargo build of lakegate failed");
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "lakegate"
            && let Some(exe) = message["executable"].as_str()
        {
            return Ok(exe.into());
        }
    }
    bail!("cargo build did not report the lakegate executable")
}
