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

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use lakegate::LakeConfig;
use lakegate::client;
use lakegate::config::AwsConfig;
use lakegate_activities::ports::StartOutcome;
use lakegate_activities::start::start_ingest;
use lakegate_local::LocalObjectStore;
use lakegate_models::names::search_attributes as sa;
use lakegate_models::{IngestInput, IngestPhase};
use lakegate_tests::{lake_config, land, repo_root, start_dev_server};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowGetResultOptions, WorkflowStartOptions,
    WorkflowTerminateOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::{Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult};

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
const OPEN_DEADLINE: Duration = Duration::from_secs(600);

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

// ---- the reference workflow -------------------------------------------------------------------

const REFERENCE_WORKFLOW: &str = "BenchReferenceWorkflow";
const REFERENCE_ACTIVITY: &str = "bench_reference_echo";

/// The least a workflow can do with activities: one round trip per step, in sequence, with the
/// activity options lakegate's short activities use. One step is the reference; four are
/// as many round trips as a promoted file makes (resolve, validate, move, notify), which tells
/// round trips apart from the work lakegate does in them.
#[workflow]
#[derive(Default)]
struct ReferenceWorkflow;

#[workflow_methods]
impl ReferenceWorkflow {
    #[run(name = REFERENCE_WORKFLOW)]
    async fn run(
        ctx: &mut WorkflowContext<Self>,
        steps: Vec<String>,
    ) -> WorkflowResult<Vec<String>> {
        let mut echoed = Vec::with_capacity(steps.len());
        for step in steps {
            echoed.push(
                ctx.execute_activity(
                    ReferenceActivities::echo,
                    step,
                    lakegate_workflows::options::short(),
                )
                .await?,
            );
        }
        Ok(echoed)
    }
}

struct ReferenceActivities;

#[activities]
impl ReferenceActivities {
    #[activity(name = REFERENCE_ACTIVITY)]
    async fn echo(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
        Ok(input)
    }
}

fn reference_queue(task_queue: &str) -> String {
    format!("{task_queue}-reference")
}

// ---- the worker process -----------------------------------------------------------------------

/// lakegate's worker as `lakegate worker` runs it (multi-threaded runtime, `run_worker` on the main
/// task, default worker options) and the reference worker beside it, until stdin closes: the
/// benchmark closes it to stop us, and a benchmark that dies closes it too.
async fn serve(
    address: String,
    task_queue: String,
    data_dir: PathBuf,
    contracts: PathBuf,
) -> anyhow::Result<()> {
    let mut config = lake_config(&data_dir, &contracts, None, AwsConfig::default());
    config.task_queue = task_queue;
    let client = client::connect_with_retry(Some(&address), None, Duration::from_secs(60)).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // A plain thread: tokio's stdin needs a feature nothing else uses.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };

    let runtime = Runtime::from_current_tokio(Default::default())?;
    let mut reference = Worker::new(
        &runtime,
        client.clone(),
        WorkerOptions::new(reference_queue(&config.task_queue))
            .register_workflow::<ReferenceWorkflow>()?
            .register_activities(ReferenceActivities)
            .build(),
    )?;
    let stop_reference = reference.shutdown_handle();
    let reference_stopped = stopped(stop_rx.clone());
    // Either worker failing ends the process: the benchmark then sees it gone, not a hang.
    tokio::try_join!(
        async {
            lakegate::worker::run_worker(client, &config, stopped(stop_rx))
                .await
                .context("lakegate worker")
        },
        async {
            let (result, ()) = futures::join!(reference.run(), async {
                reference_stopped.await;
                stop_reference();
            });
            result.context("reference worker")
        },
    )?;
    Ok(())
}

