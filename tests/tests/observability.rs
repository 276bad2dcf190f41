//! The worker's Prometheus endpoint against a real dev server: lakegate's counters next to the
//! SDK's metrics, and nothing of a file's key or content in the labels.

use std::time::{Duration, Instant};

use lakegate::client;
use lakegate::telemetry::{BYTES_VALIDATED_TOTAL, FILES_TOTAL};
use lakegate_models::IngestPhase;
use lakegate_tests::metrics::sample;
use lakegate_tests::runs::{PHASE_WAIT as WAIT, awaiting_review, ingest};
use lakegate_tests::{TestEnv, repo_root};

const GOOD_KEY: &str = "landing/emr/ehr/patients_KEYSENTINEL_good.csv";
const GOOD: &[u8] = b"id,birthdate,gender\np1,1980-01-02,F\np2,1975-03-04,M\n";
const BAD_KEY: &str = "landing/emr/ehr/patients_KEYSENTINEL_bad.csv";
/// Row 2 lacks its id (quarantined); a cell holds a sentinel that must never leave the file.
const BAD: &[u8] = b"id,birthdate,gender\np3,1990-05-06,F\n,1991-07-08,SENTINEL_PHI_4417\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_serves_lakegates_counters_and_the_sdks() {
    let contracts = repo_root().join("tests/fixtures/contracts");
    let env = TestEnv::start_with_metrics(&contracts, None).await.unwrap();
    let good = ingest(&env, GOOD_KEY, GOOD).await;
    let bad = ingest(&env, BAD_KEY, BAD).await;
    let outcome = client::wait_outcome(&env.client, &good).await.unwrap();
    assert_eq!(outcome.phase, IngestPhase::Promoted);
    awaiting_review(&env, &bad).await;

    // Activities record before they report back, so the counters are there by now; the SDK
    // records a completed workflow just after it reports the completion, hence the poll.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = env.scrape_metrics().await.unwrap();
        if text
            .lines()
            .any(|l| l.starts_with("temporal_workflow_completed"))
        {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no temporal_workflow_completed in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let files = |outcome| {
        sample(
            &text,
            FILES_TOTAL,
            &[("dataset", "ehr"), ("outcome", outcome)],
        )
    };
    assert_eq!(files("promoted"), Some(1.0), "{text}");
    assert_eq!(files("quarantined"), Some(1.0), "{text}");
    assert_eq!(files("rejected"), None, "{text}");
    assert_eq!(
        sample(&text, BYTES_VALIDATED_TOTAL, &[("dataset", "ehr")]),
        Some((GOOD.len() + BAD.len()) as f64),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("temporal_activity_execution_latency")),
        "{text}"
    );
    assert!(
        !text.contains("KEYSENTINEL"),
        "an object key leaked: {text}"
    );
    assert!(
        !text.contains("SENTINEL_PHI_4417"),
        "a cell value leaked: {text}"
    );
}
