//! The Temporal Web UI tells runs apart: the crawl and the transform that a promoted file sets
//! off, the ingests a backfill or the landing sweep starts and the runs a schedule starts say in
//! their summaries which dataset (and table) they work on, and name no file. (Ingest, retract
//! and backfill summaries: `retract_cli.rs`.)

use std::path::Path;
use std::time::{Duration, Instant};

use lakegate::dev_server::free_port;
use lakegate_activities::testing::pipeline::dbt_pipeline_yaml;

use crate::common::{
    DevGuard, codec_endpoint, lakegate, repo_root, run, summary_of, summary_through, venv,
};
use crate::worker::{ephemeral_server, spawn_worker};

/// Stops a spawned worker even when the test fails half-way.
struct WorkerGuard(std::process::Child);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        lakegate::dev_server::terminate(self.0.id());
        lakegate::dev_server::wait_or_kill(&mut self.0, Duration::from_secs(30));
    }
}

/// The id of the first run the server on `port` lists for the visibility `query`, waited for:
/// runs that another run starts appear a moment after it.
fn first_listed(port: u16, query: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = std::process::Command::new(venv().join("bin/temporal"))
            .args(["workflow", "list", "--output", "json", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--query", query])
            .output()
            .unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(id) = listed
            .as_array()
            .and_then(|runs| runs.first())
            .and_then(|run| run["execution"]["workflowId"].as_str())
        {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "nothing listed for {query}: {listed}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Pipeline settings in `dir` that crawl dataset ehr and transform it with the one-stage dbt
/// fixture.
fn transform_pipeline(dir: &Path) -> std::path::PathBuf {
    let dbt = repo_root().join("tests/fixtures/dbt_retract");
    let pipeline = dir.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        dbt_pipeline_yaml("summary-", "ehr", &dbt, "counts", 1),
    )
    .unwrap();
    pipeline
}

/// The id of the ingest of `name`, dropped into the lake under `data` as a patients file.
fn drop_patients(data: &Path, name: &str) -> String {
    let key = format!("landing/synthea/ehr/{name}");
    let path = data.join("lake").join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("id,birthdate,gender\n{name},1980-01-02,F\n")).unwrap();
    let version = lakegate_local::content_sha256(&path).unwrap();
    lakegate_models::ingest_workflow_id("lake", &key, &version)
}

#[test]
fn crawl_and_transform_runs_name_their_dataset_in_the_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let pipeline = transform_pipeline(dir.path());
    let (port, ui_port) = (free_port().unwrap(), free_port().unwrap());
    let _guard = DevGuard(data.clone());
    run(lakegate(&data)
        .args(["dev", "--detach", "--port", &port.to_string()])
        .args(["--ui-port", &ui_port.to_string()])
        .arg("--pipeline")
        .arg(&pipeline));
    let good = dir.path().join("patients_good.csv");
    std::fs::write(&good, "id,birthdate,gender\np1,1980-01-02,F\n").unwrap();
    run(lakegate(&data)
        .args(["ingest", "--dataset", "ehr"])
        .arg(&good));

    let endpoint = codec_endpoint(ui_port);
    let crawl = summary_of(port, &endpoint, "crawl-summary-ehr");
    assert!(crawl.starts_with("Crawl dataset ehr:"), "{crawl}");
    // The transform is the crawl's child, started once the first crawl is done.
    let transform = summary_of(
        port,
        &endpoint,
        &first_listed(port, "WorkflowType = 'TransformWorkflow'"),
    );
    assert!(
        transform.starts_with("Transform dataset ehr:"),
        "{transform}"
    );
    for summary in [crawl, transform] {
        assert!(!summary.contains(".csv"), "a file name in {summary}");
    }
    run(lakegate(&data).args(["dev", "--stop"]));
}

/// A worker that does not watch landing/, so the ingests here are started by the backfill and
/// by the scheduled sweep, not by a watcher that got there first.
#[test]
fn backfill_sweep_and_scheduled_runs_say_what_they_are_in_the_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let server = ephemeral_server(dir.path());
    let port: u16 = server
        .address()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let address = server.address().to_owned();
    let _worker = WorkerGuard(spawn_worker(
        lakegate(&data)
            .arg("worker")
            .env("TEMPORAL_ADDRESS", &address),
        &dir.path().join("worker.log"),
    ));
    let cli = |args: &[&str]| {
        run(lakegate(&data).env("TEMPORAL_ADDRESS", &address).args(args));
    };
    let ingest_summary = |id: &str| {
        first_listed(port, &format!("WorkflowId = '{id}'"));
        summary_through(port, None, id)
    };
    let mut summaries = Vec::new();

    let backfilled = drop_patients(&data, "patients_backfilled.csv");
    cli(&["backfill", "landing/synthea/ehr/", "--no-wait"]);
    summaries.push(ingest_summary(&backfilled));

    let swept = drop_patients(&data, "patients_swept.csv");
    cli(&[
        "schedule",
        "sweep",
        "--id",
        "sweep-now",
        "--every-secs",
        "1",
        "--older-than-secs",
        "0",
    ]);
    summaries.push(ingest_summary(&swept));
    let sweep = first_listed(port, "TemporalScheduledById = 'sweep-now'");
    summaries.push(summary_through(port, None, &sweep));

    let pipeline = transform_pipeline(dir.path());
    run(lakegate(&data)
        .env("TEMPORAL_ADDRESS", &address)
        .env("LAKEGATE_PIPELINE", &pipeline)
        .args([
            "schedule",
            "transform",
            "--dataset",
            "ehr",
            "--id",
            "transform-summary",
        ]));
    run(std::process::Command::new(venv().join("bin/temporal"))
        .args([
            "schedule",
            "trigger",
            "--schedule-id",
            "transform-summary",
            "--address",
        ])
        .arg(&address));
    let transform = first_listed(port, "TemporalScheduledById = 'transform-summary'");
    summaries.push(summary_through(port, None, &transform));

    assert!(
        summaries[0].starts_with("Onboard one ehr.patients file"),
        "{summaries:?}"
    );
    assert!(
        summaries[1].starts_with("Onboard one ehr.patients file"),
        "{summaries:?}"
    );
    assert!(
        summaries[2].starts_with("Scheduled landing sweep:"),
        "{summaries:?}"
    );
    assert!(
        summaries[3].starts_with("Scheduled transform of dataset ehr:"),
        "{summaries:?}"
    );
    for summary in &summaries {
        assert!(!summary.contains("patients_"), "a file name in {summary}");
    }
}