/// The worker process, stopped (stdin closed, then killed after a grace period) when dropped.
struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    fn start(config: &LakeConfig, address: &str) -> anyhow::Result<Self> {
        let log = std::fs::File::create(config.data_dir.join("worker.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .arg("worker")
            .args(["--address", address, "--task-queue", &config.task_queue])
            .arg("--data-dir")
            .arg(&config.data_dir)
            .arg("--contracts")
            .arg(&config.contracts)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting the worker process")?;
        Ok(Self { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        lakegate::dev_server::wait_or_kill(&mut self.child, Duration::from_secs(30));
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

/// Latencies and wall time of one kind of workflow, over the halves it ran in.
#[derive(Default)]
struct Phase {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Phase {
    fn add(&mut self, (latencies, elapsed): (Vec<Duration>, Duration)) {
        self.latencies.extend(latencies);
        self.elapsed += elapsed;
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile.
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
        sorted.get(rank - 1).copied().unwrap_or_default()
    }
}

/// Runs `job` for every item with `concurrency` starters; returns each item's latency and the
/// wall time of the whole run.
async fn timed<T, F, Fut>(
    items: &[T],
    concurrency: usize,
    job: F,
) -> anyhow::Result<(Vec<Duration>, Duration)>
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let items: Arc<Vec<T>> = Arc::new(items.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut starters = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(items.len()) {
        let (items, next, job) = (items.clone(), next.clone(), job.clone());
        starters.spawn(async move {
            let mut latencies = Vec::new();
            while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t0 = Instant::now();
                tokio::time::timeout(WORKFLOW_DEADLINE, job(item.clone()))
                    .await
                    .map_err(|_| anyhow::anyhow!("no result within {WORKFLOW_DEADLINE:?}"))??;
                latencies.push(t0.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::with_capacity(items.len());
    while let Some(done) = starters.join_next().await {
        latencies.extend(done??);
    }
    Ok((latencies, started.elapsed()))
}

async fn run_reference(
    client: &Client,
    task_queue: &str,
    ids: &[String],
    activities: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let (client, task_queue) = (client.clone(), task_queue.to_owned());
    timed(ids, concurrency, move |id: String| {
        let (client, task_queue) = (client.clone(), task_queue.clone());
        let steps: Vec<String> = (0..activities).map(|i| format!("{id}/{i}")).collect();
        async move {
            let handle = client
                .start_workflow(
                    ReferenceWorkflow::run,
                    steps.clone(),
                    WorkflowStartOptions::new(task_queue, id.clone()).build(),
                )
                .await
                .with_context(|| format!("starting {id}"))?;
            let echoed = handle
                .get_result(WorkflowGetResultOptions::default())
                .await
                .with_context(|| format!("waiting for {id}"))?;
            ensure!(echoed == steps, "{id} returned {echoed:?}");
            Ok(())
        }
    })
    .await
}

async fn run_lakegate(
    client: &Client,
    task_queue: &str,
    inputs: &[IngestInput],
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let (client, task_queue) = (client.clone(), task_queue.to_owned());
    timed(inputs, concurrency, move |input: IngestInput| {
        let (client, task_queue) = (client.clone(), task_queue.clone());
        async move {
            let id = started_id(start_ingest(&client, &task_queue, input).await?)?;
            let outcome = client::wait_outcome(&client, &id).await?;
            ensure!(
                outcome.phase == IngestPhase::Promoted,
                "{id} ended {:?}, not promoted",
                outcome.phase
            );
            Ok(())
        }
    })
    .await
}

fn started_id(outcome: StartOutcome) -> anyhow::Result<String> {
    match outcome {
        StartOutcome::Started { workflow_id } => Ok(workflow_id),
        StartOutcome::Duplicate { workflow_id } => {
            bail!("{workflow_id} already existed: every benchmark file must be new")
        }
    }
}

async fn start_open(
    client: &Client,
    task_queue: &str,
    inputs: &[IngestInput],
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(inputs.len())));
    let (client, task_queue, sink) = (client.clone(), task_queue.to_owned(), ids.clone());
    timed(inputs, concurrency, move |mut input: IngestInput| {
        let (client, task_queue, sink) = (client.clone(), task_queue.clone(), sink.clone());
        // Far longer than the benchmark: the files stay open until terminated.
        input.review_timeout_secs = 7 * 24 * 3600;
        async move {
            let id = started_id(start_ingest(&client, &task_queue, input).await?)?;
            sink.lock().expect("not poisoned").push(id);
            Ok(())
        }
    })
    .await?;
    let ids = std::mem::take(&mut *ids.lock().expect("not poisoned"));
    Ok(ids)
}

/// Counts through visibility (one call, not a query per workflow, which would load the worker
/// being measured) until every open file waits for review.
async fn wait_all_awaiting_review(
    client: &Client,
    task_queue: &str,
    expected: usize,
) -> anyhow::Result<()> {
    let query = format!(
        "TaskQueue = '{task_queue}' AND {} = '{}'",
        sa::PHASE,
        IngestPhase::AwaitingReview.as_str()
    );
    let deadline = Instant::now() + OPEN_DEADLINE;
    loop {
        let count = client
            .count_workflows(query.clone(), WorkflowCountOptions::default())
            .await?
            .count();
        if count >= expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("only {count} of {expected} files reached awaiting_review in {OPEN_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn terminate_all(client: &Client, ids: &[String], concurrency: usize) -> anyhow::Result<()> {
    let client = client.clone();
    timed(ids, concurrency, move |id: String| {
        let client = client.clone();
        async move {
            client
                .get_workflow_handle::<lakegate_workflows::IngestFileWorkflow>(id.clone())
                .terminate(
                    WorkflowTerminateOptions::builder()
                        .reason("bench-throughput cleanup")
                        .build(),
                )
                .await
                .with_context(|| format!("terminating {id}"))
        }
    })
    .await?;
    Ok(())
}

// ---- files ------------------------------------------------------------------------------------

const FILE_BYTES: usize = 1024;

/// A patients file of about 1 KB that passes the fixture contract; synthetic ids only.
fn valid_csv(n: usize) -> Vec<u8> {
    csv_of(|row| format!("p{n}-{row},1980-01-02,F\n"))
}

/// The same, with one row lacking its required id: quarantined as `required(id)`.
fn invalid_csv(n: usize) -> Vec<u8> {
    csv_of(|row| {
        if row == 3 {
            ",1980-01-02,F\n".to_owned()
        } else {
            format!("q{n}-{row},1980-01-02,F\n")
        }
    })
}

fn csv_of(row: impl Fn(usize) -> String) -> Vec<u8> {
    let mut body = b"id,birthdate,gender\n".to_vec();
    let mut i = 0;
    while body.len() < FILE_BYTES {
        body.extend_from_slice(row(i).as_bytes());
        i += 1;
    }
    body
}

async fn place(
    store: &LocalObjectStore,
    bucket: &str,
    kind: &str,
    count: usize,
    body: fn(usize) -> Vec<u8>,
) -> anyhow::Result<Vec<IngestInput>> {
    let mut inputs = Vec::with_capacity(count);
    for n in 0..count {
        let key = format!("landing/bench/ehr/patients_{kind}_{n:05}.csv");
        inputs.push(land(store, bucket, &key, &body(n)).await?);
    }
    Ok(inputs)
}

// ---- measurements -----------------------------------------------------------------------------

struct Pids {
    server: u32,
    worker: u32,
}

struct Cpu {
    server: f64,
    worker: f64,
    bench: f64,
}

impl Cpu {
    fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu {
            server: self.server - earlier.server,
            worker: self.worker - earlier.worker,
            bench: self.bench - earlier.bench,
        }
    }
}

impl Pids {
    fn cpu(&self) -> Cpu {
        Cpu {
            server: cpu_secs(self.server),
            worker: cpu_secs(self.worker),
            bench: cpu_secs(std::process::id()),
        }
    }
}

/// User plus system CPU time of a process (all threads), from /proc/<pid>/stat.
fn cpu_secs(pid: u32) -> f64 {
    // Linux reports these in USER_HZ, which is 100 on every architecture it ships for.
    const USER_HZ: f64 = 100.0;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which may itself hold spaces: state is the first.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(user), Some(system)) => (user + system) / USER_HZ,
        _ => f64::NAN,
    }
}

/// A `kB` field of /proc/<pid>/status (VmHWM: peak resident set; VmRSS: current).
fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in {path}"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
