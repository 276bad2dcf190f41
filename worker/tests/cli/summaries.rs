//! The Temporal Web UI tells runs apart: the crawl and the transform that a promoted file sets
//! off say in their summaries which dataset they work on, and name no file. (Ingest, retract and
//! backfill summaries: `retract_cli.rs`.)

use std::time::{Duration, Instant};

use lakegate::dev_server::free_port;
use lakegate_activities::testing::pipeline::dbt_pipeline_yaml;

use crate::common::{DevGuard, codec_endpoint, lakegate, repo_root, run, summary_of, venv};

#[test]
fn crawl_and_transform_runs_name_their_dataset_in_the_web_ui() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let dbt = repo_root().join("tests/fixtures/dbt_retract");
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        dbt_pipeline_yaml("summary-", "ehr", &dbt, "counts", 1),
    )
    .unwrap();
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
    let deadline = Instant::now() + Duration::from_secs(120);
    let transform = loop {
        let out = std::process::Command::new(venv().join("bin/temporal"))
            .args(["workflow", "list", "--output", "json", "--address"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--query", "WorkflowType = 'TransformWorkflow'"])
            .output()
            .unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if let Some(id) = listed
            .as_array()
            .and_then(|runs| runs.first())
            .and_then(|run| run["execution"]["workflowId"].as_str())
        {
            break summary_of(port, &endpoint, id);
        }
        assert!(Instant::now() < deadline, "no transform started: {listed}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        transform.starts_with("Transform dataset ehr:"),
        "{transform}"
    );
    for summary in [crawl, transform] {
        assert!(!summary.contains(".csv"), "a file name in {summary}");
    }
    run(lakegate(&data).args(["dev", "--stop"]));
}
