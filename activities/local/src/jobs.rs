//! The JobRunner port as local processes: what AWS Batch does for dbt in production, a process
//! group on this machine does locally.
//!
//! Every job owns a folder `<jobs_dir>/<job name>/` holding its spec, the wrapper's pid, the exit
//! code the wrapper writes when the command ends, a termination note, the log and artifacts. The
//! folder, not the worker's memory, is the job's state, so a worker that restarts finds its jobs
//! again and a second submit under the same name never starts a second process.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use lakegate_activities::ports::{JobError, JobRunner, JobSpec, JobState, JobStatus};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::process::Command;

use crate::config::LocalConfig;
use crate::duckdb::database_lock;

const SPEC: &str = "spec.json";
const PID: &str = "pid";
const EXIT_CODE: &str = "exit_code";
const TERMINATED: &str = "terminated";
/// The pid of the worker that owns starting the job (until its pid file exists).
const LAUNCHER: &str = "launcher";
/// The job's stdout and stderr, interleaved as the process wrote them.
pub const LOG_FILE: &str = "job.log";

/// Runs the command, then records its exit code with an atomic rename, so a reader sees either no
/// exit code or the whole one. The wrapper outlives a worker restart (its own process group), and
/// writing the code itself is what lets a later worker tell success from failure.
const WRAPPER: &str = r#""$@"; code=$?; printf '%s\n' "$code" > "$LAKEGATE_JOB_DIR/exit_code.tmp" && mv -f "$LAKEGATE_JOB_DIR/exit_code.tmp" "$LAKEGATE_JOB_DIR/exit_code"; exit $code"#;

/// Runs jobs as local process groups with the virtualenv's `bin/` first on PATH.
#[derive(Clone)]
pub struct LocalJobRunner {
    jobs_dir: PathBuf,
    venv: PathBuf,
    workdir: PathBuf,
    grace: Duration,
    database_lock: Option<Arc<tokio::sync::Mutex<()>>>,
    duckdb_path: PathBuf,
}

impl std::fmt::Debug for LocalJobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJobRunner")
            .field("jobs_dir", &self.jobs_dir)
            .finish_non_exhaustive()
    }
}

impl LocalJobRunner {
    /// Jobs hold the lake database's process-wide lock while they run (see
    /// [`crate::duckdb::database_lock`]): the local jobs are dbt-duckdb runs, which open the
    /// database file for writing, and the crawler or query engine opening it meanwhile would make
    /// dbt fail on DuckDB's file lock. A job waiting for the lock is SUBMITTED, as a Batch job
    /// waits RUNNABLE for capacity.
    pub fn new(config: &LocalConfig) -> Self {
        Self {
            jobs_dir: config.jobs_dir.clone(),
            venv: config.venv.clone(),
            workdir: config.job_workdir.clone(),
            grace: config.terminate_grace,
            database_lock: Some(database_lock(&config.duckdb_path)),
            duckdb_path: config.duckdb_path.clone(),
        }
    }

    /// For jobs that never touch the lake database: they run at once, beside crawls and queries.
    pub fn without_database_lock(mut self) -> Self {
        self.database_lock = None;
        self
    }

