//! A `lakegate worker` process SIGKILLed in the middle of a local transform, twice: once while a
//! dbt stage's job runs, once while a check's DuckDB query runs. A new worker picks the run up:
//! the job's process group outlived the worker and is waited for, never started a second time
//! (the model's own start/end lines, one job folder per stage, one dbt invocation in its log);
//! the query, whose engine is gone, has its leftover DuckDB processes killed and is run again;
//! and the transform completes with every stage and check passed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use lakegate::client;
use lakegate_local::jobs::group_alive;
use lakegate_local::{LocalConfig, LocalJobRunner};
use lakegate_models::{Check, TransformInput};
use lakegate_tests::{chaos, repo_root, start_dev_server, venv};
use lakegate_workflows::TransformWorkflow;
use temporalio_client::{WorkflowGetResultOptions, WorkflowStartOptions};

/// Half a minute of work for DuckDB on two cores, so a kill lands while it runs. The condition
/// never holds (a remainder is below its divisor), so the check passes, but DuckDB does not know
/// that and hashes every row.
const SLOW_CHECK: &str = "select i from range(1000000000) t(i) where hash(i) % 1000003 = 1000003";

/// The `lakegate worker` process, by PID: SIGKILLed and started again.
struct WorkerProcess {
    command: Box<dyn Fn() -> Command>,
    logs: PathBuf,
    child: Option<Child>,
    incarnation: usize,
}

impl WorkerProcess {
    fn start(&mut self) -> anyhow::Result<()> {
        let log =
            std::fs::File::create(self.logs.join(format!("worker-{}.log", self.incarnation)))?;
        let child = (self.command)()
            .arg("worker")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting lakegate worker")?;
        self.child = Some(child);
        self.incarnation += 1;
        Ok(())
    }

    fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("no worker to kill")?;
        anyhow::ensure!(
            child.try_wait()?.is_none(),
            "the worker had exited before it was to be killed"
        );
        child.kill()?;
        child.wait()?;
        Ok(())
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

async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return Ok(found);
        }
        anyhow::ensure!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The job folder of `stage` whose process group is alive.
fn running_job(local: &LocalConfig, stage: &str) -> Option<(String, i32)> {
    let runner = LocalJobRunner::new(local);
    std::fs::read_dir(&local.jobs_dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(&format!("-{stage}-1")))
        .find_map(|name| {
            let pgid = runner.process_group(&name)?;
            group_alive(pgid).then_some((name, pgid))
        })
}

