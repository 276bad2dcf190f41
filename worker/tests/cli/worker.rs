//! A worker process: graceful shutdown on SIGTERM, JSON logs, the metrics endpoint and OTLP
//! traces without cell values.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lakegate::dev_server::{self, DevServer, DevServerOptions, free_port};
use lakegate_activities::testing::http;

use crate::common::{lakegate, venv};

/// Spawns `command` (a `lakegate ... worker`) with its log in `log` and returns once the worker
/// says it started.
pub(crate) fn spawn_worker(command: &mut Command, log: &Path) -> Child {
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

/// A throwaway dev server logging to `dir`/temporal.log.
pub(crate) fn ephemeral_server(dir: &Path) -> DevServer {
    DevServer::start(&DevServerOptions::ephemeral(
        venv().join("bin/temporal"),
        dir.join("temporal.log"),
    ))
    .unwrap()
}

#[test]
fn a_worker_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = ephemeral_server(dir.path());
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
    let server = ephemeral_server(dir.path());
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
    let server = ephemeral_server(dir.path());
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
    let out = crate::common::run(
        lakegate(dir.path())
            .args(["ingest", "--dataset", "ehr"])
            .arg(&file)
            .env("TEMPORAL_ADDRESS", server.address())
            .env("LAKEGATE_TASK_QUEUE", task_queue),
    );
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
