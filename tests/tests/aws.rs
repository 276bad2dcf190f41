//! The AWS backend end to end against moto server: an object put into the bucket's landing/
//! reaches the worker's event router through an S3 → SQS notification and is onboarded by a real
//! IngestFileWorkflow on a real Temporal dev server, once, even when the event is delivered twice.

mod upload_path;

use lakegate_aws::testing::Moto;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_flows_through_sqs_into_one_completed_ingest_with_the_object_moved() {
    let moto = Moto::start().await.unwrap();
    upload_path::upload_through_sqs_to_raw(&moto, &moto.endpoint).await;
}
