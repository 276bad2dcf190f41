//! The reduced chaos run (the full one is `scripts/chaos`), and proof that the PHI leak scan it
//! ends with finds a planted sentinel, so its clean result means something.

use std::time::{Duration, Instant};

use lakegate_models::IngestInput;
use lakegate_tests::TestEnv;
use lakegate_tests::chaos::{self, ChaosOptions};
use lakegate_workflows::IngestFileWorkflow;
use temporalio_client::WorkflowStartOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_lands_in_one_zone_despite_worker_kills_and_a_server_restart() {
    let mut options = ChaosOptions::reduced();
    // A failed run prints its seed; LAKEGATE_CHAOS_SEED replays its kill moments and files.
    if let Ok(seed) = std::env::var("LAKEGATE_CHAOS_SEED") {
        options.seed = seed.parse().expect("LAKEGATE_CHAOS_SEED is a number");
    }
    let report = chaos::run(&options).await.unwrap();
    println!("{report}");
    report.ensure_ok().unwrap();
    assert_eq!(report.kills, options.kills);
    assert!(report.kills_mid_run > 0, "no kill hit a run in progress");
    assert_eq!(report.server_restarts, 1);
    assert_eq!(report.files_in_expected_zone, options.files);
    assert_eq!(report.workflows_completed, options.files);
    assert!(
        report.fates.len() == 4,
        "every path was taken: {:?}",
        report.fates
    );
    assert!(report.leak_scan.histories >= options.files);
    assert!(report.leak_scan.log_files > options.kills);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leak_scan_finds_a_sentinel_in_a_history_and_in_a_log() {
    let env = TestEnv::start().await.unwrap();
    let sentinel = "ZZLEAK-scan-sanity".to_owned();
    // The sentinel goes into a workflow's input, where it is stored base64-encoded: the scan
    // only finds it by decoding payloads. No worker polls this queue, so the history stays put.
    let input = IngestInput {
        bucket: "lake".into(),
        key: format!("landing/emr/ehr/{sentinel}-1.csv"),
        version: "v1".into(),
        review_timeout_secs: 60,
        crawl_later: false,
    };
    env.client
        .start_workflow(
            IngestFileWorkflow::run,
            input.into(),
            WorkflowStartOptions::new("nobody-polls-this", "phi-scan-sanity").build(),
        )
        .await
        .unwrap();
    // The scan lists workflows through visibility, which trails the start by a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while env
        .client
        .count_workflows("WorkflowId='phi-scan-sanity'", Default::default())
        .await
        .unwrap()
        .count()
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the workflow never became visible"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(log.path(), format!("INFO name={sentinel}-2 row=3\n")).unwrap();

    let (endpoint, _stop) = env.start_codec_server().await.unwrap();
    let scan = lakegate_tests::phi::scan(
        &env.client,
        env.server_address(),
        Some(&endpoint),
        std::slice::from_ref(&sentinel),
        &[log.path().to_owned()],
    )
    .await
    .unwrap();
    let found: Vec<(&str, &str)> = scan
        .leaks
        .iter()
        .map(|l| (l.place.as_str(), l.sentinel.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].0.starts_with("workflow phi-scan-sanity run "),
        "{found:?}"
    );
    assert_eq!(found[0].1, "ZZLEAK-scan-sanity-1");
    // Encrypted as stored: only the dump through the codec server shows it.
    assert!(found[0].0.ends_with("(decrypted)"), "{found:?}");
    assert!(scan.encrypted > 0, "{scan}");
    assert_eq!(
        found[1],
        (
            &*format!("log {}", log.path().display()),
            "ZZLEAK-scan-sanity-2"
        )
    );
    let error = scan.ensure_clean().unwrap_err().to_string();
    assert!(error.contains("phi-scan-sanity"), "{error}");

    // The same histories hold no other sentinel: a clean scan, over a non-empty set.
    let clean = env
        .scan_for_leaks(&["ZZLEAK-never-planted".to_owned()])
        .await
        .unwrap();
    clean.ensure_clean().unwrap();
    assert_eq!((clean.histories, clean.log_files), (1, 1));
    assert!(clean.payloads > 0);
}