    /// The folder holding a job's spec, pid, exit code, log and artifacts.
    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.jobs_dir.join(job_id)
    }

    /// The process group id of a job that has started (the wrapper's pid).
    pub fn process_group(&self, job_id: &str) -> Option<i32> {
        read_trimmed(&self.job_dir(job_id).join(PID))?.parse().ok()
    }

    fn existing_dir(&self, job_id: &str) -> Result<PathBuf, JobError> {
        check_name(job_id).map_err(|_| JobError::NotFound(job_id.to_owned()))?;
        let dir = self.job_dir(job_id);
        if dir.join(SPEC).is_file() {
            Ok(dir)
        } else {
            Err(JobError::NotFound(job_id.to_owned()))
        }
    }

    /// Starts the job's process in the background once the database lock is free.
    /// The caller has claimed the launch (the `launcher` file names this process).
    fn launch(&self, job_id: &str, spec: JobSpec) {
        let (this, job_id) = (self.clone(), job_id.to_owned());
        tokio::spawn(async move {
            let guard = match &this.database_lock {
                Some(lock) => Some(lock.clone().lock_owned().await),
                None => None,
            };
            let dir = this.job_dir(&job_id);
            let started = if dir.join(TERMINATED).exists() {
                None
            } else {
                match this.spawn(&dir, &spec).await {
                    Ok(child) => Some(child),
                    Err(e) => {
                        // Recorded as the wrapper would: the job failed without running.
                        tracing::error!(job = %job_id, error = %e, "cannot start the job");
                        let _ = std::fs::write(
                            dir.join(LOG_FILE),
                            format!("lakegate: cannot start the job: {e}\n"),
                        );
                        let _ = std::fs::write(dir.join(EXIT_CODE), "127\n");
                        None
                    }
                }
            };
            if let Some(mut child) = started {
                // A terminate that came while the process was being spawned found no pid to
                // signal; it left its note, so finish its work here.
                if dir.join(TERMINATED).exists()
                    && let Some(pid) = child
                        .id()
                        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
                {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                // Reaps the wrapper (a zombie would look alive) and keeps the database lock
                // until the job ends.
                let _ = child.wait().await;
            }
            drop(guard);
        });
    }

    /// `dbt retry` resumes from the run_results.json of the run it retries, which is in that
    /// job's folder: a spec that resumes from a job gets `DBT_STATE` pointed there (unless it
    /// sets `DBT_STATE` itself), so the workflow never handles local paths.
    fn retry_state(&self, spec: &JobSpec) -> Option<(&'static str, PathBuf)> {
        let previous = spec.resume_from.as_ref()?;
        if spec.environment.contains_key("DBT_STATE") || check_name(previous).is_err() {
            return None;
        }
        Some(("DBT_STATE", self.job_dir(previous).join("target")))
    }

    async fn spawn(&self, dir: &Path, spec: &JobSpec) -> std::io::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(LOG_FILE))?;
        let bin = self.venv.join("bin");
        let mut path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .collect::<Vec<_>>();
        if let Some(extra) = spec.environment.get("PATH") {
            path = std::env::split_paths(extra).collect();
        }
        path.insert(0, bin);
        let path = std::env::join_paths(path).map_err(std::io::Error::other)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WRAPPER)
            .arg("lakegate-job")
            .args(&spec.command)
            .current_dir(&self.workdir)
            .env("VIRTUAL_ENV", &self.venv)
            .env("LAKEGATE_JOB_DIR", dir)
            .env("LAKEGATE_JOBS_DIR", &self.jobs_dir)
            // dbt writes run_results.json and its logs into its target/log paths; per job, so
            // concurrent jobs do not overwrite each other's and `artifact` finds them.
            .env("DBT_TARGET_PATH", dir.join("target"))
            .env("DBT_LOG_PATH", dir.join("logs"))
            // The lake database, for dbt-duckdb's profile: a Batch job gets its Athena settings
            // the same way, from the environment of its job definition.
            .env("LAKEGATE_DUCKDB_PATH", &self.duckdb_path)
            .envs(&spec.environment)
            .envs(self.retry_state(spec))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so terminate reaches everything the command started and a
            // Ctrl-C in the worker's terminal does not.
            .process_group(0);
        let child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("the job exited at once"))?;
        write_atomic(&dir.join(PID), format!("{pid}\n").as_bytes())?;
        Ok(child)
    }
}

#[async_trait]
impl JobRunner for LocalJobRunner {
    async fn submit(&self, spec: &JobSpec) -> Result<String, JobError> {
        check_name(&spec.name)?;
        if spec.command.is_empty() {
            return Err(JobError::Backend {
                message: "a job needs a command".into(),
                retryable: false,
            });
        }
        let job_id = spec.name.clone();
        let dir = self.job_dir(&job_id);
        if dir.join(SPEC).is_file() {
            return Ok(job_id);
        }
        // The spec is written into a private folder that is then renamed into place: renaming
        // onto an existing job folder fails, so of two racing submits (two workers, or a retry)
        // exactly one starts a process.
        let io = |e: std::io::Error| JobError::Backend {
            message: format!("job folder: {e}"),
            retryable: true,
        };
        std::fs::create_dir_all(&self.jobs_dir).map_err(io)?;
        static STAGING: AtomicU64 = AtomicU64::new(0);
        let staging = self.jobs_dir.join(format!(
            ".staging-{job_id}-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(io)?;
        let body = serde_json::to_vec_pretty(spec).map_err(|e| io(e.into()))?;
        std::fs::write(staging.join(SPEC), body).map_err(io)?;
        // The claim to start it goes in with the spec, so no other worker (or a second runner
        // in this one) starts it while this one waits for the database.
        std::fs::write(staging.join(LAUNCHER), format!("{}\n", std::process::id())).map_err(io)?;
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
            if dir.join(SPEC).is_file() {
                return Ok(job_id);
            }
            return Err(io(std::io::Error::other("cannot create the job folder")));
        }
        self.launch(&job_id, spec.clone());
        Ok(job_id)
    }

    async fn describe(&self, job_id: &str) -> Result<JobStatus, JobError> {
        let dir = self.existing_dir(job_id)?;
        let status = |state, exit_code, reason: Option<String>| JobStatus {
            job_id: job_id.to_owned(),
            state,
            exit_code,
            reason,
        };
        let ended = |dir: &Path| -> Option<JobStatus> {
            let code: i32 = read_trimmed(&dir.join(EXIT_CODE))?.parse().ok()?;
            Some(if code == 0 {
                status(JobState::Succeeded, Some(0), None)
            } else {
                status(
                    JobState::Failed,
                    Some(code),
                    Some(format!("command exited with code {code}")),
                )
            })
        };
        if let Some(done) = ended(&dir) {
            return Ok(done);
        }
        let terminated = read_trimmed(&dir.join(TERMINATED));
        let Some(pgid) = self.process_group(job_id) else {
            if let Some(reason) = terminated {
                return Ok(status(
                    JobState::Failed,
                    None,
                    Some(format!("terminated: {reason}")),
                ));
            }
            let launcher = read_trimmed(&dir.join(LAUNCHER)).and_then(|p| p.parse::<u32>().ok());
            if launcher.is_some_and(|pid| pid == std::process::id() || process_alive(pid)) {
                // Waiting for the database in the worker that accepted it.
                return Ok(status(JobState::Submitted, None, None));
            }
            // Accepted by a worker that stopped before starting it: this one takes it over.
            let io = |e: std::io::Error| JobError::Backend {
                message: format!("job {job_id}: {e}"),
                retryable: true,
            };
            write_atomic(
                &dir.join(LAUNCHER),
                format!("{}\n", std::process::id()).as_bytes(),
            )
            .map_err(io)?;
            let spec: JobSpec = std::fs::read(dir.join(SPEC))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| JobError::Backend {
                    message: format!("job {job_id}: unreadable spec"),
                    retryable: false,
                })?;
            self.launch(job_id, spec);
            return Ok(status(JobState::Submitted, None, None));
        };
        if group_alive(pgid) {
            return Ok(status(JobState::Running, None, None));
        }
        // The wrapper may have written its exit code between the first look and now.
        if let Some(done) = ended(&dir) {
            return Ok(done);
        }
        Ok(status(
            JobState::Failed,
            None,
            Some(match terminated {
                Some(reason) => format!("terminated: {reason}"),
                None => "the job's processes ended without recording an exit code (killed)".into(),
            }),
        ))
    }

