//! OnboardDatasetWorkflow: a whole landing prefix, a bounded number of files at a time, then
//! one crawl of everything it promoted.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_models::{BackfillInput, Zone};
use lakegate_tests::TestEnv;
use lakegate_tests::runs::crawler_settled;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_onboards_every_file_a_bounded_number_at_a_time_then_crawls_once() {
    let env = TestEnv::start_crawling(
        "crawler_prefix: backfill-\nquiet_period_secs: 1\nmax_wait_secs: 30\n",
    )
    .await
    .unwrap();
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
        review_timeout_secs: 3600,
        // Four rounds per run: 25 files five at a time make the workflow continue as new.
        rounds_per_run: 4,
        ..BackfillInput::new("landing/emr/ehr/", 5)
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
        (
            progress.total,
            progress.files,
            progress.settled,
            progress.already_known
        ),
        (Some(25), 25, 25, 0)
    );
    assert_eq!(progress.crawl_workflow_ids, ["crawl-backfill-ehr"]);
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

    // The 24 promoted files were held back from the crawl workflow and handed over together:
    // exactly one crawl, which sees all of them.
    let crawl = crawler_settled(&env, "backfill-ehr", 1, Duration::from_secs(300)).await;
    assert_eq!(crawl.crawls_done, 1, "{crawl:?}");
    assert_eq!(crawl.last.as_ref().unwrap().status, "SUCCEEDED");
    let first_run = env.first_run_id(&id).await.unwrap();
    env.record_run_history("continued_as_new", &id, Some(&first_run))
        .await
        .unwrap();
}
