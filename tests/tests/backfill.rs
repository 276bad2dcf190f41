//! OnboardDatasetWorkflow: a whole landing prefix, a bounded number of files at a time, then
//! one crawl of everything it promoted.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate_models::{BackfillInput, IngestInput, Zone};
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
    assert_eq!(in_zone(&keys, Zone::Raw), 24, "{keys:?}");
    assert_eq!(in_zone(&keys, Zone::Quarantine), 1);
    assert_eq!(in_zone(&keys, Zone::Landing), 0);

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

/// How many of `keys` are in `zone`.
fn in_zone(keys: &[String], zone: Zone) -> usize {
    keys.iter().filter(|k| k.starts_with(zone.prefix())).count()
}

/// `lakegate backfill` with the test's server, lake, key and task queue.
fn backfill_cli(env: &TestEnv, prefix: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(lakegate_tests::chaos::lakegate_bin().unwrap());
    for (name, _) in std::env::vars() {
        if name.starts_with("TEMPORAL_") || name.starts_with("LAKEGATE_") {
            command.env_remove(name);
        }
    }
    command
        .env("TEMPORAL_ADDRESS", env.server_address())
        .env("LAKEGATE_DATA_DIR", &env.config.data_dir)
        .env("LAKEGATE_TASK_QUEUE", &env.config.task_queue)
        .env("LAKEGATE_CONTRACTS", &env.config.contracts)
        .env("LAKEGATE_PIPELINE", &env.config.pipeline)
        .args(["backfill", prefix, "--max-in-flight", "3"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// An ingest that is terminated mid-backfill is counted as failed, not as onboarded: the
/// progress says so, `lakegate backfill` names it and exits 4, and the same backfill again
/// onboards the file it left in landing/ and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_ingest_is_counted_failed_and_the_backfill_exits_non_zero() {
    use lakegate_activities::ports::ObjectStore;
    use temporalio_client::{WorkflowStartOptions, WorkflowTerminateOptions};

    let env = TestEnv::start().await.unwrap();
    let prefix = "landing/emr/ehr/";
    for n in 0..4 {
        let body = format!("id,birthdate,gender\nf{n},1980-01-02,F\n");
        env.land(&format!("{prefix}patients_{n}.csv"), body.as_bytes())
            .await
            .unwrap();
    }
    // One file's ingest already runs where no worker polls (an event got there first, and its
    // worker is gone): the backfill waits for it until it is terminated.
    let stuck_key = format!("{prefix}patients_2.csv");
    let version = env.store.version_of(&stuck_key).await.unwrap();
    let stuck = IngestInput {
        bucket: env.config.bucket.clone(),
        key: stuck_key.clone(),
        version,
        review_timeout_secs: 3600,
        crawl_later: false,
    };
    let stuck_id = lakegate_models::ingest_workflow_id(&stuck.bucket, &stuck.key, &stuck.version);
    env.client
        .start_workflow(
            lakegate_workflows::IngestFileWorkflow::run,
            stuck.into(),
            WorkflowStartOptions::new("nobody-polls-this", stuck_id.clone()).build(),
        )
        .await
        .unwrap();

    let cli = backfill_cli(&env, prefix)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = format!("backfill-{}", lakegate_models::short_hash(prefix));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(p) = client::backfill_progress(&env.client, &id).await
            && p.files == 4
            && p.settled == 3
        {
            assert_eq!((p.already_known, p.failed, p.done), (1, 0, false), "{p:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the three other files did not settle"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.client
        .get_workflow_handle::<lakegate_workflows::IngestFileWorkflow>(stuck_id.clone())
        .terminate(WorkflowTerminateOptions::builder().reason("test").build())
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(120), cli.wait_with_output())
        .await
        .expect("the backfill CLI ended")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stdout.contains("1 FAILED"), "{stdout}");
    let progress = client::backfill_progress(&env.client, &id).await.unwrap();
    assert_eq!(
        (
            progress.files,
            progress.settled,
            progress.failed,
            progress.done
        ),
        (4, 4, 1, true)
    );
    let keys = env.all_keys().await.unwrap();
    assert_eq!(in_zone(&keys, Zone::Raw), 3, "{keys:?}");
    assert!(keys.contains(&stuck_key), "{keys:?}");

    // Again: the failed run is started afresh, here with a worker, and the file is onboarded.
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        backfill_cli(&env, prefix).output(),
    )
    .await
    .expect("the second backfill ended")
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let keys = env.all_keys().await.unwrap();
    assert_eq!(in_zone(&keys, Zone::Raw), 4, "{keys:?}");
}
