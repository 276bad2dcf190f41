//! The AWS backend end to end on moto: a real Temporal dev server, a lakegate worker on the AWS
//! backend and a moto server, the worker's AWS clients going through a fault proxy (failing
//! nothing, or a fifth of the S3, Glue, Batch and Athena calls).
//!
//! One run: two files are put into the bucket's landing/; moto's S3 → SQS notification puts each
//! event in the queue, and the test puts each a second time (SQS delivers at least once). The
//! worker's router starts one IngestFileWorkflow per file, each validated and promoted to raw/.
//! The ehr dataset's contract declares its columns: its CrawlWorkflow registers the Glue table and
//! partition itself (glue_tables, no crawler exists for it). The labs dataset says
//! `catalog: crawler`: its CrawlWorkflow runs moto's Glue crawler and waits through moto's
//! RUNNING → READY transition. After the ehr catalog step, the TransformWorkflow runs two dbt
//! stages as Batch jobs and then two checks on Athena.
//!
//! moto runs no container, no SQL and no real crawler. What the test places itself:
//! - each Batch job's container: moto marks a job SUCCEEDED when it is submitted, so when moto
//!   accepts a SubmitJob the test runs the dbt image's real entrypoint with the job's command and
//!   environment and a stand-in `dbt`, which uploads run_results.json and manifest.json (one model
//!   and one test per stage, both passing) under `jobs/<job name>/target/`, before the worker
//!   reads the answer (`world.rs`, `play_the_services`);
//! - Athena's answers: a row count of 2 for ehr_patients, then 1 violating row for the SQL check,
//!   queued through moto's `/moto-api/static/athena/query-results` before the run;
//! - the crawler's output: when moto accepts the labs crawler's StartCrawler, the test creates the
//!   labs_results table and its partition, as the Glue crawler would while it runs;
//! - the labs crawler itself, with its targets already the promoted file's prefix (moto has no
//!   UpdateCrawler), as the deployment creates crawlers.
//!
//! Asserted: what the workflows did with those (node results in the transform's result, the check
//! verdicts, the tables the crawl reports), every file in exactly one zone, each prefix catalogued
//! by one step, one IngestFileWorkflow per file, one Batch job per stage and one Athena query per
//! check, a drained queue. The faulted run also prints its extra calls.
//!
//! `cargo test -p lakegate-tests --test aws_e2e -- --nocapture` prints the figures.

#[path = "aws_e2e/world.rs"]
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use lakegate::client;
use lakegate::config::{AwsConfig, Backend};
use lakegate_aws::testing::{Counts, lake, queue_depth, redeliver_first};
use lakegate_models::{IngestPhase, Zone, ingest_workflow_id, names};
use lakegate_tests::TestEnv;
use temporalio_client::WorkflowCountOptions;
use world::{ATHENA_COUNTS, BUCKET, DATABASE, EHR_KEY, LABS_KEY, STAGES, World};

const FAULTS_PER_MILLE: u64 = 200;
const SEED: u64 = 0x0e2e_fa17;

