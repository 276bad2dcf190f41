//! The AWS side of the end-to-end run, set up in moto as a deployment would set it up, and the
//! parts moto does not play, played by the test (see the crate's doc for the list).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, S3Target, StorageDescriptor, TableInput,
};
use lakegate_aws::glue::{crawl_everything, s3_targets};
use lakegate_aws::testing::play::{self, SubmittedJob};
use lakegate_aws::testing::{
    Call, FaultProxy, Hook, Moto, ProxyOptions, queue, send_object_events_to,
};

pub const BUCKET: &str = "lake";
pub const DATABASE: &str = "raw";
pub const JOB_QUEUE: &str = "lakegate-dbt";
pub const JOB_DEFINITION: &str = "lakegate-dbt";
/// The dataset whose tables come from its contract, and which has a transform.
pub const EHR_KEY: &str = "landing/emr/ehr/patients.csv";
/// The dataset left to the Glue crawler (`catalog: crawler`).
pub const LABS_KEY: &str = "landing/emr/labs/results.csv";
pub const STAGES: [&str; 2] = ["staging", "marts"];
/// What the test's Athena answers to the transform's two checks, in the order they run: the
/// row count of ehr_patients, then the count of the SQL check's violating rows.
pub const ATHENA_COUNTS: [i64; 2] = [2, 1];