    async fn terminate(&self, job_id: &str, reason: &str) -> Result<(), JobError> {
        let dir = self.existing_dir(job_id)?;
        if dir.join(EXIT_CODE).exists() {
            return Ok(());
        }
        let io = |e: std::io::Error| JobError::Backend {
            message: format!("job {job_id}: {e}"),
            retryable: true,
        };
        write_atomic(&dir.join(TERMINATED), format!("{reason}\n").as_bytes()).map_err(io)?;
        let Some(pgid) = self.process_group(job_id) else {
            // Not started yet: the launcher sees the note and never starts it.
            return Ok(());
        };
        let Some(group) = rustix::process::Pid::from_raw(pgid) else {
            return Ok(());
        };
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::TERM);
        if wait_gone(pgid, self.grace).await {
            return Ok(());
        }
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        if wait_gone(pgid, Duration::from_secs(5)).await {
            Ok(())
        } else {
            Err(JobError::Backend {
                message: format!("job {job_id}: processes survive SIGKILL"),
                retryable: true,
            })
        }
    }

    async fn log_tail(&self, job_id: &str, lines: usize) -> Result<Vec<String>, JobError> {
        let dir = self.existing_dir(job_id)?;
        let Ok(mut file) = tokio::fs::File::open(dir.join(LOG_FILE)).await else {
            return Ok(Vec::new());
        };
        let io = |e: std::io::Error| JobError::Backend {
            message: format!("job {job_id} log: {e}"),
            retryable: true,
        };
        let len = file.metadata().await.map_err(io)?.len();
        // Enough bytes for `lines` ordinary lines without reading a long log whole.
        let window = (lines as u64).saturating_mul(1024).max(64 * 1024);
        let start = len.saturating_sub(window);
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io)?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).await.map_err(io)?;
        let text = String::from_utf8_lossy(&buf);
        let mut all: Vec<&str> = text.lines().collect();
        if start > 0 && !all.is_empty() {
            all.remove(0); // cut mid-line
        }
        Ok(all[all.len().saturating_sub(lines)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect())
    }

    async fn artifact(&self, job_id: &str, name: &str) -> Result<Option<Bytes>, JobError> {
        let dir = self.existing_dir(job_id)?;
        let rel = Path::new(name);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(JobError::Backend {
                message: format!("artifact name must be a relative path inside the job: {name}"),
                retryable: false,
            });
        }
        match tokio::fs::read(dir.join(rel)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JobError::Backend {
                message: format!("job {job_id} artifact: {e}"),
                retryable: true,
            }),
        }
    }
}

/// Batch's job-name rule, which also keeps names safe as folder names.
fn check_name(name: &str) -> Result<(), JobError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(JobError::Backend {
            message: "job names are 1-128 letters, digits, '-' or '_'".into(),
            retryable: false,
        })
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(tmp, path)
}

async fn wait_gone(pgid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn process_alive(pid: u32) -> bool {
    rustix::process::Pid::from_raw(pid as i32)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

/// Whether any live (non-zombie) process is in process group `pgid`.
///
/// On Linux this reads /proc: kill(-pgid, 0) also succeeds for zombies, and children orphaned
/// by a killed job may be reparented to a PID 1 that never reaps them.
pub fn group_alive(pgid: i32) -> bool {
    if let Ok(entries) = std::fs::read_dir("/proc") {
        return entries.filter_map(Result::ok).any(|entry| {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                return false;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && !matches!(state, Some("Z") | Some("X"))
        });
    }
    rustix::process::Pid::from_raw(pgid)
        .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
}
