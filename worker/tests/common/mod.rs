//! Helpers shared by the CLI test binaries: `lakegate` with a private lake, exit-code checks and
//! a detached `lakegate dev` on reserved ports.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lakegate::dev_server::free_port;
use lakegate_activities::testing::http;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn venv() -> PathBuf {
    lakegate_local::LocalConfig::venv_from_env(repo_root())
}

/// `lakegate` with a private lake, the test contracts and no pipeline.
pub fn lakegate(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakegate"));
    command
        .env("LAKEGATE_DATA_DIR", data_dir)
        .env(
            "LAKEGATE_CONTRACTS",
            repo_root().join("tests/fixtures/contracts"),
        )
        .env("LAKEGATE_PIPELINE", data_dir.join("no-pipeline.yaml"))
        .env("LAKEGATE_VENV", venv())
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_PROFILE")
        .stdin(Stdio::null());
    command
}

pub fn run(command: &mut Command) -> Output {
    run_expecting(command, 0)
}

/// Runs `command` and asserts its exit code.
pub fn run_expecting(command: &mut Command, code: i32) -> Output {
    let output = command.output().expect("lakegate runs");
    assert_eq!(
        output.status.code(),
        Some(code),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Stops a detached `lakegate dev` even when the test fails half-way.
pub struct DevGuard(pub PathBuf);

impl Drop for DevGuard {
    fn drop(&mut self) {
        let _ = lakegate(&self.0).args(["dev", "--stop"]).output();
    }
}

/// `lakegate dev --detach` on free ports, stopped when the guard drops; returns its gRPC and
/// Web UI ports.
pub fn detached_dev(data: &Path) -> (DevGuard, u16, u16) {
    let (port, ui_port) = (free_port().unwrap(), free_port().unwrap());
    let guard = DevGuard(data.to_owned());
    run(lakegate(data).args([
        "dev",
        "--detach",
        "--port",
        &port.to_string(),
        "--ui-port",
        &ui_port.to_string(),
    ]));
    (guard, port, ui_port)
}

/// The review command `ingest` printed for the quarantined file.
pub fn review_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("lakegate review ")?
                .split_whitespace()
                .next()
        })
        .expect("the review command is printed")
        .to_owned()
}

/// `command ingest --dataset ehr <files>`, asserting its exit code.
pub fn ingest_ehr(mut command: Command, files: &[&Path], code: i32) -> Output {
    run_expecting(
        command.args(["ingest", "--dataset", "ehr"]).args(files),
        code,
    )
}

/// A valid patients file and one that fails `required(id)`, in `dir`.
pub fn patient_files(dir: &Path) -> (PathBuf, PathBuf) {
    let good = dir.join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    let bad = dir.join("patients_bad.csv");
    std::fs::write(&bad, "id,birthdate,gender\n,1980-01-02,F\n").unwrap();
    (good, bad)
}

/// The workflow id `ingest` printed for `name` (`<name>: started <id>`).
pub fn started_id(stdout: &str, name: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: started ")))
        .unwrap_or_else(|| panic!("no start of {name} in {stdout}"))
        .trim()
        .to_owned()
}

/// The body of a GET to the Web UI server, retried until it answers 200 (it starts alongside the
/// dev server).
pub fn ui_get(port: u16, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = http::blocking_get(&format!("http://127.0.0.1:{port}{path}"));
        if let Ok(response) = &response
            && response.status == 200
        {
            return response.text();
        }
        assert!(
            Instant::now() < deadline,
            "the Web UI did not serve {path}: {response:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The codec endpoint `lakegate dev` gave its Web UI on `ui_port`.
pub fn codec_endpoint(ui_port: u16) -> String {
    let settings: serde_json::Value =
        serde_json::from_str(&ui_get(ui_port, "/api/v1/settings")).unwrap();
    settings["Codec"]["Endpoint"]
        .as_str()
        .expect("the Web UI is given the codec endpoint")
        .to_owned()
}

/// The Web UI summary (user metadata) of workflow `id`, read back from the server on `port`
/// through the dev codec server at `endpoint` (the CLI prints a decoded payload as its value).
pub fn summary_of(port: u16, endpoint: &str, id: &str) -> String {
    summary_through(port, Some(endpoint), id)
}

/// [`summary_of`] on a server whose clients use no payload codec when `endpoint` is `None`
/// (user metadata is never encrypted, so the Web UI reads it either way).
pub fn summary_through(port: u16, endpoint: Option<&str>, id: &str) -> String {
    let mut describe = Command::new(venv().join("bin/temporal"));
    describe
        .args(["workflow", "describe", "--output", "json", "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--workflow-id", id]);
    if let Some(endpoint) = endpoint {
        describe.args(["--codec-endpoint", endpoint]);
    }
    let out = run(&mut describe);
    let described: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    described["executionConfig"]["userMetadata"]["summary"]
        .as_str()
        .unwrap_or_else(|| panic!("{id} has no summary: {described}"))
        .to_owned()
}