/// The proxy's seed: [`SEED`], or `LAKEGATE_FAULT_SEED` to try other fault sequences.
fn seed() -> u64 {
    std::env::var("LAKEGATE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED)
}
const DEADLINE: Duration = Duration::from_secs(180);

/// What one run cost, for the summary.
struct Run {
    counts: BTreeMap<String, Counts>,
    operations: BTreeMap<(String, String), Counts>,
    totals: Counts,
    /// Activity attempts beyond the first, over every workflow of the run.
    activity_retries: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_flow_from_an_s3_upload_through_catalog_transform_and_checks_on_moto() {
    let run = end_to_end(0).await;
    assert_eq!(run.totals.faults, 0);
    assert_eq!(run.activity_retries, 0, "no faults, no activity retries");
    summary("fault-free", &run, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_run_ends_the_same_with_a_fifth_of_glue_batch_athena_and_s3_calls_failing() {
    // The reference: the same run through the same proxy, failing nothing.
    let clean = end_to_end(0).await;
    let faulty = end_to_end(FAULTS_PER_MILLE).await;
    summary("20 % faults", &faulty, Some(&clean));
    assert!(faulty.totals.faults > 0, "no fault was injected");
    assert!(
        faulty.totals.calls <= 3 * clean.totals.calls,
        "{} calls against {} without faults: retries are not bounded",
        faulty.totals.calls,
        clean.totals.calls
    );
}

fn summary(label: &str, run: &Run, reference: Option<&Run>) {
    println!("\n{label}: per service");
    println!("service      calls  faults  (fault-free calls)");
    for (service, c) in &run.counts {
        let before = reference
            .and_then(|r| r.counts.get(service))
            .map_or(String::new(), |b| b.calls.to_string());
        println!("{service:<10} {:>7} {:>7}  {before:>8}", c.calls, c.faults);
    }
    println!("{label}: operations that saw faults");
    for ((service, op), c) in run.operations.iter().filter(|(_, c)| c.faults > 0) {
        println!(
            "  {service}:{op:<28} {:>4} calls {:>3} faults",
            c.calls, c.faults
        );
    }
    let extra = reference.map(|r| run.totals.calls.saturating_sub(r.totals.calls));
    println!(
        "{label}: calls {}, injected faults {}, extra calls {}, activity retries {}",
        run.totals.calls,
        run.totals.faults,
        extra.map_or("-".into(), |e| e.to_string()),
        run.activity_retries
    );
}

async fn put(world: &World, key: &str, body: &'static [u8]) -> String {
    let put = world
        .moto
        .clients()
        .await
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from_static(body))
        .send()
        .await
        .unwrap();
    put.e_tag().unwrap().trim_matches('"').to_owned()
}

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    lake::keys(s3, BUCKET, prefix).await
}

/// Polls `check` every 100 ms until it returns `Some`, failing the test after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn end_to_end(per_mille: u64) -> Run {
    let world = World::start(per_mille, seed(), per_mille > 0).await;
    let clients = world.moto.clients().await;
    let (s3, sqs, glue) = (&clients.s3, &clients.sqs, &clients.glue);

    let labs_prefix = world.labs_prefix.clone();

    let ehr_etag = put(
        &world,
        EHR_KEY,
        b"id,birthdate,gender\np1,1980-01-02,F\np2,1975-03-04,M\n",
    )
    .await;
    let labs_etag = put(
        &world,
        LABS_KEY,
        b"id,patient,value\nl1,p1,4.2\nl2,p2,5.1\n",
    )
    .await;
    // At-least-once delivery, played by the test: moto's notification is in the queue; the
    // same message body goes in a second time for each file.
    for key in [EHR_KEY, LABS_KEY] {
        // The file name: moto form-encodes the key's slashes in the event.
        let name = key.rsplit('/').next().unwrap();
        redeliver_first(sqs, &world.queue_url, |body| {
            body.contains("ObjectCreated") && body.contains(name)
        })
        .await
        .unwrap();
    }

    let aws = AwsConfig {
        backend: Backend::Aws,
        aws_endpoint_url: Some(world.proxy.endpoint.clone()),
        aws_emulator: true,
        sqs_queue_url: Some(world.queue_url.clone()),
        athena_workgroup: "primary".into(),
        batch_job_queue: world::JOB_QUEUE.into(),
        batch_job_definition: world::JOB_DEFINITION.into(),
        batch_artifacts_prefix: "jobs/".into(),
        ..AwsConfig::default()
    };
    let env = TestEnv::start_on(&world.contracts, Some(&world.pipeline), aws)
        .await
        .unwrap();

    // The router starts one IngestFileWorkflow per file; both are promoted.
    let mut raw_keys = BTreeMap::new();
    for (key, etag) in [(EHR_KEY, &ehr_etag), (LABS_KEY, &labs_etag)] {
        let id = ingest_workflow_id(BUCKET, key, etag);
        until("the router to start the ingest", || async {
            client::workflow_exists(&env.client, &id)
                .await
                .unwrap()
                .then_some(())
        })
        .await;
        let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
        assert_eq!(
            (outcome.phase, outcome.zone),
            (IngestPhase::Promoted, Zone::Raw),
            "{key}"
        );
        raw_keys.insert(key, outcome.key);
    }
    assert!(
        raw_keys[LABS_KEY].starts_with(&labs_prefix),
        "the labs file was dated {} (midnight UTC passed during the test? run it again)",
        raw_keys[LABS_KEY]
    );

    let settled = |crawler: &'static str| {
        let client = env.client.clone();
        async move {
            let s = client::crawl_status(&client, crawler).await.ok()?;
            let done = s.phase == "waiting"
                && s.crawls_done >= 1
                && s.last.as_ref().is_some_and(|l| {
                    l.transform_workflow_id.is_none() || l.transform_succeeded.is_some()
                });
            done.then_some(s)
        }
    };
    let labs = until("the labs crawl to settle", || settled("lakegate-labs")).await;
    let ehr = until("the ehr catalog step and transform to settle", || {
        settled("lakegate-ehr")
    })
    .await;

    // ehr: registered from the contract, one step, no crawler call.
    let step = ehr.last.clone().unwrap();
    assert_eq!(step.status, "SUCCEEDED", "{step:?}");
    assert_eq!((ehr.crawls_done, ehr.pending_prefixes), (1, 0), "{ehr:?}");
    assert_eq!(step.tables_created, ["ehr_patients"]);
    let ehr_date = lake::ingest_date(&raw_keys[EHR_KEY]);
    assert_eq!(
        step.changes[0].partitions_added,
        std::slice::from_ref(&ehr_date)
    );
    let table = glue
        .get_table()
        .database_name(DATABASE)
        .name("ehr_patients")
        .send()
        .await
        .unwrap();
    let sd = table.table().unwrap().storage_descriptor().unwrap();
    let columns: Vec<&str> = sd.columns().iter().map(|c| c.name()).collect();
    assert_eq!(columns, ["id", "birthdate", "gender"]);
    assert_eq!(sd.location(), Some("s3://lake/raw/ehr/patients/"));
    let partitions = glue
        .get_partitions()
        .database_name(DATABASE)
        .table_name("ehr_patients")
        .send()
        .await
        .unwrap();
    let values: Vec<&[String]> = partitions.partitions().iter().map(|p| p.values()).collect();
    assert_eq!(
        values,
        [std::slice::from_ref(&ehr_date)],
        "one partition, once"
    );
    let ehr_crawl = names::crawl_workflow_id("lakegate-ehr");
    let history = env.history_text(&ehr_crawl).await.unwrap();
    assert!(history.contains(names::REGISTER_CATALOG_ACTIVITY));
    assert!(!history.contains(names::START_CRAWL_ACTIVITY));

    // labs: one crawl of exactly its prefix, succeeded (moto says COMPLETED), and the table the
    // crawler "wrote" is reported as created.
    let crawl = labs.last.clone().unwrap();
    assert_eq!(crawl.status, "SUCCEEDED", "{crawl:?}");
    assert_eq!(
        (labs.crawls_done, labs.pending_prefixes),
        (1, 0),
        "{labs:?}"
    );
    assert!(labs.last_failure.is_none(), "{labs:?}");
    assert_eq!(crawl.prefixes, std::slice::from_ref(&labs_prefix));
    assert_eq!(crawl.tables_created, ["labs_results"]);
    // The workflow waited through moto's transition: RUNNING first, READY at the end.
    let states = world.seen.lock().unwrap().labs_states.clone();
    assert!(
        states.first().map(String::as_str) == Some("READY")
            && states.contains(&"RUNNING".to_owned())
            && states.last().map(String::as_str) == Some("READY"),
        "the labs crawler's states as the worker read them: {states:?}"
    );
    assert_eq!(
        world.seen.lock().unwrap().crawls_started,
        ["lakegate-labs"],
        "one StartCrawler moto accepted"
    );
    let crawls = glue
        .list_crawls()
        .crawler_name("lakegate-labs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        crawls.crawls().len(),
        1,
        "one crawl: {crawls:?}; glue calls: {:?}",
        world
            .proxy
            .operations()
            .into_iter()
            .filter(|((s, _), _)| s == "glue")
            .collect::<Vec<_>>(),
    );

    // The transform: one Batch job per stage, node results from the artifacts the container left,
    // and the checks' verdicts on the counts Athena "returned".
    let transform_id = step.transform_workflow_id.clone().unwrap();
    assert_eq!(
        transform_id,
        names::transform_workflow_id("lakegate-ehr", 1)
    );
    let result = client::transform_status(&env.client, &transform_id)
        .await
        .unwrap();
    assert_eq!(
        result
            .stages
            .iter()
            .map(|s| s.stage.as_str())
            .collect::<Vec<_>>(),
        STAGES
    );
    for stage in &result.stages {
        assert!(stage.succeeded, "{stage:?}");
        assert_eq!(stage.jobs.len(), 1, "one job per stage: {stage:?}");
        let nodes: Vec<(&str, &str)> = stage
            .nodes
            .iter()
            .map(|n| (n.unique_id.as_str(), n.status.as_str()))
            .collect();
        let (model, test) = (
            format!("model.ehr.{}_patients", stage.stage),
            format!("test.ehr.not_null_{}_patients_id", stage.stage),
        );
        assert_eq!(
            nodes,
            [(model.as_str(), "success"), (test.as_str(), "pass")],
            "the nodes of the run_results.json the job uploaded"
        );
        assert_eq!(stage.nodes[0].execution_time_secs, 1.5);
    }
    let verdicts: Vec<(&str, bool, &str)> = result
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.passed, c.observed.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("row_count:ehr_patients", true, "2 rows"),
            ("sql:unknown_gender", false, "1 violating rows"),
        ],
        "the checks read Athena's placed answers {ATHENA_COUNTS:?}"
    );
    assert!(!result.succeeded, "a failed check fails the transform");
    assert_eq!(step.transform_succeeded, Some(false));

    // No duplicate job or query, counted on moto's side and on the wire.
    let (jobs, queries) = {
        let seen = world.seen.lock().unwrap();
        (seen.jobs.clone(), seen.queries.clone())
    };
    let submitted: Vec<&str> = jobs.iter().map(|(j, _)| j.name.as_str()).collect();
    assert_eq!(
        submitted.len(),
        STAGES.len(),
        "SubmitJob calls moto got: {submitted:?}"
    );
    for (job, code) in &jobs {
        assert_eq!(*code, 0, "the container of {}", job.name);
        assert_eq!(job.env("LAKEGATE_JOB_NAME"), Some(job.name.as_str()));
        assert_eq!(job.env("LAKEGATE_ARTIFACTS"), Some("s3://lake/jobs/"));
        assert_eq!(job.command[..2], ["dbt", "build"]);
    }
    let moto_jobs: BTreeSet<String> =
        lakegate_aws::testing::play::job_names(&world.moto, world::JOB_QUEUE, "transform-")
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(
        moto_jobs,
        submitted.iter().map(|s| (*s).to_owned()).collect(),
        "moto holds exactly the jobs the stages submitted"
    );
    let tokens: BTreeSet<&str> = queries.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        (queries.len(), tokens.len()),
        (ATHENA_COUNTS.len(), ATHENA_COUNTS.len()),
        "one StartQueryExecution per check: {queries:?}"
    );
    let executions = clients.athena.list_query_executions().send().await.unwrap();
    assert_eq!(executions.query_execution_ids().len(), ATHENA_COUNTS.len());
    for name in ["run_results.json", "manifest.json"] {
        for job in &submitted {
            let key = format!("jobs/{job}/target/{name}");
            assert_eq!(keys(s3, &key).await, std::slice::from_ref(&key));
        }
    }

    // Every file in exactly one zone; the queue drained; one ingest run per file.
    let mut zones = Vec::new();
    for zone in Zone::ALL {
        zones.extend(keys(s3, zone.prefix()).await);
    }
    zones.sort();
    let mut expected: Vec<String> = raw_keys.values().cloned().collect();
    expected.sort();
    assert_eq!(zones, expected, "each file in raw/ only");
    until("the router to acknowledge every delivery", || async {
        (queue_depth(sqs, &world.queue_url).await.unwrap() == 0).then_some(())
    })
    .await;
    let ingests = format!(
        "WorkflowType='{}' AND TaskQueue='{}'",
        names::INGEST_FILE_WORKFLOW,
        env.config.task_queue
    );
    let runs = until("visibility to list both ingests", || async {
        let n = env
            .client
            .count_workflows(ingests.clone(), WorkflowCountOptions::default())
            .await
            .ok()?
            .count();
        (n >= 2).then_some(n)
    })
    .await;
    assert_eq!(runs, 2, "four deliveries, two IngestFileWorkflows");

    let mut activity_retries = 0;
    let mut ids = vec![
        ingest_workflow_id(BUCKET, EHR_KEY, &ehr_etag),
        ingest_workflow_id(BUCKET, LABS_KEY, &labs_etag),
        ehr_crawl,
        names::crawl_workflow_id("lakegate-labs"),
    ];
    ids.push(transform_id);
    for id in &ids {
        let history: serde_json::Value =
            serde_json::from_slice(&env.history_json(id).await.unwrap()).unwrap();
        activity_retries += history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                e["attributes"]["ActivityTaskStartedEventAttributes"]["attempt"].as_u64()
            })
            .map(|attempt| attempt.saturating_sub(1))
            .sum::<u64>();
    }
    Run {
        counts: world.proxy.counts(),
        operations: world.proxy.operations(),
        totals: world.proxy.totals(),
        activity_retries,
    }
}
