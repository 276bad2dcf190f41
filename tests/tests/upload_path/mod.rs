//! The AWS backend's whole upload path against moto, shared by `aws.rs` (straight to moto) and
//! `aws_faults.rs` (through a fault-injecting proxy): an object put into the bucket's landing/
//! reaches the worker's event router through an S3 → SQS notification delivered twice, and one
//! IngestFileWorkflow on a real Temporal dev server moves it to raw/. Also the set-up of a
//! promoted file on moto with Glue for the catalog step, shared by `aws.rs` and `retract_aws.rs`.
//! Each test binary uses a part of this module.

use std::time::{Duration, Instant};

use aws_sdk_glue::types::Partition;
use aws_sdk_s3::primitives::ByteStream;
use lakegate::client;
use lakegate::config::{AwsConfig, Backend};
use lakegate_aws::AwsClients;
use lakegate_aws::testing::{Moto, queue, queue_depth, redeliver_first, send_object_events_to};
use lakegate_models::{
    CrawlStatus, IngestInput, IngestOutcome, IngestPhase, Zone, ingest_workflow_id,
};
use lakegate_tests::runs::crawler_settled;
use lakegate_tests::{TestEnv, repo_root};

const DEADLINE: Duration = Duration::from_secs(90);

/// The keys under `prefix` in the bucket `lake`.
pub async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
    lakegate_aws::testing::lake::keys(s3, "lake", prefix).await
}

/// Puts two valid patients at `key` in the bucket `lake`; the object's ETag, unquoted.
pub async fn put_patients(s3: &aws_sdk_s3::Client, key: &str) -> String {
    let put = s3
        .put_object()
        .bucket("lake")
        .key(key)
        .body(ByteStream::from_static(
            b"id,birthdate,gender\np1,1980-01-02,F\np2,1975-03-04,M\n",
        ))
        .send()
        .await
        .unwrap();
    put.e_tag().unwrap().trim_matches('"').to_owned()
}

/// What the run's history shows of retries.
pub struct PathRun {
    /// Activity attempts beyond the first: failures the SDK's own retries did not absorb.
    #[allow(dead_code)] // read by aws_faults.rs only
    pub activity_retries: u64,
}

/// The key the path uploads unless a test asks for another.
pub const KEY: &str = "landing/emr/ehr/patients 2026-11.csv";

/// Runs the path for an upload to `key` with the worker's AWS clients pointed at
/// `worker_endpoint` (moto, or a proxy in front of it; the test's own set-up calls go straight to
/// moto) and asserts its end state: one promoted object, an empty landing/, a drained queue.
pub async fn upload_through_sqs_to_raw(moto: &Moto, worker_endpoint: &str, key: &str) -> PathRun {
    let clients = moto.clients().await;
    let (s3, sqs) = (clients.s3.clone(), clients.sqs.clone());
    s3.create_bucket().bucket("lake").send().await.unwrap();
    let (url, arn) = queue(&sqs, "lake-events", &[]).await;
    send_object_events_to(&s3, "lake", &arn).await.unwrap();

    let etag = put_patients(&s3, key).await;

    // SQS delivers at least once: put the upload's event in the queue a second time.
    redeliver_first(&sqs, &url, |body| body.contains("ObjectCreated"))
        .await
        .unwrap();

    let aws = AwsConfig {
        backend: Backend::Aws,
        aws_endpoint_url: Some(worker_endpoint.to_owned()),
        aws_emulator: true,
        sqs_queue_url: Some(url.clone()),
        athena_workgroup: "primary".into(),
        ..AwsConfig::default()
    };
    let env = TestEnv::start_on(&repo_root().join("tests/fixtures/contracts"), None, aws)
        .await
        .unwrap();

    let id = ingest_workflow_id("lake", key, &etag);
    let deadline = Instant::now() + DEADLINE;
    while !client::workflow_exists(&env.client, &id).await.unwrap() {
        assert!(Instant::now() < deadline, "the router never started {id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(
        (outcome.phase, outcome.zone),
        (IngestPhase::Promoted, Zone::Raw)
    );

    // Both deliveries are acknowledged, and the object was moved exactly once.
    let deadline = Instant::now() + DEADLINE;
    while queue_depth(&sqs, &url).await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "the router left messages in the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(keys(&s3, "landing/").await.is_empty());
    let raw = keys(&s3, "raw/").await;
    assert_eq!(raw, vec![outcome.key.clone()]);
    assert!(
        raw[0].starts_with("raw/ehr/patients/ingest_date=") && raw[0].len() <= 1024,
        "{raw:?}"
    );
    for zone in [Zone::Quarantine, Zone::Rejected] {
        assert!(keys(&s3, zone.prefix()).await.is_empty());
    }

    let history: serde_json::Value =
        serde_json::from_slice(&env.history_json(&id).await.unwrap()).unwrap();
    let activity_retries = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["attributes"]["ActivityTaskStartedEventAttributes"]["attempt"].as_u64())
        .map(|attempt| attempt.saturating_sub(1))
        .sum();
    PathRun { activity_retries }
}

