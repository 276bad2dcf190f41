//! The AWS upload path of `aws.rs` with a fifth of the worker's AWS calls failing: a
//! fault-injecting proxy in front of moto answers 20 % of them (seeded) with a throttle or an
//! internal error, as a busy region does. The path must still end the same way — one promoted
//! object, an empty landing/, a drained queue — and the retries that absorbed the faults must
//! stay bounded against the same path run fault-free through the same proxy.
//!
//! `cargo test -p lakegate-tests --test aws_faults -- --nocapture` prints the figures.

mod upload_path;

use lakegate_aws::testing::{FaultProxy, Moto};

/// Faults per 1,000 calls.
const FAULTS_PER_MILLE: u64 = 200;
const SEED: u64 = 0x1a4e_9a7e;
/// Total calls may be at most this many times the fault-free run's.
const BOUND: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_path_completes_when_a_fifth_of_aws_calls_fail() {
    // The reference: the same path, through the same proxy, with no faults.
    let (reference, clean) = {
        let moto = Moto::start().await.unwrap();
        let proxy = FaultProxy::start(moto.port, 0, SEED).await.unwrap();
        let run =
            upload_path::upload_through_sqs_to_raw(&moto, &proxy.endpoint, upload_path::KEY).await;
        assert_eq!(run.activity_retries, 0, "no faults, no activity retries");
        (proxy.counts(), proxy.totals())
    };
    let moto = Moto::start().await.unwrap();
    let proxy = FaultProxy::start(moto.port, FAULTS_PER_MILLE, SEED)
        .await
        .unwrap();
    let run =
        upload_path::upload_through_sqs_to_raw(&moto, &proxy.endpoint, upload_path::KEY).await;
    let (faulty, hit) = (proxy.counts(), proxy.totals());
    println!("\nservice  calls (fault-free)  calls (20 % faults)  injected faults");
    for (service, c) in &faulty {
        let before = reference.get(service).copied().unwrap_or_default();
        println!(
            "{service:<8} {:>19}  {:>19}  {:>15}",
            before.calls, c.calls, c.faults
        );
    }
    println!(
        "calls: {}, injected faults: {}, extra calls: {} (fault-free run: {} calls); \
         activity retries in the workflow history: {}",
        hit.calls,
        hit.faults,
        hit.calls.saturating_sub(clean.calls),
        clean.calls,
        run.activity_retries
    );
    assert!(hit.faults > 0, "no fault was injected: {faulty:?}");
    assert!(
        hit.calls <= BOUND * clean.calls,
        "{} calls against {} without faults: retries are not bounded",
        hit.calls,
        clean.calls
    );
}
