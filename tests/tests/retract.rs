//! RetractWorkflow end to end, on a real Temporal dev server, a local lake, DuckDB and dbt-duckdb:
//! a promoted file taken back leaves its table and the transform's output, lands in rejected/
//! and nowhere else, and a run that promoted nothing (or whose file is gone) is refused.
//!
//! Record the histories replayed by `replay.rs` with:
//! `LAKEGATE_RECORD_HISTORIES=1 cargo test -p lakegate-tests --test retract`

use std::time::Duration;

use lakegate::client;
use lakegate_activities::testing::pipeline::dbt_pipeline_yaml;
use lakegate_activities::{RetractStart, start_retract};
use lakegate_models::{
    CrawlStatus, Decision, IngestPhase, RetractInput, RetractPhase, RetractStatus, Zone, names,
};
use lakegate_tests::runs::{self, awaiting_review, ingest, review};
use lakegate_tests::{TestEnv, repo_root};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::{
    WorkflowDescribeOptions, WorkflowGetResultOptions, WorkflowQueryOptions, WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributeKey;

const WAIT: Duration = Duration::from_secs(300);
const CRAWLER: &str = "retract-ehr";
/// Planted in a cell of the retracted file: no history or log may carry it.
const SENTINEL: &str = "ZZLEAK-retract";
const KEEP: &[u8] = b"id,birthdate,gender\nk1,1980-01-02,F\nk2,1975-03-04,M\n";
/// The reason the steward typed; kept in the retract's payloads, never in a search attribute.
const REASON: &str = "values shifted by one column upstream";

fn retracted_body() -> String {
    format!("id,birthdate,gender\nr1,1990-05-06,{SENTINEL}-1\nr2,1991-07-08,F\nr3,1992-09-10,M\n")
}

async fn promoted(env: &TestEnv, key: &str, body: &[u8]) -> (String, String) {
    let id = ingest(env, key, body).await;
    let outcome = client::wait_outcome(&env.client, &id).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted, "{id}");
    (id, outcome.key)
}

fn retract_input(ingest: &str) -> RetractInput {
    RetractInput {
        ingest_workflow_id: ingest.to_owned(),
        reviewer: "carol".into(),
        reason: REASON.into(),
    }
}

/// Starts the retract of `ingest`'s file under its one id and returns that id.
async fn retract(env: &TestEnv, ingest: &str) -> String {
    match start_retract(&env.client, &env.config.task_queue, &retract_input(ingest))
        .await
        .unwrap()
    {
        RetractStart::Started { workflow_id } => workflow_id,
        RetractStart::Exists { workflow_id } => panic!("{workflow_id} should be new"),
    }
}

async fn retract_status(env: &TestEnv, id: &str) -> RetractStatus {
    env.client
        .get_workflow_handle::<RetractWorkflow>(id.to_owned())
        .query(
            RetractWorkflow::get_status,
            (),
            WorkflowQueryOptions::default(),
        )
        .await
        .unwrap()
}

/// The retract's result, or (for a refused one) its failure's text and its status.
async fn outcome(env: &TestEnv, id: &str) -> Result<RetractStatus, (String, RetractStatus)> {
    let handle = env
        .client
        .get_workflow_handle::<RetractWorkflow>(id.to_owned());
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(status) => Ok(status),
        Err(e) => Err((format!("{e:#}"), retract_status(env, id).await)),
    }
}

/// Waits until the crawler has done `crawls` steps, has nothing pending and is not busy.
async fn settled(env: &TestEnv, crawls: u64) -> CrawlStatus {
    runs::crawler_settled(env, CRAWLER, crawls, WAIT).await
}