const EHR_CONTRACT: &str = "dataset: ehr
tables:
  - name: patients
    keys: [\"landing/*/ehr/patients*.csv\"]
    columns:
      - { name: id, required: true }
      - { name: birthdate, required: true }
      - { name: gender }
";

const LABS_CONTRACT: &str = "dataset: labs
catalog: crawler
tables:
  - name: results
    keys: [\"landing/*/labs/results*.csv\"]
    columns:
      - { name: id, required: true }
      - { name: patient, required: true }
      - { name: value }
";

/// The stand-in for dbt inside the job's container: `dbt build --select path:models/<stage>`
/// writes the run_results.json and manifest.json dbt would (one model and its test, both
/// passing) into DBT_TARGET_PATH and exits 0. The real entrypoint around it uploads them.
const STAND_IN_DBT: &str = r#"#!/bin/sh
[ "$1" = build ] || exit 2
stage=
prev=
for a in "$@"; do
  [ "$prev" = --select ] && stage=${a#path:models/}
  prev=$a
done
mkdir -p "$DBT_TARGET_PATH"
printf '{"metadata":{},"results":[{"unique_id":"model.ehr.%s_patients","status":"success","execution_time":1.5},{"unique_id":"test.ehr.not_null_%s_patients_id","status":"pass","execution_time":0.25}],"elapsed_time":1.75}' "$stage" "$stage" > "$DBT_TARGET_PATH/run_results.json"
printf '{"metadata":{},"nodes":{}}' > "$DBT_TARGET_PATH/manifest.json"
"#;

/// What the test saw happen on the wire (through the proxy's hook, so only calls moto got).
#[derive(Debug, Default)]
pub struct Seen {
    /// Jobs moto accepted, with the exit code of the container the test ran for each.
    pub jobs: Vec<(SubmittedJob, i32)>,
    /// StartQueryExecution calls moto got: (ClientRequestToken, query execution id).
    pub queries: Vec<(String, String)>,
    /// StartCrawler calls moto accepted, by crawler.
    pub crawls_started: Vec<String>,
    /// The labs crawler's State in each GetCrawler answer the worker got, in order.
    pub labs_states: Vec<String>,
}

/// moto, the proxy the worker's AWS clients go through, and what the test set up around them.
pub struct World {
    pub moto: Moto,
    pub proxy: FaultProxy,
    pub seen: Arc<Mutex<Seen>>,
    pub queue_url: String,
    pub contracts: PathBuf,
    pub pipeline: PathBuf,
    /// Where the labs file will be promoted: today's partition (UTC), as the ingest dates it.
    pub labs_prefix: String,
    _dir: tempfile::TempDir,
}

fn labs_prefix_today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let today = lakegate_models::civil_date_from_unix(now as i64);
    format!("raw/labs/results/ingest_date={today}/")
}

impl World {
    /// moto with the bucket, its S3 → SQS notifications, the Glue database, the Batch queue and
    /// job definition; a proxy failing `per_mille` of the S3, Glue, Batch and Athena calls.
    /// With `lost_answers`, half the injected faults (the internal errors) come after moto did
    /// the work (see [`ProxyOptions::lost_answers`]), and so does one for the first SubmitJob and
    /// the first StartCrawler.
    pub async fn start(per_mille: u64, seed: u64, lost_answers: bool) -> Self {
        let moto = Moto::start().await.unwrap();
        let clients = moto.clients().await;
        let labs_prefix = labs_prefix_today();
        // A crawl stays RUNNING for 5 s (the harness's 2 s is for joining tests): real crawls
        // take a minute or more, so a StartCrawler retried after a lost answer always meets the
        // crawl it started, and the workflow's 1 s polls see it RUNNING.
        moto.post_json(
            "/moto-api/state-manager/set-transition",
            r#"{"model_name":"glue::crawl","transition":{"progression":"time","seconds":5}}"#,
        )
        .await
        .unwrap();
        clients
            .s3
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        let (queue_url, arn) = queue(&clients.sqs, "lake-events", &[]).await;
        send_object_events_to(&clients.s3, BUCKET, &arn)
            .await
            .unwrap();
        clients
            .glue
            .create_database()
            .database_input(DatabaseInput::builder().name(DATABASE).build().unwrap())
            .send()
            .await
            .unwrap();
        play::batch_queue(&moto, JOB_QUEUE, JOB_DEFINITION)
            .await
            .unwrap();
        // Placed by the test: moto runs no SQL, so these are the checks' answers (see ATHENA_COUNTS).
        moto.queue_athena_counts(&ATHENA_COUNTS).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let contracts = dir.path().join("contracts");
        std::fs::create_dir_all(&contracts).unwrap();
        std::fs::write(contracts.join("ehr.yaml"), EHR_CONTRACT).unwrap();
        std::fs::write(contracts.join("labs.yaml"), LABS_CONTRACT).unwrap();
        // The dbt project as the job sees it: the entrypoint checks the folders exist.
        for d in ["dbt/project", "dbt/profiles"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let bin = dir.path().join("bin");
        play::stand_in_dbt(&bin, STAND_IN_DBT).unwrap();
        let pipeline = dir.path().join("pipeline.yaml");
        std::fs::write(&pipeline, pipeline_yaml(dir.path())).unwrap();

        let seen = Arc::new(Mutex::new(Seen::default()));
        let hook = play_the_services(
            &moto.endpoint,
            bin,
            dir.path().join("jobs"),
            labs_prefix.clone(),
            seen.clone(),
        );
        let proxy = FaultProxy::start_with(
            moto.port,
            ProxyOptions {
                per_mille,
                seed,
                services: Some(["s3", "glue", "batch", "athena"].map(String::from).to_vec()),
                lost_answers,
                // moto ignores ClientRequestToken: a lost StartQueryExecution answer would make a
                // second query in moto where Athena returns the first one's id.
                answers_kept: vec![("athena".into(), "StartQueryExecution".into())],
                // The worst places for a lost answer, hit for sure rather than by the dice:
                // calls that create something (a job, a crawl) and have no idempotency token.
                lose_first: if lost_answers {
                    vec![
                        ("batch".into(), "submitjob".into()),
                        ("glue".into(), "StartCrawler".into()),
                    ]
                } else {
                    Vec::new()
                },
                hook: Some(hook),
            },
        )
        .await
        .unwrap();
        let world = Self {
            moto,
            proxy,
            seen,
            labs_prefix,
            queue_url,
            contracts,
            pipeline,
            _dir: dir,
        };
        world.create_labs_crawler().await;
        world
    }

    /// The labs dataset's crawler, as the deployment creates it. moto 5.2.5 has no UpdateCrawler,
    /// so its targets are already the one prefix the labs file will be promoted to (the adapter
    /// then skips the update, as it does on AWS when the targets match).
    async fn create_labs_crawler(&self) {
        let prefix = &self.labs_prefix;
        let glue = self.moto.clients().await.glue;
        glue.create_crawler()
            .name("lakegate-labs")
            .role("arn:aws:iam::123456789012:role/crawler")
            .database_name(DATABASE)
            .table_prefix("labs_")
            .targets(s3_targets(vec![
                S3Target::builder()
                    .path(format!("s3://{BUCKET}/{prefix}"))
                    .build(),
            ]))
            .recrawl_policy(crawl_everything())
            .send()
            .await
            .unwrap();
    }
}

/// What the Glue crawler would have written while crawling `prefix` (moto's crawler reads no S3
/// and writes nothing): the labs table and the crawled partition, placed by the test.
async fn place_crawled_table(moto_endpoint: &str, prefix: &str) {
    let ingest_date = prefix
        .split('/')
        .find_map(|p| p.strip_prefix("ingest_date="))
        .unwrap();
    let settings = lakegate_aws::AwsSettings::emulator(moto_endpoint);
    let glue = lakegate_aws::AwsClients::load(&settings).await.glue;
    // A second crawl of the same prefix would write the same table and partition again.
    if glue
        .get_table()
        .database_name(DATABASE)
        .name("labs_results")
        .send()
        .await
        .is_ok()
    {
        return;
    }
    let columns = ["id", "patient", "value"]
        .map(|c| Column::builder().name(c).r#type("string").build().unwrap());
    let table_location = format!("s3://{BUCKET}/raw/labs/results/");
    glue.create_table()
        .database_name(DATABASE)
        .table_input(
            TableInput::builder()
                .name("labs_results")
                .table_type("EXTERNAL_TABLE")
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .location(&table_location)
                        .set_columns(Some(columns.to_vec()))
                        .build(),
                )
                .partition_keys(
                    Column::builder()
                        .name("ingest_date")
                        .r#type("string")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    glue.create_partition()
        .database_name(DATABASE)
        .table_name("labs_results")
        .partition_input(
            PartitionInput::builder()
                .values(ingest_date)
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .location(format!("s3://{BUCKET}/{prefix}"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
}

fn pipeline_yaml(dir: &Path) -> String {
    let project = dir.join("dbt/project");
    let profiles = dir.join("dbt/profiles");
    format!(
        "crawler_prefix: lakegate-
database: {DATABASE}
quiet_period_secs: 1
max_wait_secs: 5
poll_initial_secs: 1
poll_max_secs: 1
crawl_deadline_secs: 120
transforms:
  ehr:
    dataset: ehr
    project_dir: {project}
    profiles_dir: {profiles}
    target: athena
    stages: [{stages}]
    max_attempts: 2
    poll_initial_secs: 1
    poll_max_secs: 1
    job_deadline_secs: 300
    checks:
      - {{ kind: row_count, table: ehr_patients }}
      - {{ kind: sql, name: unknown_gender, sql: \"select id from ehr_patients where gender not in ('F', 'M')\" }}
",
        project = project.display(),
        profiles = profiles.display(),
        stages = STAGES.join(", "),
    )
}

/// The proxy's hook: plays the services' missing parts at the moment each would act.
///
/// - Batch: moto's no-Docker Batch marks a submitted job SUCCEEDED at once and runs nothing. For
///   each SubmitJob moto accepted, before the worker sees the answer, the test runs the dbt
///   image's real entrypoint with the job's command and environment (the stand-in dbt inside),
///   which uploads run_results.json and manifest.json to `jobs/<job name>/target/` in moto's S3,
///   where the container would have left them by the time the job reads SUCCEEDED.
/// - Glue's crawler: moto's crawl reads nothing and writes nothing. When moto accepts the labs
///   crawler's StartCrawler, the test writes the table and partition the crawl would have
///   written, before its RUNNING → READY transition ends. GetCrawler answers are recorded to show
///   the workflow waited through that transition.
/// - Athena: nothing to play here (the results were queued up front); the hook only records
///   each StartQueryExecution moto got, to count queries.
fn play_the_services(
    moto_endpoint: &str,
    bin: PathBuf,
    scratch: PathBuf,
    labs_prefix: String,
    seen: Arc<Mutex<Seen>>,
) -> Hook {
    let endpoint = moto_endpoint.to_owned();
    Arc::new(move |call: Call| {
        let (endpoint, bin, scratch, labs_prefix, seen) = (
            endpoint.clone(),
            bin.clone(),
            scratch.clone(),
            labs_prefix.clone(),
            seen.clone(),
        );
        Box::pin(async move {
            if call.status != 200 {
                return;
            }
            match (call.service.as_str(), call.operation.as_str()) {
                ("batch", "submitjob") => {
                    let job = SubmittedJob::from_request(&call.request).unwrap();
                    let code =
                        play::run_entrypoint(&endpoint, &job, &bin, &scratch.join(&job.name))
                            .await
                            .unwrap();
                    seen.lock().unwrap().jobs.push((job, code));
                }
                ("glue", "StartCrawler") => {
                    let request: serde_json::Value = serde_json::from_slice(&call.request).unwrap();
                    let name = request["Name"].as_str().unwrap_or_default().to_owned();
                    if name == "lakegate-labs" {
                        place_crawled_table(&endpoint, &labs_prefix).await;
                    }
                    seen.lock().unwrap().crawls_started.push(name);
                }
                ("glue", "GetCrawler") => {
                    let answer: serde_json::Value = serde_json::from_slice(&call.response).unwrap();
                    if answer["Crawler"]["Name"] == "lakegate-labs" {
                        let state = answer["Crawler"]["State"].as_str().unwrap_or_default();
                        seen.lock().unwrap().labs_states.push(state.to_owned());
                    }
                }
                ("athena", "StartQueryExecution") => {
                    let request: serde_json::Value = serde_json::from_slice(&call.request).unwrap();
                    let answer: serde_json::Value = serde_json::from_slice(&call.response).unwrap();
                    seen.lock().unwrap().queries.push((
                        request["ClientRequestToken"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        answer["QueryExecutionId"].as_str().unwrap_or("").to_owned(),
                    ));
                }
                _ => {}
            }
        })
    })
}
