//! The AWS backend end to end against moto server: an object put into the bucket's landing/
//! reaches the worker's event router through an S3 → SQS notification and is onboarded by a real
//! IngestFileWorkflow on a real Temporal dev server, once, even when the event is delivered twice.

mod upload_path;

use lakegate_aws::testing::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_flows_through_sqs_into_one_completed_ingest_with_the_object_moved() {
    let moto = Moto::start().await.unwrap();
    upload_path::upload_through_sqs_to_raw(&moto, &moto.endpoint, upload_path::KEY).await;
}

/// Keys S3 allows and a folder does not: flat 1,024 bytes, `..` segments; and unicode in its
/// decomposed form with spaces, which S3 events carry URL-encoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_flow_through_sqs_to_raw_too() {
    let prefix = "landing/emr/ehr/patients";
    let flat_1024 = format!("{prefix}{}.csv", "x".repeat(1024 - prefix.len() - 4));
    assert_eq!(flat_1024.len(), 1024);
    for key in [
        flat_1024.as_str(),
        "landing/emr/../emr/./ehr/patients.csv",
        "landing/emr/ehr/patients cafe\u{301} + 100% #1.csv",
    ] {
        let moto = Moto::start().await.unwrap();
        upload_path::upload_through_sqs_to_raw(&moto, &moto.endpoint, key).await;
    }
}
