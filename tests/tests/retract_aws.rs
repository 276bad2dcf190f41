//! RetractWorkflow on the AWS backend against moto: the promoted S3 object moves from raw/ to
//! rejected/ (copied, then deleted: one key afterwards), the Glue table and its partition stay,
//! and the catalog step that follows succeeds with no crawler existing.

// Only the promoted-file set-up and `keys`: the upload path itself is for aws.rs and aws_faults.rs.
#[allow(dead_code)]
mod upload_path;

use lakegate_activities::{RetractStart, start_retract};
use lakegate_aws::testing::Moto;
use lakegate_models::{RetractInput, RetractPhase, Zone};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::WorkflowGetResultOptions;
use upload_path::keys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retract_on_s3_moves_the_object_to_rejected_and_keeps_the_glue_table() {
    let moto = Moto::start().await.unwrap();
    let promoted = upload_path::promoted_with_catalog(&moto, "landing/emr/ehr/patients.csv").await;
    let upload_path::Promoted {
        clients,
        env,
        ingest,
        outcome,
        ..
    } = &promoted;
    let first = promoted.crawls_settled(1).await;
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
    assert_eq!(keys(&clients.s3, "raw/").await, Vec::<String>::new());
    assert_eq!(keys(&clients.s3, "rejected/").await, [rejected]);
    assert_eq!(keys(&clients.s3, "landing/").await, Vec::<String>::new());

    // The catalog step that follows succeeds without a crawler; the table and its (now empty)
    // partition stay, which Athena reads as no rows.
    let after = promoted.crawls_settled(first.crawls_done + 1).await;
    assert_eq!(
        after.last.as_ref().unwrap().status,
        "SUCCEEDED",
        "{after:?}"
    );
    assert_eq!(promoted.patient_partitions().await.len(), 1);
}