/// The test contracts with a pipeline whose transform is one dbt stage counting the patients.
async fn env_with_pipeline() -> (TestEnv, tempfile::NamedTempFile) {
    let dbt = repo_root().join("tests/fixtures/dbt_retract");
    let pipeline = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        pipeline.path(),
        dbt_pipeline_yaml("retract-", "ehr", &dbt, "counts", 2),
    )
    .unwrap();
    let env = TestEnv::start_with(
        &repo_root().join("tests/fixtures/contracts"),
        Some(pipeline.path()),
    )
    .await
    .unwrap();
    (env, pipeline)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retracted_file_leaves_its_table_and_the_transform_reruns_without_it() {
    let (env, _pipeline) = env_with_pipeline().await;
    let (keep, kept_key) = promoted(&env, "landing/emr/ehr/patients_keep.csv", KEEP).await;
    let (gone, gone_key) = promoted(
        &env,
        "landing/emr/ehr/patients_shifted.csv",
        retracted_body().as_bytes(),
    )
    .await;
    // Both files share the day's partition: the retract must take one file out of it, not it.
    assert_eq!(
        kept_key.rsplit_once('/').unwrap().0,
        gone_key.rsplit_once('/').unwrap().0
    );
    let before = settled(&env, 1).await;
    assert_eq!(before.last.as_ref().unwrap().status, "SUCCEEDED");
    assert_eq!(env.scalar("select count(*) from raw.ehr_patients").await, 5);
    assert_eq!(
        env.scalar("select patients from retract.patient_count")
            .await,
        5
    );

    let id = retract(&env, &gone).await;
    assert_eq!(id, names::retract_workflow_id(&gone));
    let status = outcome(&env, &id).await.unwrap();
    assert_eq!(status.phase, RetractPhase::Retracted);
    assert_eq!(
        (status.reviewer.as_str(), status.reason.as_str()),
        ("carol", REASON)
    );
    assert_eq!(status.promoted_key.as_deref(), Some(gone_key.as_str()));
    assert_eq!(status.zone, Some(Zone::Rejected));
    let rejected_key = Zone::rehome(&gone_key, Zone::Rejected);
    assert_eq!(status.key.as_deref(), Some(rejected_key.as_str()));
    assert_eq!(
        status.crawl_workflow_id.as_deref(),
        Some(names::crawl_workflow_id(CRAWLER).as_str())
    );
    // One zone: the file is in rejected/ and nowhere else; the other file is untouched.
    let keys = env.all_keys().await.unwrap();
    assert_eq!(keys, [kept_key.clone(), rejected_key.clone()], "{keys:?}");

    // The crawl workflow refreshed the table and reran the transform without the file's rows.
    let after = settled(&env, before.crawls_done + 1).await;
    let step = after.last.as_ref().unwrap();
    assert_eq!(step.status, "SUCCEEDED", "{step:?}");
    assert!(
        step.prefixes
            .iter()
            .any(|p| gone_key.starts_with(p.as_str())),
        "{step:?}"
    );
    assert_eq!(step.transform_succeeded, Some(true), "{step:?}");
    assert_ne!(
        step.transform_workflow_id,
        before.last.as_ref().unwrap().transform_workflow_id
    );
    assert_eq!(env.scalar("select count(*) from raw.ehr_patients").await, 2);
    assert_eq!(
        env.scalar("select patients from retract.patient_count")
            .await,
        2
    );

    // Who and why are in the status; the search attributes carry dataset, table and phase only.
    let described = env
        .client
        .get_workflow_handle::<RetractWorkflow>(id.clone())
        .describe(WorkflowDescribeOptions::default())
        .await
        .unwrap();
    let attributes = described.search_attributes();
    let keyword = |name| attributes.get(&SearchAttributeKey::<String>::keyword(name));
    assert_eq!(
        keyword(names::search_attributes::PHASE).as_deref(),
        Some("retracted")
    );
    assert_eq!(
        keyword(names::search_attributes::DATASET).as_deref(),
        Some("ehr")
    );
    assert_eq!(
        keyword(names::search_attributes::TABLE).as_deref(),
        Some("patients")
    );
    assert!(!format!("{:?}", described.raw().workflow_execution_info).contains(REASON));

    // A second retract of the run meets the first: nothing starts, nothing moves.
    let again = start_retract(&env.client, &env.config.task_queue, &retract_input(&gone))
        .await
        .unwrap();
    assert_eq!(
        again,
        RetractStart::Exists {
            workflow_id: id.clone()
        }
    );
    // Started under another id (any client of the namespace can), it finds the file gone from
    // raw/ and is refused without moving anything.
    let other = format!("retract-again-{gone}");
    env.client
        .start_workflow(
            RetractWorkflow::run,
            serde_json::to_value(retract_input(&gone)).unwrap(),
            WorkflowStartOptions::new(env.config.task_queue.clone(), other.clone()).build(),
        )
        .await
        .unwrap();
    let (error, refused) = outcome(&env, &other).await.unwrap_err();
    assert_eq!(refused.phase, RetractPhase::Refused, "{error}");
    let reason = refused.refused.unwrap();
    assert!(reason.contains("no longer in raw/"), "{reason}");
    assert!(reason.contains(&id), "{reason}");
    assert_eq!(env.all_keys().await.unwrap(), keys);

    // The last file of the table retracted too: the table stays, empty, and still answers.
    let last = retract(&env, &keep).await;
    assert_eq!(
        outcome(&env, &last).await.unwrap().phase,
        RetractPhase::Retracted
    );
    let emptied = settled(&env, after.crawls_done + 1).await;
    assert_eq!(emptied.last.as_ref().unwrap().status, "SUCCEEDED");
    assert_eq!(
        emptied.last.as_ref().unwrap().transform_succeeded,
        Some(true)
    );
    assert_eq!(env.scalar("select count(*) from raw.ehr_patients").await, 0);
    assert_eq!(
        env.scalar("select patients from retract.patient_count")
            .await,
        0
    );
    assert!(
        env.all_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.starts_with(Zone::Rejected.prefix()))
    );

    let scan = env.scan_for_leaks(&[SENTINEL.to_owned()]).await.unwrap();
    scan.ensure_clean().unwrap();
    env.record_history("retracted", &id).await.unwrap();
    env.record_history("refused_already_retracted", &other)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_promoted_nothing_are_refused_and_nothing_moves() {
    let env = TestEnv::start().await.unwrap();
    // Quarantined: the run is waiting for review, its file is in quarantine/.
    let noid = b"id,birthdate,gender\n,1990-05-06,F\n";
    let quarantined = ingest(&env, "landing/emr/ehr/patients_noid.csv", noid).await;
    awaiting_review(&env, &quarantined).await;
    let keys = env.all_keys().await.unwrap();
    let id = retract(&env, &quarantined).await;
    let (error, status) = outcome(&env, &id).await.unwrap_err();
    assert_eq!(status.phase, RetractPhase::Refused);
    let reason = status.refused.unwrap();
    assert!(reason.contains("awaiting_review"), "{reason}");
    assert!(reason.contains("lakegate review"), "{reason}");
    assert!(error.contains("retract refused"), "{error}");
    assert_eq!(env.all_keys().await.unwrap(), keys, "nothing moved");
    env.record_history("refused_not_promoted", &id)
        .await
        .unwrap();

    // Rejected by its reviewer: completed, but its file is in rejected/ already.
    let reject = review(Decision::Reject, "dave", "no ids");
    client::send_review(&env.client, &quarantined, reject)
        .await
        .unwrap();
    assert_eq!(
        client::wait_outcome(&env.client, &quarantined)
            .await
            .unwrap()
            .phase,
        IngestPhase::Rejected
    );
    // The refused retract failed, so the same id may run again; it is refused again.
    let again = retract(&env, &quarantined).await;
    let (_, status) = outcome(&env, &again).await.unwrap_err();
    let reason = status.refused.unwrap();
    assert!(reason.contains("ended rejected"), "{reason}");

    // No such run, and a run of another type.
    let (_, status) = outcome(&env, &retract(&env, "ingest-0000").await)
        .await
        .unwrap_err();
    assert!(
        status
            .refused
            .unwrap()
            .contains("there is no workflow ingest-0000")
    );
    let (_, status) = outcome(&env, &retract(&env, &id).await).await.unwrap_err();
    assert!(
        status
            .refused
            .unwrap()
            .contains("not an IngestFileWorkflow")
    );

    // Input that does not decode fails the run at once, naming the field, never its value.
    let bad_input = "retract-bad-input";
    env.client
        .start_workflow(
            RetractWorkflow::run,
            serde_json::json!({"ingest_workflow_id": "ZZVALUE", "reviewer": 7, "reason": "x"}),
            WorkflowStartOptions::new(env.config.task_queue.clone(), bad_input.to_owned()).build(),
        )
        .await
        .unwrap();
    let error = env
        .client
        .get_workflow_handle::<RetractWorkflow>(bad_input.to_owned())
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap_err();
    let error = format!("{error:#}");
    assert!(
        error.contains("reviewer: expected a non-empty string"),
        "{error}"
    );
    assert!(!error.contains("ZZVALUE"), "{error}");
    env.record_history("bad_input", bad_input).await.unwrap();
}

/// A worker killed between the two halves of a local move leaves the file under both names (one
/// inode). The retract finds it where it is and finishes the move: one zone again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retract_finishes_a_move_a_dead_worker_left_half_done() {
    let env = TestEnv::start().await.unwrap();
    let (ingest, raw_key) = promoted(&env, "landing/emr/ehr/patients_half.csv", KEEP).await;
    let rejected_key = Zone::rehome(&raw_key, Zone::Rejected);
    let root = env.config.lake_root();
    std::fs::create_dir_all(root.join(&rejected_key).parent().unwrap()).unwrap();
    std::fs::hard_link(root.join(&raw_key), root.join(&rejected_key)).unwrap();

    let id = retract(&env, &ingest).await;
    let status = outcome(&env, &id).await.unwrap();
    assert_eq!(status.key.as_deref(), Some(rejected_key.as_str()));
    // No pipeline: nothing to refresh.
    assert_eq!(status.crawl_workflow_id, None);
    assert_eq!(env.all_keys().await.unwrap(), [rejected_key]);
    assert_eq!(std::fs::read(root.join(status.key.unwrap())).unwrap(), KEEP);
}
