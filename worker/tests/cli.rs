//! The `lakegate` binary as a user runs it: the README's dev loop (detach, ingest, review,
//! status, stop) and a worker's graceful shutdown, against real Temporal dev servers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lakegate::dev_server::{self, DevServer, DevServerOptions, free_port};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn venv() -> PathBuf {
    lakegate_local::LocalConfig::venv_from_env(repo_root())
}

/// `lakegate` with a private lake, the test contracts and no pipeline.
fn lakegate(data_dir: &Path) -> Command {
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

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("lakegate runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Stops a detached `lakegate dev` even when the test fails half-way.
struct DevGuard(PathBuf);

impl Drop for DevGuard {
    fn drop(&mut self) {
        let _ = lakegate(&self.0).args(["dev", "--stop"]).output();
    }
}

#[test]
fn dev_ingest_review_status_and_stop_work_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (port, ui_port) = (free_port().unwrap(), free_port().unwrap());
    let _guard = DevGuard(data.clone());
    run(lakegate(&data).args([
        "dev",
        "--detach",
        "--port",
        &port.to_string(),
        "--ui-port",
        &ui_port.to_string(),
    ]));
    let pid: u32 = std::fs::read_to_string(data.join("dev.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(dev_server::is_alive(pid));

    let good = dir.path().join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    let bad = dir.path().join("patients_bad.csv");
    std::fs::write(&bad, "id,birthdate,gender\n,1980-01-02,F\n").unwrap();
    let out = run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good)
        .arg(&bad));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("patients_good.csv: onboarded to raw/ehr/patients/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patients_bad.csv: QUARANTINED (required(id))"),
        "{stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("lakegate review ")?
                .split_whitespace()
                .next()
        })
        .expect("the review command is printed")
        .to_owned();

    let out = run(lakegate(&data).args([
        "review",
        &id,
        "approve",
        "--reviewer",
        "alice",
        "--reason",
        "fixed",
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("phase:     promoted"));
    let out = run(lakegate(&data).args(["status", &id, "--output", "json"]));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["phase"], "promoted");
    assert_eq!(status["review"]["reviewer"], "alice");

    // The same file again is recognised, not onboarded twice.
    let out = run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr", "--no-wait"])
        .arg(&good));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already onboarded"));

    run(lakegate(&data).args(["dev", "--stop"]));
    assert!(!dev_server::is_alive(pid));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
        "the dev server it started is stopped too"
    );
}

#[test]
fn a_worker_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&DevServerOptions::ephemeral(
        venv().join("bin/temporal"),
        dir.path().join("temporal.log"),
    ))
    .unwrap();
    let log = dir.path().join("worker.log");
    let mut worker = lakegate(dir.path())
        .arg("worker")
        .env("TEMPORAL_ADDRESS", server.address())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("worker started")
    {
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker exited early"
        );
        assert!(Instant::now() < deadline, "the worker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    dev_server::terminate(worker.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("worker stopped")
    );
}

#[test]
fn json_logs_and_the_metrics_flag_work_for_a_worker() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&DevServerOptions::ephemeral(
        venv().join("bin/temporal"),
        dir.path().join("temporal.log"),
    ))
    .unwrap();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port().unwrap()).into();
    let log = dir.path().join("worker.log");
    let mut worker = lakegate(dir.path())
        .args(["--log-format", "json", "worker"])
        .env("LAKEGATE_METRICS_ADDR", addr.to_string())
        .env("TEMPORAL_ADDRESS", server.address())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("worker started")
    {
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker exited early: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "the worker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The SDK's worker metrics appear once its pollers run.
    let scrape = loop {
        let scrape = lakegate::telemetry::scrape(addr).unwrap_or_default();
        if scrape.lines().any(|l| l.starts_with("temporal_")) {
            break scrape;
        }
        assert!(Instant::now() < deadline, "no temporal_ metrics: {scrape}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(scrape.contains("# TYPE"), "{scrape}");
    dev_server::terminate(worker.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the worker ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(messages.contains(&"worker started"), "{text}");
    assert!(messages.contains(&"worker stopped"), "{text}");
    assert!(
        messages.contains(&format!("metrics at http://{addr}/metrics").as_str()),
        "{text}"
    );
}