/// A check query's folder with a live DuckDB process group and no outcome yet.
fn running_query(queries_dir: &Path) -> Option<(PathBuf, i32)> {
    std::fs::read_dir(queries_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|dir| {
            !dir.join("outcome.json").exists()
                && std::fs::read_to_string(dir.join("query.json"))
                    .is_ok_and(|request| request.contains("hash(i)"))
        })
        .find_map(|dir| {
            let pgid: i32 = std::fs::read_to_string(dir.join("pid"))
                .ok()?
                .trim()
                .parse()
                .ok()?;
            group_alive(pgid).then_some((dir, pgid))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_completes_after_its_worker_is_killed_and_no_stage_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let data = dir.path().join("data");
    let server = start_dev_server(dir.path()).unwrap();
    let client = client::connect_with_retry(Some(server.address()), None, Duration::from_secs(60))
        .await
        .unwrap();
    let task_queue = format!("transform-kill-{}", std::process::id());
    let bin = chaos::lakegate_bin().unwrap();
    let (address, data_for_env, queue) = (
        server.address().to_owned(),
        data.clone(),
        task_queue.clone(),
    );
    let mut worker = WorkerProcess {
        command: Box::new(move || {
            let mut command = Command::new(&bin);
            for (name, _) in std::env::vars() {
                if name.starts_with("TEMPORAL_") || name.starts_with("LAKEGATE_") {
                    command.env_remove(name);
                }
            }
            command
                .env("TEMPORAL_ADDRESS", &address)
                .env("TEMPORAL_NAMESPACE", "default")
                .env("LAKEGATE_DATA_DIR", &data_for_env)
                .env("LAKEGATE_TASK_QUEUE", &queue)
                .env("LAKEGATE_VENV", venv())
                .env(
                    "LAKEGATE_CONTRACTS",
                    repo_root().join("tests/fixtures/contracts"),
                )
                .env("LAKEGATE_PIPELINE", data_for_env.join("no-pipeline.yaml"))
                .env("LAKEGATE_BACKEND", "local")
                .current_dir(repo_root())
                .stdin(Stdio::null());
            command
        }),
        logs: logs.clone(),
        child: None,
        incarnation: 0,
    };
    worker.start().unwrap();
    let local = LocalConfig::under(&data, venv());

    let project = repo_root()
        .join("tests/fixtures/dbt_slow")
        .display()
        .to_string();
    let marker = dir.path().join("slow-model-runs.log");
    let input = TransformInput {
        dataset: "slow".into(),
        project_dir: project.clone(),
        profiles_dir: project,
        target: "duckdb".into(),
        stages: vec!["slow".into(), "after".into()],
        environment: [
            (
                "LAKEGATE_SLOW_MARKER".to_owned(),
                marker.display().to_string(),
            ),
            ("LAKEGATE_SLOW_SECS".to_owned(), "20".to_owned()),
        ]
        .into(),
        max_attempts: 3,
        poll_initial_secs: 1,
        poll_max_secs: 2,
        checks: vec![
            Check::Sql {
                name: "slow_and_clean".into(),
                sql: SLOW_CHECK.into(),
            },
            Check::RowCount {
                table: "slow.after_model".into(),
            },
        ],
        job_deadline_secs: 3600,
        query_deadline_secs: 3600,
    };
    let id = "transform-kill-test".to_owned();
    let handle = client
        .start_workflow(
            TransformWorkflow::run,
            input.into(),
            WorkflowStartOptions::new(task_queue.clone(), id.clone()).build(),
        )
        .await
        .unwrap();

    // Kill 1: the first stage's job is running.
    let (job, pgid) = wait_for("the slow stage's job", Duration::from_secs(120), || {
        running_job(&local, "slow")
    })
    .await
    .unwrap();
    worker.kill().unwrap();
    assert!(group_alive(pgid), "the job's processes outlive the worker");
    worker.start().unwrap();

    // Kill 2: the first check's query is running.
    let (query_dir, query_pgid) =
        wait_for("the slow check's query", Duration::from_secs(300), || {
            running_query(&local.queries_dir)
        })
        .await
        .unwrap();
    worker.kill().unwrap();
    worker.start().unwrap();

    let result = tokio::time::timeout(
        Duration::from_secs(480),
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the transform finished")
    .unwrap();
    assert!(result.succeeded, "{result:#?}");
    assert_eq!(result.stages.len(), 2);
    for stage in &result.stages {
        assert!(stage.succeeded, "{stage:?}");
        assert_eq!(stage.jobs.len(), 1, "one job per stage: {stage:?}");
    }
    assert_eq!(result.stages[0].jobs[0], job);
    assert!(
        result.checks.iter().all(|c| c.passed),
        "{:?}",
        result.checks
    );

    // The slow model ran once: one start and one end, in that order.
    let runs = std::fs::read_to_string(&marker).unwrap();
    let kinds: Vec<&str> = runs
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(kinds, ["start", "end"], "{runs}");
    // One job folder per stage, each with one dbt invocation in its log.
    let jobs: Vec<String> = std::fs::read_dir(&local.jobs_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&id))
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    for job in &jobs {
        let log = std::fs::read_to_string(local.jobs_dir.join(job).join("job.log")).unwrap();
        assert_eq!(
            log.matches("Running with dbt=").count(),
            1,
            "{job} ran dbt more than once:\n{log}"
        );
    }
    // The query the killed worker left: its DuckDB processes were killed and it ran again.
    assert!(!group_alive(query_pgid), "the orphaned query still runs");
    let outcome: serde_json::Value =
        serde_json::from_slice(&std::fs::read(query_dir.join("outcome.json")).unwrap()).unwrap();
    assert_eq!(outcome["state"], "SUCCEEDED");
    let took_over = (1..worker.incarnation).any(|n| {
        std::fs::read_to_string(logs.join(format!("worker-{n}.log")))
            .is_ok_and(|log| log.contains("running again a query whose worker is gone"))
    });
    assert!(took_over, "no worker took the orphaned query over");
}
