//! The `lakegate` binary as a user runs it: the README's dev loop (detach, ingest, review,
//! status, stop) and a worker's graceful shutdown, against real Temporal dev servers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use lakegate::dev_server::{self, DevServer, DevServerOptions, free_port};
use lakegate_activities::testing::http;

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
    run_expecting(command, 0)
}

/// Runs `command` and asserts its exit code.
fn run_expecting(command: &mut Command, code: i32) -> Output {
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
struct DevGuard(PathBuf);

impl Drop for DevGuard {
    fn drop(&mut self) {
        let _ = lakegate(&self.0).args(["dev", "--stop"]).output();
    }
}

/// Spawns `command` (a `lakegate ... worker`) with its log in `log` and returns once the worker
/// says it started.
fn spawn_worker(command: &mut Command, log: &Path) -> Child {
    let mut worker = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("worker started")
    {
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker exited early: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        assert!(Instant::now() < deadline, "the worker did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    worker
}

/// SIGTERM, then the worker's exit status once it has stopped.
fn stop_worker(worker: &mut Child) -> ExitStatus {
    dev_server::terminate(worker.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = worker.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the worker ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `lakegate dev --detach` on free ports, stopped when the guard drops; returns its gRPC and
/// Web UI ports.
fn detached_dev(data: &Path) -> (DevGuard, u16, u16) {
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
fn review_id(stdout: &str) -> String {
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

#[test]
fn dev_ingest_review_status_and_stop_work_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, port, _) = detached_dev(&data);
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
    // Exit code 3: a file waits for review.
    let out = run_expecting(
        lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&good)
            .arg(&bad),
        3,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("patients_good.csv: onboarded to raw/ehr/patients/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("patients_bad.csv: QUARANTINED (required(id))"),
        "{stdout}"
    );
    let id = review_id(&stdout);

    let out = run(lakegate(&data).args([
        "review",
        &id,
        "approve",
        "--reviewer",
        "alice",
        "--reason",
        "fixed",
    ]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The `review` Update answers with what the workflow did, then the status follows.
    assert!(
        stdout.contains("outcome:   promoted to raw/ehr/patients/"),
        "{stdout}"
    );
    assert!(stdout.contains("phase:     promoted"), "{stdout}");
    // A second review of a decided file is refused: exit 1, the workflow's reason on stderr.
    let out = run_expecting(
        lakegate(&data).args(["review", &id, "reject", "--reviewer", "bob"]),
        1,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("review refused: already decided"),
        "{stderr}"
    );
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
    let mut worker = spawn_worker(
        lakegate(dir.path())
            .arg("worker")
            .env("TEMPORAL_ADDRESS", server.address()),
        &log,
    );
    let status = stop_worker(&mut worker);
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
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut worker = spawn_worker(
        lakegate(dir.path())
            .args(["--log-format", "json", "worker"])
            .env("LAKEGATE_METRICS_ADDR", addr.to_string())
            .env("TEMPORAL_ADDRESS", server.address()),
        &log,
    );
    // The SDK's worker metrics appear once its pollers run.
    let scrape = loop {
        let scrape = http::blocking_get(&format!("http://{addr}/metrics"))
            .map(|r| r.text())
            .unwrap_or_default();
        if scrape.lines().any(|l| l.starts_with("temporal_")) {
            break scrape;
        }
        assert!(Instant::now() < deadline, "no temporal_ metrics: {scrape}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(scrape.contains("# TYPE"), "{scrape}");
    stop_worker(&mut worker);

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

/// Runs `lakegate replay` and returns its exit code and stdout.
fn replay(data_dir: &Path, target: &str) -> (Option<i32>, String, String) {
    let output = lakegate(data_dir)
        .args(["replay", target])
        .output()
        .expect("lakegate runs");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn replay_of_a_history_file_says_compatible_or_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let histories = repo_root().join("tests/histories/IngestFileWorkflow");
    // The same run in the SDK's JSON and as `temporal workflow show --output json` prints it.
    for name in [
        "quarantined_approved.json",
        "quarantined_approved.proto3.json",
    ] {
        let path = histories.join(name);
        let (code, stdout, stderr) = replay(dir.path(), path.to_str().unwrap());
        assert_eq!(code, Some(0), "{name}: {stdout}{stderr}");
        assert!(
            stdout.starts_with("compatible: IngestFileWorkflow ingest-")
                && stdout.trim_end().ends_with(", 47 events"),
            "{name}: {stdout}"
        );
    }

    // A history whose run called an activity this build no longer schedules at that point.
    let recorded =
        std::fs::read_to_string(histories.join("quarantined_approved.proto3.json")).unwrap();
    let changed = recorded.replacen(
        r#""name": "validate_object""#,
        r#""name": "validate_object_v0""#,
        1,
    );
    assert_ne!(changed, recorded);
    let path = dir.path().join("changed.json");
    std::fs::write(&path, changed).unwrap();
    let (code, stdout, stderr) = replay(dir.path(), path.to_str().unwrap());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("incompatible: IngestFileWorkflow ingest-")
            && stdout.contains("nondeterminism: [TMPRL1100]")
            && stdout.contains("scheduled event 'validate_object_v0' does not match")
            && !stdout.contains("Failure {"),
        "the SDK's reason, without its Debug wrapping: {stdout}"
    );

    let path = dir.path().join("not-a-history.json");
    std::fs::write(&path, r#"{"status": "ok"}"#).unwrap();
    let (code, _, stderr) = replay(dir.path(), path.to_str().unwrap());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a workflow history"), "{stderr}");
}

#[test]
fn replay_of_a_live_workflow_id_and_of_its_web_ui_download() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, _, ui_port) = detached_dev(&data);
    let good = dir.path().join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    let out = run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("onboarded to raw/"), "{stdout}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("patients_good.csv: started "))
        .expect("the workflow id is printed")
        .trim()
        .to_owned();

    let (code, stdout, stderr) = replay(&data, &id);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let line = stdout.trim_end();
    let events: usize = line
        .strip_prefix(&format!("compatible: IngestFileWorkflow {id}, "))
        .and_then(|rest| rest.strip_suffix(" events"))
        .unwrap_or_else(|| panic!("{line}"))
        .parse()
        .unwrap();
    assert!(events > 10, "{line}");

    // What the Web UI's Download (encoded) saves: `{"events": [...]}` from its HTTP API.
    let response = ui_get(
        ui_port,
        &format!("/api/v1/namespaces/default/workflows/{id}/history"),
    );
    let response: serde_json::Value = serde_json::from_str(&response).unwrap();
    let download = serde_json::json!({ "events": response["history"]["events"] });
    let path = dir.path().join("events.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&download).unwrap()).unwrap();
    let (code, stdout, stderr) = replay(&data, path.to_str().unwrap());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim_end(),
        line,
        "the download replays like the live history"
    );

    let (code, _, stderr) = replay(&data, "ingest-no-such-workflow");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("ingest-no-such-workflow"), "{stderr}");
}

/// The body of a GET to the Web UI server, retried until it answers 200 (it starts alongside the
/// dev server).
fn ui_get(port: u16, path: &str) -> String {
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

/// What an OpenTelemetry collector receives: an in-process OTLP/gRPC trace receiver that hands
/// each export request to the test.
#[cfg(feature = "otel")]
mod trace_receiver {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use std::sync::mpsc;

    struct Receiver(mpsc::Sender<ExportTraceServiceRequest>);

    #[async_trait::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let _ = self.0.send(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Serves on a free loopback port for as long as `runtime` lives; returns the endpoint URL.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
    ) -> (String, mpsc::Receiver<ExportTraceServiceRequest>) {
        let (tx, rx) = mpsc::channel();
        let incoming = runtime
            .block_on(async {
                tonic::transport::server::TcpIncoming::bind(([127, 0, 0, 1], 0).into())
            })
            .unwrap();
        let endpoint = format!("http://{}", incoming.local_addr().unwrap());
        runtime.spawn(
            tonic::transport::Server::builder()
                .serve_with_incoming(TraceServiceServer::new(Receiver(tx)), incoming),
        );
        (endpoint, rx)
    }
}

#[cfg(feature = "otel")]
#[test]
fn a_worker_exports_its_spans_as_otlp_traces_without_cell_values() {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.clone()),
                _ => None,
            }
        })
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (endpoint, exports) = trace_receiver::start(&runtime);
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&DevServerOptions::ephemeral(
        venv().join("bin/temporal"),
        dir.path().join("temporal.log"),
    ))
    .unwrap();
    let task_queue = "otel-spans";
    let log = dir.path().join("worker.log");
    let mut worker = lakegate(dir.path())
        .args(["worker", "--otlp-endpoint", &endpoint])
        .env("TEMPORAL_ADDRESS", server.address())
        .env("LAKEGATE_TASK_QUEUE", task_queue)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    // A file whose cell values must appear in no span.
    let file = dir.path().join("patients_good.csv");
    std::fs::write(&file, "id,birthdate,gender\npatient-7731,1980-01-02,F\n").unwrap();
    let out = run(lakegate(dir.path())
        .args(["ingest", "--dataset", "ehr"])
        .arg(&file)
        .env("TEMPORAL_ADDRESS", server.address())
        .env("LAKEGATE_TASK_QUEUE", task_queue));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("onboarded to raw/"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Stopping the worker flushes the spans it still buffers.
    stop_worker(&mut worker);
    let worker_log = std::fs::read_to_string(&log).unwrap();

    let mut names = Vec::new();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = |names: &[String], prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    // The SDK's spans for the activities (validate, promote) and for the workflow run.
    while !(seen(&names, "RunActivity:") && seen(&names, "RunWorkflow:")) {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = exports.recv_timeout(left).unwrap_or_else(|_| {
            panic!("no RunActivity and RunWorkflow spans exported; got {names:?}\n{worker_log}")
        });
        for resource_spans in request.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default().attributes;
            assert_eq!(
                string(&resource, "service.name").as_deref(),
                Some("lakegate-worker")
            );
            assert_eq!(
                string(&resource, "lakegate.task_queue").as_deref(),
                Some(task_queue)
            );
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                let events = span.events.iter().flat_map(|e| e.attributes.iter());
                values.extend(
                    span.attributes
                        .iter()
                        .chain(events)
                        .filter_map(|kv| kv.value.as_ref())
                        .map(|v| format!("{v:?}")),
                );
                names.push(span.name);
            }
        }
    }
    for value in &values {
        assert!(
            !value.contains("patient-7731") && !value.contains("1980-01-02"),
            "a cell value in a span: {value}"
        );
    }
}

/// Every payload's data in a `temporal workflow show --output json` dump, base64-decoded, and how
/// many payloads were encrypted.
fn decoded_payloads(history: &[u8]) -> (String, usize) {
    use base64::Engine;
    fn walk(value: &serde_json::Value, text: &mut String, encrypted: &mut usize) {
        let b64 = base64::engine::general_purpose::STANDARD;
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let bytes = value.as_str().and_then(|s| b64.decode(s).ok());
                    match (key.as_str(), bytes) {
                        ("data", Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                        ("encoding", Some(bytes)) if bytes == b"binary/encrypted" => {
                            *encrypted += 1;
                        }
                        _ => {}
                    }
                    walk(value, text, encrypted);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, text, encrypted)),
            _ => {}
        }
    }
    let (mut text, mut encrypted) = (String::new(), 0);
    walk(
        &serde_json::from_slice(history).unwrap(),
        &mut text,
        &mut encrypted,
    );
    (text, encrypted)
}

