//! OnboardDatasetWorkflow: a whole landing prefix, a bounded number of files at a time.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_models::{BackfillInput, Zone};
use lakegate_tests::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_onboards_every_file_in_bounded_batches_across_runs() {
    let env = TestEnv::start().await.unwrap();
    for n in 0..24 {
        let body = format!("id,birthdate,gender\nb{n},1980-01-02,F\n");
        env.land(
            &format!("landing/emr/ehr/patients_{n:02}.csv"),
            body.as_bytes(),
        )
        .await
        .unwrap();
    }
    // One bad file: it waits for review, which must not hold the backfill up.
    env.land(
        "landing/emr/ehr/patients_zz_bad.csv",
        b"id,birthdate,gender\n,1980-01-02,F\n",
    )
    .await
    .unwrap();
    let input = BackfillInput {
        prefix: "landing/emr/ehr/".into(),
        max_in_flight: 5,
        review_timeout_secs: 3600,
        // Two batches per run: 25 files make the workflow continue as new twice.
        batches_per_run: 2,
        cursor: None,
        progress: Default::default(),
    };
    let id = client::start_backfill(&env.client, &env.config.task_queue, input)
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut max_seen_in_flight = 0;
    let progress = loop {
        let progress = client::backfill_progress(&env.client, &id).await.unwrap();
        max_seen_in_flight = max_seen_in_flight.max(progress.files - progress.settled);
        if progress.done {
            break progress;
        }
        assert!(Instant::now() < deadline, "backfill stuck at {progress:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (progress.files, progress.settled, progress.already_known),
        (25, 25, 0)
    );
    assert!(
        max_seen_in_flight <= 5,
        "more than max_in_flight at once: {max_seen_in_flight}"
    );
    let keys = env.all_keys().await.unwrap();
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with(Zone::Raw.prefix()))
            .count(),
        24,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter()
            .filter(|k| k.starts_with(Zone::Quarantine.prefix()))
            .count(),
        1
    );
    assert!(keys.iter().all(|k| !k.starts_with(Zone::Landing.prefix())));

    let description = env
        .client
        .get_workflow_handle::<lakegate_workflows::OnboardDatasetWorkflow>(id.clone())
        .describe(Default::default())
        .await
        .unwrap();
    let first_run_history = description.history_length();
    assert!(
        first_run_history < 200,
        "the last run's history stays small: {first_run_history}"
    );
}
