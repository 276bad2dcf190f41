//! The sample EHR project end to end on the local backend with the real tools: generate a small
//! dataset, lay it out as raw/ would be, crawl it with DuckDB, run the dbt project stage by stage
//! as local jobs, and compare the marts with what the generator says it produced.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lakegate_activities::port_suites;
use lakegate_activities::ports::{Catalog, CrawlRequest, Crawler, JobRunner, JobSpec, JobState};
use lakegate_local::{LocalCrawler, LocalJobRunner, LocalQueryEngine};

const TABLES: [&str; 5] = [
    "patients",
    "encounters",
    "conditions",
    "observations",
    "medications",
];

fn generate(out: &Path, patients: u32) -> serde_json::Value {
    let root = common::repo_root();
    let python = lakegate_local::LocalConfig::venv_from_env(&root).join("bin/python");
    let status = Command::new(&python)
        .arg(root.join("examples/ehr/generate.py"))
        .args(["--seed", "7", "--patients", &patients.to_string(), "--out"])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(status.success(), "generate.py failed");
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

fn dbt_stage(stage: &str, config: &lakegate_local::LocalConfig) -> JobSpec {
    let mut spec = JobSpec {
        name: format!("dbt-{stage}"),
        command: ["dbt", "build", "--select", stage, "--target", "duckdb"]
            .into_iter()
            .chain([
                "--project-dir",
                "examples/ehr/dbt",
                "--profiles-dir",
                "examples/ehr/dbt",
            ])
            .map(str::to_owned)
            .collect(),
        environment: Default::default(),
        resume_from: None,
    };
    spec.environment.insert(
        "LAKEGATE_DUCKDB_PATH".into(),
        config.duckdb_path.display().to_string(),
    );
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dbt_project_builds_marts_that_match_the_generator() {
    let (dir, config) = common::config();
    let manifest = generate(&dir.path().join("generated"), 40);

    for table in TABLES {
        let from = dir
            .path()
            .join("generated/ehr")
            .join(format!("{table}.csv"));
        let key = format!("raw/ehr/{table}/ingest_date=2026-01-01/{table}.csv");
        common::put(&config, &key, &std::fs::read_to_string(from).unwrap());
    }

    let crawler = LocalCrawler::new(&config);
    let request = CrawlRequest {
        crawler: "ehr".into(),
        database: "raw".into(),
        prefixes: vec!["raw/ehr/".into()],
    };
    crawler.start_crawl(&request).await.unwrap();
    let last = port_suites::wait_for_crawl(&crawler, "ehr", 0, Duration::from_secs(120)).await;
    assert_eq!(last.status, "SUCCEEDED", "{:?}", last.error_message);
    let tables = crawler.list_tables("raw").await.unwrap();
    assert_eq!(tables.len(), TABLES.len());

    let runner = LocalJobRunner::new(&config);
    for stage in ["staging", "intermediate", "marts"] {
        let id = runner.submit(&dbt_stage(stage, &config)).await.unwrap();
        let status = port_suites::wait_for_job(&runner, &id, Duration::from_secs(300)).await;
        let tail = runner.log_tail(&id, 40).await.unwrap();
        assert_eq!(
            status.state,
            JobState::Succeeded,
            "dbt {stage} failed:\n{}",
            tail.join("\n")
        );
        let results = runner
            .artifact(&id, "target/run_results.json")
            .await
            .unwrap();
        let results: serde_json::Value =
            serde_json::from_slice(&results.expect("dbt wrote run_results.json")).unwrap();
        let nodes = results["results"].as_array().unwrap();
        assert!(!nodes.is_empty(), "dbt {stage} ran no nodes");
        for node in nodes {
            let status = node["status"].as_str().unwrap();
            assert!(
                status == "success" || status == "pass",
                "{}: {status}",
                node["unique_id"]
            );
        }
        if stage == "staging" {
            // Tests ran with the models: unique/not_null/relationships/accepted_values.
            assert!(
                nodes
                    .iter()
                    .any(|n| n["unique_id"].as_str().unwrap().starts_with("test."))
            );
        }
    }

    let engine = LocalQueryEngine::new(&config);
    for (mart, expected) in manifest["marts"].as_object().unwrap() {
        let sql = format!("SELECT count(*) AS n FROM analytics.{mart}");
        let (_, rows, _) = port_suites::run_query(
            &engine,
            &sql,
            &format!("count-{mart}"),
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(
            rows[0][0].as_deref(),
            Some(expected.to_string().as_str()),
            "rows in {mart}"
        );
    }
    // Every generated encounter is counted once per patient in the demographics mart.
    let (_, rows, _) = port_suites::run_query(
        &engine,
        "SELECT sum(encounter_count) FROM analytics.patient_demographics",
        "sum-encounters",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        rows[0][0].as_deref(),
        Some(manifest["tables"]["encounters"].to_string().as_str())
    );
}
