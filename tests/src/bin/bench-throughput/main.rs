//! `scripts/bench-throughput`: how much slower a file goes through lakegate than the cheapest
//! possible workflow on the same server and worker, and how much memory a worker needs with many
//! files waiting for review. It prints figures next to their targets; it asserts nothing about
//! time (a benchmark, not a timed test), but it fails if a workflow ends in the wrong state.
//!
//! One run starts a throwaway Temporal dev server (in memory, free loopback port) and a worker
//! process: this binary again, with the hidden `worker` subcommand, serving lakegate's workflows
//! exactly as `lakegate worker` does plus a reference worker on a second task queue with a
//! one-activity workflow. The worker is its own process so its peak RSS is the worker's alone.
//!
//! 1. Reference: `--files` runs of the trivial workflow, `--concurrency` starters, each timing
//!    start to result.
//! 2. lakegate: `--files` valid 1 KB CSV files placed in the local landing zone, started through
//!    `start_ingest` (the path the CLI, the event router and the sweep use) and awaited the same
//!    way. Both runs alternate in two halves, so a change in the machine's load hits both.
//! 3. Memory: `--open` files that fail validation, quarantined and left waiting for review; once
//!    all of them are `awaiting_review` the worker's peak RSS is read, then they are terminated.

mod files;
mod procfs;
mod reference;
mod runs;
mod worker;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use lakegate::LakeConfig;
use lakegate::client;
use lakegate::config::AwsConfig;
use lakegate_local::LocalObjectStore;
use lakegate_tests::{lake_config, repo_root, start_dev_server};
use temporalio_client::Client;

use files::{invalid_csv, place, valid_csv};
use procfs::{Pids, load_average, mb, ms, proc_status_kb};
use reference::reference_queue;
use runs::{
    Phase, run_lakegate, run_reference, start_open, terminate_all, wait_all_awaiting_review,
};
use worker::{WorkerProcess, serve};

#[derive(Debug, Parser)]
#[command(about = "Throughput and memory of IngestFileWorkflow against a trivial workflow")]
struct Cli {
    /// Workflows of each kind in the timed runs.
    #[arg(long, default_value_t = 200)]
    files: usize,
    /// Concurrent starters, each starting one workflow and awaiting its result before the next.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Quarantined files kept open (awaiting review) for the memory figure.
    #[arg(long, default_value_t = 1000)]
    open: usize,
    #[command(subcommand)]
    command: Option<Role>,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// The worker process the benchmark starts (not for direct use).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        address: String,
        #[arg(long)]
        task_queue: String,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        contracts: PathBuf,
    },
}

// Targets from issue #11 (one round trip per valid file), all relative to the 1-activity
// reference measured in the same run, since the shared machine's speed varies.
const RATIO_TARGET: f64 = 0.9;
/// The ingest p50 at most this multiple of the reference's p50.
const P50_RATIO_TARGET: f64 = 1.3;
const RSS_TARGET_MB: f64 = 120.0;
/// One workflow's start, result or termination; beyond it the worker is presumed gone.
const WORKFLOW_DEADLINE: Duration = Duration::from_secs(120);
/// All open files must reach `awaiting_review` within this; a worker that cannot is a failure.
pub(crate) const OPEN_DEADLINE: Duration = Duration::from_secs(600);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Role::Worker {
            address,
            task_queue,
            data_dir,
            contracts,
        }) => runtime.block_on(serve(address, task_queue, data_dir, contracts)),
        None => runtime.block_on(bench(cli.files, cli.concurrency.max(1), cli.open)),
    }
}
// ---- the benchmark ----------------------------------------------------------------------------

