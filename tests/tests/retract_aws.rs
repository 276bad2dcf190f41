//! RetractWorkflow on the AWS backend against moto: the promoted S3 object moves from raw/ to
//! rejected/ (copied, then deleted: one key afterwards), the Glue table and its partition stay,
//! and the catalog step that follows succeeds with no crawler existing.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use lakegate::client;
use lakegate::config::{AwsConfig, Backend};
use lakegate_activities::{RetractStart, start_retract};
use lakegate_aws::testing::Moto;
use lakegate_models::{IngestInput, IngestPhase, RetractInput, RetractPhase, Zone};
use lakegate_tests::{TestEnv, repo_root};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::WorkflowGetResultOptions;

async fn keys(clients: &lakegate_aws::AwsClients, prefix: &str) -> Vec<String> {
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket("lake")
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retract_on_s3_moves_the_object_to_rejected_and_keeps_the_glue_table() {
    let moto = Moto::start().await.unwrap();
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
    let key = "landing/emr/ehr/patients.csv";
    let put = clients
        .s3
        .put_object()
        .bucket("lake")
        .key(key)
        .body(ByteStream::from_static(
            b"id,birthdate,gender\np1,1980-01-02,F\np2,1975-03-04,M\n",
        ))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
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
    let settled = |crawls: u64| {
        let temporal = env.client.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if let Ok(status) = client::crawl_status(&temporal, "lakegate-ehr").await
                    && status.crawls_done >= crawls
                    && status.pending_prefixes == 0
                    && status.phase == "waiting"
                {
                    return status;
                }
                assert!(Instant::now() < deadline, "the catalog step never ended");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let first = settled(1).await;
    assert_eq!(first.last.as_ref().unwrap().status, "SUCCEEDED");

    let retract = RetractInput {
        ingest_workflow_id: ingest.clone(),
        reviewer: "carol".into(),
        reason: "wrong site".into(),
    };
    let RetractStart::Started { workflow_id } =
        start_retract(&env.client, &env.config.task_queue, &retract)
            .await
            .unwrap()
    else {
        panic!("a first retract starts");
    };
    let status = env
        .client
        .get_workflow_handle::<RetractWorkflow>(workflow_id)
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    assert_eq!(status.phase, RetractPhase::Retracted);
    let rejected = Zone::rehome(&outcome.key, Zone::Rejected);
    assert_eq!(status.key.as_deref(), Some(rejected.as_str()));
    assert_eq!(keys(&clients, "raw/").await, Vec::<String>::new());
    assert_eq!(keys(&clients, "rejected/").await, [rejected]);
    assert_eq!(keys(&clients, "landing/").await, Vec::<String>::new());

    // The catalog step that follows succeeds without a crawler; the table and its (now empty)
    // partition stay, which Athena reads as no rows.
    let after = settled(first.crawls_done + 1).await;
    assert_eq!(
        after.last.as_ref().unwrap().status,
        "SUCCEEDED",
        "{after:?}"
    );
    let partitions = clients
        .glue
        .get_partitions()
        .database_name("raw")
        .table_name("ehr_patients")
        .send()
        .await
        .unwrap();
    assert_eq!(partitions.partitions().len(), 1);
}
