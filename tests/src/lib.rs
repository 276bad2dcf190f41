//! Test harness: every integration test gets a real `temporal server start-dev` on a free
//! loopback port, a lakegate worker on its own task queue and a temporary lake, and tears all
//! three down (the server by PID) when it ends. Nothing is mocked: a test that cannot start the
//! server fails.

pub mod chaos;
pub mod cli;
pub mod events;
pub mod histories;
mod lake;
pub mod metrics;
pub mod phi;
pub mod runs;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use lakegate::LakeConfig;
use lakegate::client;
use lakegate::config::AwsConfig;
use lakegate::dev_server::{DevServer, DevServerOptions};
use lakegate::telemetry::Telemetry;
use lakegate_activities::ports::ObjectStore;
use lakegate_local::LocalObjectStore;
use lakegate_models::{IngestInput, Zone};
use temporalio_client::Client;
use tokio::sync::oneshot;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The project's virtualenv (LAKEGATE_VENV overrides).
pub fn venv() -> PathBuf {
    lakegate_local::LocalConfig::venv_from_env(repo_root())
}

/// Runs the generator of `examples/<example>` (from the project's virtualenv) into `out` with
/// `args` (`--seed`, `--patients`, ...): the generated data the contract tests feed the examples.
pub fn generate_example(example: &str, out: &Path, args: &[&str]) -> anyhow::Result<()> {
    let script = repo_root()
        .join("examples")
        .join(example)
        .join("generate.py");
    let status = std::process::Command::new(venv().join("bin/python"))
        .arg(&script)
        .arg("--out")
        .arg(out)
        .args(args)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(status.success(), "{example}/generate.py failed: {status}");
    Ok(())
}

/// A throwaway dev server (headless, in memory, free port) logging to `dir`/temporal.log.
pub fn start_dev_server(dir: &Path) -> anyhow::Result<DevServer> {
    DevServer::start(&DevServerOptions::ephemeral(
        venv().join("bin/temporal"),
        dir.join("temporal.log"),
    ))
    .context("the Temporal dev server must start for integration tests")
}

/// A lake in `dir` served on a task queue of its own; without `pipeline`, files stop at raw/.
pub fn lake_config(
    dir: &Path,
    contracts: &Path,
    pipeline: Option<&Path>,
    aws: AwsConfig,
) -> LakeConfig {
    LakeConfig {
        data_dir: dir.to_owned(),
        bucket: "lake".into(),
        contracts: contracts.to_owned(),
        task_queue: format!("lakegate-test-{}", unique_suffix()),
        venv: venv(),
        pipeline: pipeline.map_or_else(|| dir.join("no-pipeline.yaml"), Path::to_owned),
        codec_key_file: None,
        aws,
    }
}