async fn bench(files: usize, concurrency: usize, open: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start_dev_server(dir.path())?;
    let client =
        client::connect_with_retry(Some(server.address()), None, Duration::from_secs(60)).await?;
    let config = lake_config(
        dir.path(),
        &repo_root().join("tests/fixtures/contracts"),
        None,
        AwsConfig::default(),
    );
    let store = lakegate::worker::local_store(&config);
    let worker = WorkerProcess::start(&config, server.address())?;
    let pids = Pids {
        server: server.pid(),
        worker: worker.pid(),
    };
    let result = measure(&client, &config, &store, &pids, files, concurrency, open).await;
    drop(worker);
    drop(server);
    // The worker's log goes with the temporary directory: show its end if something failed.
    result.map_err(|e| {
        let log = std::fs::read_to_string(config.data_dir.join("worker.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        e.context(format!("worker log, last lines:\n{}", tail.join("\n")))
    })
}

async fn measure(
    client: &Client,
    config: &LakeConfig,
    store: &LocalObjectStore,
    pids: &Pids,
    files: usize,
    concurrency: usize,
    open: usize,
) -> anyhow::Result<()> {
    println!(
        "bench-throughput: {files} workflows of each kind, {concurrency} concurrent starters, \
         {open} kept open; {} build; {} CPUs; load average {}",
        if cfg!(debug_assertions) {
            "DEBUG (figures not representative)"
        } else {
            "optimised"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );

    // Placing files is the upload, not lakegate's work: done before any clock starts.
    let warmup = concurrency;
    let good = place(store, &config.bucket, "good", warmup + files, valid_csv).await?;
    let bad = place(store, &config.bucket, "open", open, invalid_csv).await?;
    let (warm_good, good) = good.split_at(warmup);

    // Connections, sticky queues and code paths warm up on both task queues, untimed.
    let reference_queue = reference_queue(&config.task_queue);
    let lakegate_queue = config.task_queue.clone();
    let ids = |kind: &str, count: usize| -> Vec<String> {
        (0..count).map(|i| format!("bench-{kind}-{i}")).collect()
    };
    run_reference(
        client,
        &reference_queue,
        &ids("warm", warmup),
        1,
        concurrency,
    )
    .await?;
    run_lakegate(client, &lakegate_queue, warm_good, concurrency).await?;

    let (mut one, mut four, mut ingest) = (Phase::default(), Phase::default(), Phase::default());
    let half = files.div_ceil(2).max(1);
    let (one_ids, four_ids) = (ids("one", files), ids("four", files));
    let cpu_before = pids.cpu();
    for ((one_ids, four_ids), inputs) in one_ids
        .chunks(half)
        .zip(four_ids.chunks(half))
        .zip(good.chunks(half))
    {
        one.add(run_reference(client, &reference_queue, one_ids, 1, concurrency).await?);
        four.add(run_reference(client, &reference_queue, four_ids, 4, concurrency).await?);
        ingest.add(run_lakegate(client, &lakegate_queue, inputs, concurrency).await?);
    }
    let cpu = pids.cpu().since(&cpu_before);
    let throughput_peak = proc_status_kb(pids.worker, "VmHWM")?;

    // The memory figure is the peak with the files open, not the throughput run's.
    let reset = std::fs::write(format!("/proc/{}/clear_refs", pids.worker), "5").is_ok();
    let started = Instant::now();
    let open_ids = start_open(client, &lakegate_queue, &bad, concurrency).await?;
    wait_all_awaiting_review(client, &lakegate_queue, open_ids.len()).await?;
    let open_secs = started.elapsed().as_secs_f64();
    let open_peak = proc_status_kb(pids.worker, "VmHWM")?;
    let open_now = proc_status_kb(pids.worker, "VmRSS")?;
    terminate_all(client, &open_ids, concurrency).await?;
    let load_end = load_average();

    let ratio = ingest.rate() / one.rate();
    let p50_ratio = ms(ingest.percentile(0.50)) / ms(one.percentile(0.50)).max(f64::EPSILON);
    println!();
    println!(
        "{:<38} {:>12} {:>9} {:>9}",
        "start to result", "rate (wf/s)", "p50 (ms)", "p95 (ms)"
    );
    for (name, phase) in [
        ("reference: 1 activity", &one),
        ("reference: 4 activities in sequence", &four),
        ("lakegate: IngestFileWorkflow, 1 KB CSV", &ingest),
    ] {
        println!(
            "{name:<38} {:>12.1} {:>9.0} {:>9.0}",
            phase.rate(),
            ms(phase.percentile(0.50)),
            ms(phase.percentile(0.95))
        );
    }
    println!();
    println!("{:<38} {:>12} {:>14}  result", "figure", "value", "target");
    let rows = [
        (
            "lakegate / reference rate".to_owned(),
            format!("{ratio:.2}x"),
            format!(">= {RATIO_TARGET}x"),
            ratio >= RATIO_TARGET,
        ),
        (
            "lakegate p50 / reference p50".to_owned(),
            format!("{p50_ratio:.2}x"),
            format!("<= {P50_RATIO_TARGET}x"),
            p50_ratio <= P50_RATIO_TARGET,
        ),
        (
            format!("worker peak RSS, {open} open"),
            format!("{:.1} MB", mb(open_peak)),
            format!("< {RSS_TARGET_MB} MB"),
            mb(open_peak) < RSS_TARGET_MB,
        ),
    ];
    for (name, value, target, met) in rows {
        let result = if met { "met" } else { "NOT MET" };
        println!("{name:<38} {value:>12} {target:>14}  {result}");
    }
    println!();
    println!(
        "lakegate / 4-activity reference rate: {:.2}x (1.0x would mean lakegate costs no more \
         than its four round trips).",
        ingest.rate() / four.rate()
    );
    println!(
        "worker RSS: {:.1} MB with the {open} open (peak {:.1} MB{}); peak over the timed runs \
         {:.1} MB. The {open} reached awaiting_review in {open_secs:.1} s.",
        mb(open_now),
        mb(open_peak),
        if reset {
            ", reset before they started"
        } else {
            ", since the worker started: clear_refs not permitted"
        },
        mb(throughput_peak)
    );
    println!(
        "CPU seconds during the timed runs ({:.1} s wall): dev server {:.1}, worker {:.1}, \
         starters (this process) {:.1}. Load average at the end: {load_end}.",
        one.elapsed.as_secs_f64() + four.elapsed.as_secs_f64() + ingest.elapsed.as_secs_f64(),
        cpu.server,
        cpu.worker,
        cpu.bench
    );
    Ok(())
}