/// A file promoted on moto by a worker whose pipeline has the catalog step (crawlers named
/// `lakegate-<dataset>`, no transform) and no SQS queue: the run was started directly.
#[allow(dead_code)] // aws.rs and retract_aws.rs only
pub struct Promoted {
    pub clients: AwsClients,
    pub env: TestEnv,
    /// The IngestFileWorkflow's id.
    pub ingest: String,
    pub outcome: IngestOutcome,
    _pipeline: tempfile::NamedTempFile,
}

#[allow(dead_code)] // aws.rs and retract_aws.rs only
impl Promoted {
    /// The dataset's crawl workflow once `crawls` catalog steps are done and nothing is pending.
    pub async fn crawls_settled(&self, crawls: u64) -> CrawlStatus {
        crawler_settled(&self.env, "lakegate-ehr", crawls, DEADLINE).await
    }

    /// The Glue partitions of the table `raw.ehr_patients`.
    pub async fn patient_partitions(&self) -> Vec<Partition> {
        let out = self
            .clients
            .glue
            .get_partitions()
            .database_name("raw")
            .table_name("ehr_patients")
            .send()
            .await
            .unwrap();
        out.partitions().to_vec()
    }
}

/// Creates the bucket `lake` and the Glue database `raw`, puts two valid patients at `key`,
/// starts a worker on moto and ingests the file; it must be promoted.
#[allow(dead_code)] // aws.rs and retract_aws.rs only
pub async fn promoted_with_catalog(moto: &Moto, key: &str) -> Promoted {
    let clients = moto.clients().await;
    clients
        .s3
        .create_bucket()
        .bucket("lake")
        .send()
        .await
        .unwrap();
    clients
        .glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name("raw")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let etag = put_patients(&clients.s3, key).await;

    let pipeline = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        pipeline.path(),
        "crawler_prefix: lakegate-\ndatabase: raw\nquiet_period_secs: 1\nmax_wait_secs: 5\n\
         poll_initial_secs: 1\npoll_max_secs: 2\ncrawl_deadline_secs: 60\ntransforms: {}\n",
    )
    .unwrap();
    let aws = AwsConfig {
        backend: Backend::Aws,
        aws_endpoint_url: Some(moto.endpoint.clone()),
        aws_emulator: true,
        athena_workgroup: "primary".into(),
        ..AwsConfig::default()
    };
    let env = TestEnv::start_on(
        &repo_root().join("tests/fixtures/contracts"),
        Some(pipeline.path()),
        aws,
    )
    .await
    .unwrap();
    let input = IngestInput {
        bucket: "lake".into(),
        key: key.into(),
        version: etag,
        review_timeout_secs: 3600,
        crawl_later: false,
    };
    let ingest = match client::start_ingest(&env.client, &env.config.task_queue, input)
        .await
        .unwrap()
    {
        client::StartedIngest::Started(id) | client::StartedIngest::Duplicate(id) => id,
    };
    let outcome = client::wait_outcome(&env.client, &ingest).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);
    Promoted {
        clients,
        env,
        ingest,
        outcome,
        _pipeline: pipeline,
    }
}