#[test]
fn dev_encrypts_payloads_and_its_codec_server_decodes_them_for_the_cli_and_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let (_guard, port, ui_port) = detached_dev(&data);
    // A landing key with a name in it, quarantined (no id), so a review is still to come.
    let file = dir.path().join("patients_ZZSENT-Moore.csv");
    std::fs::write(&file, "id,birthdate,gender\n,1980-01-02,F\n").unwrap();
    // Exit code 3: the file waits for review.
    let out = run_expecting(
        lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&file),
        3,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout
        .split_whitespace()
        .find(|w| w.starts_with("ingest-"))
        .expect("a workflow id is printed")
        .to_owned();
    let settings: serde_json::Value =
        serde_json::from_str(&ui_get(ui_port, "/api/v1/settings")).unwrap();
    let endpoint = settings["Codec"]["Endpoint"]
        .as_str()
        .expect("the Web UI is given the codec endpoint")
        .to_owned();
    let show = |extra: &[&str]| {
        let out = run(Command::new(venv().join("bin/temporal"))
            .args(["workflow", "show", "--output", "json", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--workflow-id", &id])
            .args(extra));
        decoded_payloads(&out.stdout)
    };

    // As the server stores it: every payload encrypted, the key nowhere.
    let (stored, encrypted) = show(&[]);
    assert!(encrypted >= 3, "{encrypted} encrypted payloads");
    assert!(
        !stored.contains("ZZSENT"),
        "the key is in clear in the history"
    );
    // Through the codec server (what the Web UI and the CLI with the endpoint show).
    let (decoded, encrypted) = show(&["--codec-endpoint", &endpoint]);
    assert_eq!(encrypted, 0);
    assert!(decoded.contains("patients_ZZSENT-Moore.csv"), "{decoded}");

    // A plain JSON signal, as the Web UI's form or a CLI without the codec sends it, still reads.
    run(Command::new(venv().join("bin/temporal"))
        .args(["workflow", "signal", "--address"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--workflow-id", &id, "--name", "review", "--input"])
        .arg(r#"{"decision": "approve", "reviewer": "alice", "reason": "plain"}"#));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(lakegate(&data).args(["status", &id, "--output", "json"]));
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if status["phase"] == "promoted" {
            assert_eq!(status["review"]["reviewer"], "alice");
            break;
        }
        assert!(Instant::now() < deadline, "not promoted: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `lakegate` as a second terminal runs it: only the data directory, no other lakegate setting
/// in the environment.
fn bare_lakegate(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakegate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LAKEGATE_") {
            command.env_remove(name);
        }
    }
    command
        .env("LAKEGATE_DATA_DIR", data_dir)
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_PROFILE")
        .stdin(Stdio::null());
    command
}

#[test]
fn a_detached_dev_keeps_its_flags_and_tells_client_commands_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let pipeline = dir.path().join("my-pipeline.yaml");
    let (port, ui_port) = (free_port().unwrap(), free_port().unwrap());
    let _guard = DevGuard(data.clone());
    let out = run(bare_lakegate(&data)
        .args(["dev", "--detach", "--task-queue", "cli-settings"])
        .args([
            "--port",
            &port.to_string(),
            "--ui-port",
            &ui_port.to_string(),
        ])
        .arg("--contracts")
        .arg(repo_root().join("tests/fixtures/contracts"))
        .arg("--pipeline")
        .arg(&pipeline)
        .arg("--venv")
        .arg(venv()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "Stop it with: lakegate dev --stop --data-dir {}",
            data.display()
        )),
        "{stdout}"
    );

    // The background process got every flag, --pipeline included, and says so in dev.json.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("dev.json")).unwrap()).unwrap();
    assert_eq!(state["pipeline"], pipeline.to_str().unwrap());
    assert_eq!(state["task_queue"], "cli-settings");
    assert_eq!(state["address"], format!("127.0.0.1:{port}"));
    let pid = state["pid"].as_u64().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--pipeline"), "{cmdline}");
    assert!(!cmdline.contains("--detach"), "{cmdline}");

    let good = dir.path().join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    let bad = dir.path().join("patients_bad.csv");
    std::fs::write(&bad, "id,birthdate,gender\n,1980-01-02,F\n").unwrap();

    // No flags: the contracts and the task queue come from dev.json (the default task queue has
    // no worker, the default contracts no such table), and every file is promoted: exit 0.
    let out = run(bare_lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("onboarded to raw/ehr/patients/"),
        "{out:?}"
    );
    // A missing file is named as such, before anything starts.
    let out = run_expecting(
        bare_lakegate(&data).args(["ingest", "--dataset", "ehr", "/no/such/file.csv"]),
        1,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("file not found: /no/such/file.csv"),
        "{out:?}"
    );

    // Quarantined: exit 3. Its run terminated: a failed run, started again, not "already
    // onboarded".
    let out = run_expecting(
        bare_lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&bad),
        3,
    );
    let id = review_id(&String::from_utf8_lossy(&out.stdout));
    run(Command::new(venv().join("bin/temporal")).args([
        "workflow",
        "terminate",
        "--address",
        &format!("127.0.0.1:{port}"),
        "--workflow-id",
        &id,
        "--reason",
        "test",
    ]));
    let out = run_expecting(
        bare_lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&bad),
        3,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed; starting it again") && !stdout.contains("already onboarded"),
        "{stdout}"
    );

    // A closed stdout ends the command quietly (exit 141 as for SIGPIPE), without a panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = bare_lakegate(&data)
        .args(["status", &id])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(141), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");

    // Rejected: the same bytes again are recognised, and the exit code says they failed.
    run(bare_lakegate(&data).args(["review", &id, "reject", "--reviewer", "bob"]));
    let out = run_expecting(
        bare_lakegate(&data)
            .args(["ingest", "--dataset", "ehr"])
            .arg(&bad),
        4,
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already onboarded"),
        "{out:?}"
    );

    // The background log is plain text.
    let log = std::fs::read_to_string(data.join("dev.log")).unwrap();
    assert!(
        log.contains("Worker serving task queue 'cli-settings'"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in dev.log: {log:?}");

    run(bare_lakegate(&data).args(["dev", "--stop"]));
}

#[test]
fn each_command_lists_only_the_flags_it_reads() {
    let help = |command: &[&str]| {
        let out = run(Command::new(env!("CARGO_BIN_EXE_lakegate"))
            .args(command)
            .arg("--help"));
        String::from_utf8(out.stdout).unwrap()
    };
    let validate = help(&["validate"]);
    for hidden in [
        "--aws-endpoint-url",
        "--backend",
        "--data-dir",
        "--pipeline",
    ] {
        assert!(!validate.contains(hidden), "{validate}");
    }
    assert!(help(&["status"]).contains("--data-dir"));
    assert!(!help(&["status"]).contains("--athena-workgroup"));
    assert!(help(&["query"]).contains("--athena-workgroup"));
    assert!(help(&["worker"]).contains("--batch-job-queue"));
    assert!(help(&["schedule", "sweep"]).contains("--task-queue"));
    assert!(!help(&["schedule", "sweep"]).contains("--backend"));
    // Hidden, not refused: environments that set every flag keep working.
    let out = run_expecting(
        Command::new(env!("CARGO_BIN_EXE_lakegate")).args([
            "validate",
            "--backend",
            "aws",
            "--contract",
            "/no/such/contract.yaml",
            "/no/such/file.csv",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("bad contract"));
}