/// Puts `body` at `key` and returns the ingest input for it, versioned by content (as the local
/// event sources do), with an hour to review it.
pub async fn land(
    store: &LocalObjectStore,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> anyhow::Result<IngestInput> {
    store.put(key, Bytes::copy_from_slice(body)).await?;
    Ok(IngestInput {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version: lakegate_models::short_hash(&String::from_utf8_lossy(body)),
        review_timeout_secs: 3600,
        crawl_later: false,
    })
}

pub struct TestEnv {
    pub client: Client,
    pub config: LakeConfig,
    /// The payload codec of the client and worker (a key generated for this test).
    pub codec: lakegate::codec::EncryptionCodec,
    pub store: Arc<LocalObjectStore>,
    worker_stop: Option<oneshot::Sender<()>>,
    worker_thread: Option<JoinHandle<anyhow::Result<()>>>,
    /// Where the worker serves `/metrics`, when started with metrics.
    pub metrics_addr: Option<SocketAddr>,
    // Dropped last: the server outlives the worker.
    server: DevServer,
    _dir: tempfile::TempDir,
    /// The pipeline file [`Self::start_crawling`] wrote, kept for the worker's lifetime.
    _pipeline: Option<tempfile::NamedTempFile>,
}

impl TestEnv {
    /// Server, worker and lake with the test contracts; files stop at raw/ (no pipeline).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(&repo_root().join("tests/fixtures/contracts"), None).await
    }

    /// With `pipeline`, promoted files flow on into crawls and transforms.
    pub async fn start_with(contracts: &Path, pipeline: Option<&Path>) -> anyhow::Result<Self> {
        Self::start_on(contracts, pipeline, AwsConfig::default()).await
    }

    /// With the test contracts and a pipeline that crawls but transforms nothing.
    /// `crawl_settings` holds the lines a test varies (`crawler_prefix`, `quiet_period_secs`,
    /// `max_wait_secs`, ...); the catalog database, fast polling and no transforms are added.
    pub async fn start_crawling(crawl_settings: &str) -> anyhow::Result<Self> {
        let pipeline = tempfile::NamedTempFile::new()?;
        std::fs::write(
            pipeline.path(),
            format!(
                "{crawl_settings}database: raw\npoll_initial_secs: 1\npoll_max_secs: 2\n\
                 crawl_deadline_secs: 600\ntransforms: {{}}\n"
            ),
        )?;
        let mut env = Self::start_with(
            &repo_root().join("tests/fixtures/contracts"),
            Some(pipeline.path()),
        )
        .await?;
        env._pipeline = Some(pipeline);
        Ok(env)
    }

    /// On the backend `aws` selects (the local one by default).
    pub async fn start_on(
        contracts: &Path,
        pipeline: Option<&Path>,
        aws: AwsConfig,
    ) -> anyhow::Result<Self> {
        Self::start_full(contracts, pipeline, aws, Telemetry::off()).await
    }

    /// As [`Self::start_with`], the worker serving Prometheus metrics on a free loopback port
    /// ([`Self::metrics_addr`]).
    pub async fn start_with_metrics(
        contracts: &Path,
        pipeline: Option<&Path>,
    ) -> anyhow::Result<Self> {
        // Bound here, on the test's runtime, which then serves the endpoint.
        let telemetry = Telemetry::prometheus(([127, 0, 0, 1], 0).into())?;
        Self::start_full(contracts, pipeline, AwsConfig::default(), telemetry).await
    }

    /// The worker's `/metrics` text (the worker must have been started with metrics).
    pub async fn scrape_metrics(&self) -> anyhow::Result<String> {
        let addr = self
            .metrics_addr
            .context("the worker was started without metrics")?;
        metrics::scrape(addr).await
    }

    async fn start_full(
        contracts: &Path,
        pipeline: Option<&Path>,
        aws: AwsConfig,
        telemetry: Telemetry,
    ) -> anyhow::Result<Self> {
        let metrics_addr = telemetry.metrics_addr();
        let dir = tempfile::tempdir()?;
        let server = start_dev_server(dir.path())?;
        let config = lake_config(dir.path(), contracts, pipeline, aws);
        // As in `lakegate dev`: a generated key, so every test's payloads are encrypted.
        let codec = config.dev_codec()?;
        let codec_for_env = codec.clone();
        let client = client::connect_with_retry(
            Some(server.address()),
            Some(&codec),
            Duration::from_secs(60),
        )
        .await?;
        let store = lakegate::worker::local_store(&config);
        let (worker_stop, stopped) = oneshot::channel::<()>();
        let worker_config = config.clone();
        let address = server.address().to_owned();
        // The SDK worker is not Send: it gets a thread and a runtime of its own.
        let worker_thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let client = client::connect(Some(&address), Some(&codec)).await?;
                lakegate::worker::run_worker_with(client, &worker_config, &telemetry, async move {
                    let _ = stopped.await;
                })
                .await
            })
        });
        Ok(Self {
            client,
            config,
            codec: codec_for_env,
            store,
            worker_stop: Some(worker_stop),
            worker_thread: Some(worker_thread),
            metrics_addr,
            server,
            _dir: dir,
            _pipeline: None,
        })
    }

    /// Puts `body` at `key` and returns the ingest input for it, versioned by content.
    pub async fn land(&self, key: &str, body: &[u8]) -> anyhow::Result<IngestInput> {
        land(&self.store, &self.config.bucket, key, body).await
    }

    /// Every key in every zone, sorted: what a user would see listing the bucket.
    pub async fn all_keys(&self) -> anyhow::Result<Vec<String>> {
        let mut keys = Vec::new();
        for zone in Zone::ALL {
            keys.extend(
                self.store
                    .list(zone.prefix())
                    .await?
                    .into_iter()
                    .map(|m| m.key),
            );
        }
        keys.sort();
        Ok(keys)
    }

    /// The workflow's history (its latest run) in the SDK's JSON form.
    pub async fn history_json(&self, workflow_id: &str) -> anyhow::Result<Vec<u8>> {
        self.run_history_json(workflow_id, None).await
    }

    /// The history of one run of a workflow (`None`: its latest) in the SDK's JSON form.
    pub async fn run_history_json(
        &self,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut loaded = lakegate::replay::fetch_history(&self.client, workflow_id, run_id).await?;
        // Decrypted, so a recording replays without this test's throwaway key and the leak checks
        // see what a key holder would (the stored, encrypted form is the leak scan's business).
        temporalio_common::payload_visitor::decode_payloads(
            &mut loaded.history,
            &self.codec,
            &temporalio_common::data_converters::SerializationContextData::None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("decrypting the history of {workflow_id}: {e}"))?;
        Ok(serde_json::to_vec(&loaded.history)?)
    }

    /// Everything a person could read in the workflow's history: the JSON itself plus every
    /// payload decoded (the JSON carries payload data base64-encoded, so searching it alone would
    /// miss a leaked value).
    pub async fn history_text(&self, workflow_id: &str) -> anyhow::Result<String> {
        let json = self.history_json(workflow_id).await?;
        let value: serde_json::Value = serde_json::from_slice(&json)?;
        let mut text = String::from_utf8(json)?;
        let mut decoded = 0;
        decode_payloads(&value, &mut text, &mut decoded);
        anyhow::ensure!(
            decoded > 0,
            "no payloads found in the history of {workflow_id}"
        );
        Ok(text)
    }

    /// The run id of the first run of `workflow_id`'s chain (continue-as-new keeps the id).
    pub async fn first_run_id(&self, workflow_id: &str) -> anyhow::Result<String> {
        use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
        let latest = lakegate::replay::fetch_history(&self.client, workflow_id, None).await?;
        match latest
            .history
            .events
            .first()
            .and_then(|e| e.attributes.as_ref())
        {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) => {
                Ok(started.first_execution_run_id.clone())
            }
            _ => anyhow::bail!("{workflow_id}: the history does not start with its start event"),
        }
    }

    /// With LAKEGATE_RECORD_HISTORIES=1, saves the workflow's latest run for the replay test as a
    /// new file under tests/histories/<WorkflowType>/ (see [`histories::record`]).
    pub async fn record_history(&self, name: &str, workflow_id: &str) -> anyhow::Result<()> {
        self.record_run_history(name, workflow_id, None).await
    }

    /// As [`Self::record_history`], for one run (e.g. the first of a continued-as-new chain).
    pub async fn record_run_history(
        &self,
        name: &str,
        workflow_id: &str,
        run_id: Option<&str>,
    ) -> anyhow::Result<()> {
        if !histories::recording() {
            return Ok(());
        }
        let json = self.run_history_json(workflow_id, run_id).await?;
        let value: serde_json::Value = serde_json::from_slice(&json)?;
        histories::record(name, "json", &serde_json::to_vec_pretty(&value)?)?;
        Ok(())
    }

    /// With LAKEGATE_RECORD_HISTORIES=1, also saves the history as the Temporal CLI prints it
    /// (`temporal workflow show --output json`: canonical proto3 JSON, the Web UI's download
    /// format) as a new `<name>.proto3.json`, so replay covers that form too.
    pub async fn record_proto3_history(&self, name: &str, workflow_id: &str) -> anyhow::Result<()> {
        if !histories::recording() {
            return Ok(());
        }
        // Decoded through a codec server, so the file replays without this test's key.
        let (endpoint, _stop) = self.start_codec_server().await?;
        let output = tokio::process::Command::new(venv().join("bin/temporal"))
            .args(["workflow", "show", "--output", "json", "--address"])
            .arg(self.server_address())
            .args(["--namespace", "default", "--workflow-id", workflow_id])
            .args(["--codec-endpoint", &endpoint])
            .output()
            .await
            .context("running the Temporal CLI")?;
        anyhow::ensure!(
            output.status.success(),
            "temporal workflow show failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        histories::record(name, "proto3.json", &output.stdout)?;
        Ok(())
    }

    pub fn server_address(&self) -> &str {
        self.server.address()
    }

    /// `lakegate codec-server` with this test's key on a free loopback port, on the current
    /// runtime, until the returned sender is dropped. Returns its URL.
    pub async fn start_codec_server(&self) -> anyhow::Result<(String, oneshot::Sender<()>)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = lakegate::codec_server::CodecServer::new(self.codec.clone(), Vec::new(), None);
        tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok((url, stop))
    }

    /// The PHI leak scan ([`phi::scan`]) over every workflow on this test's server, as stored
    /// and decoded through this test's codec server, and the server's own log.
    pub async fn scan_for_leaks(&self, sentinels: &[String]) -> anyhow::Result<phi::LeakScan> {
        let server_log = self.config.data_dir.join("temporal.log");
        let (endpoint, _stop) = self.start_codec_server().await?;
        phi::scan(
            &self.client,
            self.server_address(),
            Some(&endpoint),
            sentinels,
            &[server_log],
        )
        .await
    }

    /// [`Self::scan_for_leaks`] for `sentinel`, which must find it nowhere, having read at least
    /// `min_histories` histories and decrypted some payload (a scan that read nothing proves
    /// nothing).
    pub async fn assert_no_leaks(&self, sentinel: &str, min_histories: usize) {
        let scan = self.scan_for_leaks(&[sentinel.to_owned()]).await.unwrap();
        assert!(
            scan.histories >= min_histories,
            "the scan read {} histories",
            scan.histories
        );
        assert!(scan.encrypted > 0, "the scan decrypted no payload");
        scan.ensure_clean().unwrap();
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(stop) = self.worker_stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.worker_thread.take() {
            let _ = thread.join();
        }
        self.server.stop();
    }
}

pub(crate) fn decode_payloads(value: &serde_json::Value, out: &mut String, decoded: &mut usize) {
    use base64::Engine;
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if key == "data"
                    && let serde_json::Value::String(data) = value
                    && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data)
                {
                    out.push('\n');
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    *decoded += 1;
                }
                decode_payloads(value, out, decoded);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|v| decode_payloads(v, out, decoded));
        }
        _ => {}
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
