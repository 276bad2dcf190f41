//! The whole local pipeline: ingest → crawl into DuckDB → dbt stage by stage → checks, on the
//! real Temporal dev server, DuckDB CLI and dbt-duckdb from the virtualenv.

use std::path::Path;
use std::time::Duration;

use lakegate::client;
use lakegate::telemetry::{CRAWL_DURATION_SECONDS, FILES_TOTAL, JOB_DURATION_SECONDS};
use lakegate_models::{CrawlStatus, Decision, IngestInput, IngestPhase, TransformInput};
use lakegate_tests::metrics::sample;
use lakegate_tests::runs::{self, ingest, review, start};
use lakegate_tests::{TestEnv, repo_root};
use lakegate_workflows::TransformWorkflow;
use temporalio_client::WorkflowGetResultOptions;

const PIPELINE_WAIT: Duration = Duration::from_secs(900);

/// Planted in a patient's first name in the end-to-end test: the leak scan must never find it.
const SENTINEL: &str = "ZZLEAK-pipeline";

async fn settled(env: &TestEnv, crawler: &str, crawls: u64) -> CrawlStatus {
    runs::crawler_settled(env, crawler, crawls, PIPELINE_WAIT).await
}

/// An object of the lake (the log zone, here) as text.
async fn stored(env: &TestEnv, key: &str) -> String {
    use lakegate_activities::ports::ObjectStore;
    use tokio::io::AsyncReadExt;
    let mut body = env.store.get(key).await.unwrap();
    let mut text = String::new();
    body.read_to_string(&mut text).await.unwrap();
    text
}

