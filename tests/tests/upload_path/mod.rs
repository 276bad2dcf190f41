//! The AWS backend's whole upload path against moto, shared by `aws.rs` (straight to moto) and
//! `aws_faults.rs` (through a fault-injecting proxy): an object put into the bucket's landing/
//! reaches the worker's event router through an S3 → SQS notification delivered twice, and one
//! IngestFileWorkflow on a real Temporal dev server moves it to raw/.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use lakegate::client;
use lakegate::config::{AwsConfig, Backend};
use lakegate_aws::testing::{Moto, queue, queue_depth, redeliver_first, send_object_events_to};
use lakegate_models::{IngestPhase, Zone, ingest_workflow_id};
use lakegate_tests::{TestEnv, repo_root};

const DEADLINE: Duration = Duration::from_secs(90);

async fn keys(s3: &aws_sdk_s3::Client, prefix: &str) -> Vec<String> {
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
