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

/// On the AWS backend a file whose contract declares columns is registered in Glue by the catalog
/// step itself: moto has no crawler at all here, so any crawler call would fail the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_file_is_registered_in_glue_without_any_crawler_call() {
    let moto = Moto::start().await.unwrap();
    let promoted = upload_path::promoted_with_catalog(&moto, "landing/emr/ehr/patients.csv").await;
    let crawl_id = promoted
        .outcome
        .crawl_workflow_id
        .clone()
        .expect("handed to the pipeline");

    let step = promoted.crawls_settled(1).await.last.unwrap();
    assert_eq!(step.status, "SUCCEEDED", "{step:?}");
    assert_eq!(step.tables_created, ["ehr_patients"]);
    let ingest_date = lakegate_aws::testing::lake::ingest_date(&promoted.outcome.key);
    assert_eq!(
        step.changes[0].partitions_added,
        std::slice::from_ref(&ingest_date)
    );

    let table = promoted
        .clients
        .glue
        .get_table()
        .database_name("raw")
        .name("ehr_patients")
        .send()
        .await
        .unwrap();
    let columns: Vec<&str> = table
        .table()
        .unwrap()
        .storage_descriptor()
        .unwrap()
        .columns()
        .iter()
        .map(|c| c.name())
        .collect();
    assert_eq!(columns, ["id", "birthdate", "gender"]);
    let partitions = promoted.patient_partitions().await;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].values(), [ingest_date]);

    let history = promoted.env.history_text(&crawl_id).await.unwrap();
    assert!(history.contains("register_catalog"));
    assert!(!history.contains("start_crawl") && !history.contains("crawler_status"));
}