fn manifest() -> serde_json::Value {
    let text =
        std::fs::read_to_string(repo_root().join("examples/ehr/sample/manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn land_file(env: &TestEnv, path: &Path) -> IngestInput {
    let name = path.file_name().unwrap().to_str().unwrap();
    env.land(
        &format!("landing/synthea/ehr/{name}"),
        &std::fs::read(path).unwrap(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_dataset_reaches_the_marts_and_an_approved_file_follows() {
    let root = repo_root();
    // The example's settings, with a quiet period long enough that a loaded CI machine cannot
    // split the five promotions into two crawls (the burst test covers coalescing itself).
    let example = std::fs::read_to_string(root.join("examples/ehr/pipeline.yaml")).unwrap();
    assert!(example.contains("quiet_period_secs: 3") && example.contains("project_dir: dbt"));
    let dbt = root.join("examples/ehr/dbt").display().to_string();
    let settings = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        settings.path(),
        example
            .replace("quiet_period_secs: 3", "quiet_period_secs: 15")
            .replace("project_dir: dbt", &format!("project_dir: {dbt}"))
            .replace("profiles_dir: dbt", &format!("profiles_dir: {dbt}")),
    )
    .unwrap();
    let env =
        TestEnv::start_with_metrics(&root.join("examples/ehr/contracts"), Some(settings.path()))
            .await
            .unwrap();
    let manifest = manifest();

    let mut good = Vec::new();
    for table in [
        "patients",
        "encounters",
        "conditions",
        "observations",
        "medications",
    ] {
        let path = root.join(format!("examples/ehr/sample/ehr/{table}.csv"));
        let mut body = std::fs::read_to_string(&path).unwrap();
        if table == "patients" {
            assert!(body.contains("Mary323"));
            body = body.replacen("Mary323", &format!("{SENTINEL}-1"), 1);
        }
        let input = env
            .land(&format!("landing/synthea/ehr/{table}.csv"), body.as_bytes())
            .await
            .unwrap();
        good.push(start(&env, input).await);
    }
    let bad_input = land_file(
        &env,
        &root.join("examples/ehr/sample/bad/ehr/patients_missing_id.csv"),
    )
    .await;
    let bad = start(&env, bad_input).await;
    for id in &good {
        let outcome = client::wait_outcome(&env.client, id).await.unwrap();
        assert_eq!(outcome.phase, IngestPhase::Promoted, "{id}");
        assert_eq!(
            outcome.crawl_workflow_id.as_deref(),
            Some("crawl-lakegate-ehr")
        );
    }
    client::wait_for_status(&env.client, &bad, Duration::from_secs(120), |s| {
        s.phase == IngestPhase::AwaitingReview
    })
    .await
    .unwrap();

    // Five files promoted within seconds of each other: one crawl, one transform.
    let status = settled(&env, "lakegate-ehr", 1).await;
    let crawl = status.last.unwrap();
    assert_eq!(crawl.status, "SUCCEEDED", "{crawl:?}");
    assert_eq!(
        status.crawls_done, 1,
        "the burst was not coalesced: {crawl:?}"
    );
    assert_eq!(crawl.tables_created.len(), 5, "{crawl:?}");
    assert_eq!(crawl.transform_succeeded, Some(true), "{crawl:?}");
    let transform =
        client::transform_status(&env.client, crawl.transform_workflow_id.as_deref().unwrap())
            .await
            .unwrap();
    let stages: Vec<&str> = transform.stages.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["staging", "intermediate", "marts"]);
    for stage in &transform.stages {
        assert!(stage.succeeded, "{stage:?}");
        assert!(!stage.nodes.is_empty());
        // dbt's tests ran and passed, not merely its models.
        assert!(
            stage
                .nodes
                .iter()
                .all(|n| matches!(n.status.as_str(), "success" | "pass")),
            "{stage:?}"
        );
    }
    assert!(
        transform
            .stages
            .iter()
            .any(|s| s.nodes.iter().any(|n| n.unique_id.starts_with("test.")))
    );
    assert!(
        transform.checks.iter().all(|c| c.passed),
        "{:?}",
        transform.checks
    );
    assert_eq!(transform.checks.len(), 4);
    for (mart, expected) in manifest["marts"].as_object().unwrap() {
        let rows = env
            .scalar(&format!("select count(*) from analytics.{mart}"))
            .await;
        assert_eq!(rows, expected.as_i64().unwrap(), "{mart}");
    }

    // Approved later, the quarantined file flows on into the next crawl and transform.
    let approve = review(Decision::Approve, "alice", "Id backfilled");
    client::send_review(&env.client, &bad, approve)
        .await
        .unwrap();
    let outcome = client::wait_outcome(&env.client, &bad).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);
    let status = settled(&env, "lakegate-ehr", 2).await;
    assert_eq!(
        status.last.as_ref().unwrap().transform_succeeded,
        Some(true)
    );
    let expected = manifest["marts"]["patient_demographics"].as_i64().unwrap()
        + manifest["bad"][0]["rows_with_id"].as_i64().unwrap();
    assert_eq!(
        env.scalar("select count(*) from analytics.patient_demographics")
            .await,
        expected
    );

    // The worker's metrics tell the same story: both crawls and every stage job timed, each
    // file's outcome counted. The activities record before they report, so no wait is needed.
    let text = env.scrape_metrics().await.unwrap();
    let ehr = [("dataset", "ehr")];
    let files = |outcome| {
        sample(
            &text,
            FILES_TOTAL,
            &[("dataset", "ehr"), ("outcome", outcome)],
        )
    };
    assert_eq!(files("promoted"), Some(5.0), "{text}");
    assert_eq!(files("quarantined"), Some(1.0), "{text}");
    assert_eq!(files("approved"), Some(1.0), "{text}");
    // The example's contracts declare their columns: both catalog steps registered the tables
    // from them and no crawler ran, so no crawl was timed.
    let crawls = sample(&text, &format!("{CRAWL_DURATION_SECONDS}_count"), &ehr);
    assert_eq!(crawls, None, "{text}");
    for stage in ["staging", "intermediate", "marts"] {
        let jobs = sample(
            &text,
            &format!("{JOB_DURATION_SECONDS}_count"),
            &[("dataset", "ehr"), ("stage", stage)],
        );
        // One job per stage per transform, two transforms.
        assert_eq!(jobs, Some(2.0), "{stage}: {text}");
    }
    // The planted name went through validation, a crawl, dbt and checks: none of their
    // histories, nor the server's log, may carry it.
    let scan = env.scan_for_leaks(&[SENTINEL.to_owned()]).await.unwrap();
    scan.ensure_clean().unwrap();
    assert!(scan.histories >= 8, "{scan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_model_is_retried_and_failed_tests_are_not() {
    let env = TestEnv::start().await.unwrap();
    let project = repo_root()
        .join("tests/fixtures/dbt_flaky")
        .display()
        .to_string();
    let input = TransformInput {
        dataset: "flaky".into(),
        project_dir: project.clone(),
        profiles_dir: project,
        target: "duckdb".into(),
        stages: vec!["flaky".into(), "broken".into()],
        environment: Default::default(),
        max_attempts: 3,
        poll_initial_secs: 1,
        poll_max_secs: 2,
        checks: Vec::new(),
        job_deadline_secs: lakegate_models::default_job_deadline_secs(),
        query_deadline_secs: lakegate_models::default_query_deadline_secs(),
    };
    let id = runs::test_id(&env, "transform-test");
    let handle = runs::start_workflow(&env, TransformWorkflow::run, input, &id).await;
    let error = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    let result = client::transform_status(&env.client, &id).await.unwrap();

    let flaky = &result.stages[0];
    assert!(flaky.succeeded, "{flaky:?}");
    assert_eq!(
        flaky.jobs.len(),
        2,
        "one failure, then one dbt retry: {flaky:?}"
    );
    // The failed attempt's log is kept in the lake's log zone, its text out of the history.
    assert!(flaky.log_tail.is_empty(), "{flaky:?}");
    let key = flaky
        .log_key
        .as_deref()
        .expect("the failed attempt's log is kept");
    assert!(key.starts_with(&format!("logs/{id}/flaky-")), "{key}");
    let log = stored(&env, key).await;
    assert!(log.contains("transient failure injected"), "{log}");
    assert_eq!(flaky.error_class.as_deref(), Some("Invalid Input Error"));

    let broken = &result.stages[1];
    assert!(!broken.succeeded);
    assert_eq!(
        broken.jobs.len(),
        1,
        "failed dbt tests are never retried: {broken:?}"
    );
    assert!(
        broken.failure.as_deref().unwrap().contains("not_null"),
        "{broken:?}"
    );
    assert!(broken.log_tail.is_empty(), "{broken:?}");
    assert_eq!(broken.error_class.as_deref(), Some("dbt test failed"));
    let log = stored(&env, broken.log_key.as_deref().unwrap()).await;
    assert!(log.contains("not_null"), "{log}");
    assert!(message.contains("broken"), "{message}");
    assert!(
        message.contains("error class: dbt test failed"),
        "{message}"
    );
    let failed_test = broken
        .nodes
        .iter()
        .find(|n| n.unique_id.starts_with("test."));
    assert_eq!(failed_test.and_then(|n| n.failures), Some(1), "{broken:?}");
    env.record_history("dbt_retry", &id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_files_gives_a_handful_of_crawls() {
    const FILES: usize = 100;
    let env = TestEnv::start_crawling(
        "crawler_prefix: burst-\nquiet_period_secs: 5\nmax_wait_secs: 120\n",
    )
    .await
    .unwrap();
    let mut ids = Vec::new();
    for n in 0..FILES {
        let body = format!("id,birthdate,gender\np{n}a,1980-01-02,F\np{n}b,1975-03-04,M\n");
        let key = format!("landing/emr/ehr/patients_{n:03}.csv");
        ids.push(ingest(&env, &key, body.as_bytes()).await);
    }
    for id in &ids {
        assert_eq!(
            client::wait_outcome(&env.client, id).await.unwrap().phase,
            IngestPhase::Promoted
        );
    }
    let status = settled(&env, "burst-ehr", 1).await;
    assert!(
        (1..=3).contains(&status.crawls_done),
        "{FILES} files gave {} crawls",
        status.crawls_done
    );
    assert_eq!(status.last.as_ref().unwrap().status, "SUCCEEDED");
    assert_eq!(
        env.scalar("select count(*) from raw.ehr_patients").await,
        2 * FILES as i64
    );
    env.record_history("coalesced", "crawl-burst-ehr")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crawl_workflow_continues_as_new_and_keeps_its_count() {
    let env = TestEnv::start_crawling(
        "crawler_prefix: can-\nquiet_period_secs: 1\nmax_wait_secs: 30\ncrawls_per_run: 1\n",
    )
    .await
    .unwrap();
    let handle = env
        .client
        .get_workflow_handle::<lakegate_workflows::CrawlWorkflow>("crawl-can-ehr".to_owned());
    let mut runs = Vec::new();
    for n in 1..=2u64 {
        let body = format!("id,birthdate,gender\nq{n},1980-01-02,F\n");
        let key = format!("landing/emr/ehr/patients_q{n}.csv");
        let id = ingest(&env, &key, body.as_bytes()).await;
        assert_eq!(
            client::wait_outcome(&env.client, &id).await.unwrap().phase,
            IngestPhase::Promoted
        );
        let status = settled(&env, "can-ehr", n).await;
        assert_eq!(status.crawls_done, n, "the count survives continue-as-new");
        let description = handle
            .describe(temporalio_client::WorkflowDescribeOptions::default())
            .await
            .unwrap();
        runs.push(description.run_id().to_owned());
    }
    assert_ne!(
        runs[0], runs[1],
        "one crawl per run: the second crawl ran in a new run"
    );
    assert_eq!(env.scalar("select count(*) from raw.ehr_patients").await, 2);
    // The first run: it ends in the continue-as-new the replay must reproduce.
    env.record_run_history("continued_as_new", "crawl-can-ehr", Some(&runs[0]))
        .await
        .unwrap();
}
