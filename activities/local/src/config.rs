//! Where the local backend keeps things. Every path is explicit so tests can point a backend at a
//! temporary folder and the worker can take them from its config file or environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the project's virtualenv (tools come from its `bin/`).
pub const VENV_ENV: &str = "LAKEGATE_VENV";

/// Paths and limits for the local crawler, catalog, query engine and job runner.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The virtualenv whose `bin/` holds `duckdb`, `dbt` and `python`.
    pub venv: PathBuf,
    /// The lake: a folder laid out like the bucket (`raw/<dataset>/<table>/...` under it).
    pub lake_dir: PathBuf,
    /// The DuckDB database file the catalog's views live in and queries run on.
    pub duckdb_path: PathBuf,
    /// One folder per job (`<jobs_dir>/<job name>/`): spec, pid, exit code, log, artifacts.
    pub jobs_dir: PathBuf,
    /// Where crawlers remember their last crawl across a worker restart.
    pub crawlers_dir: PathBuf,
    /// One folder per query (`<queries_dir>/<query id>/`): its SQL, owner and outcome, so a
    /// worker restart neither loses a running check's query nor its result.
    pub queries_dir: PathBuf,
    /// Working directory of jobs (the repository root, so `examples/ehr/dbt` resolves).
    pub job_workdir: PathBuf,
    /// How long a DuckDB call waits for another process (dbt, say) to release the database file.
    pub lock_wait: Duration,
    /// Rows per page of query results.
    pub page_size: usize,
    /// How long `terminate` waits after SIGTERM before it sends SIGKILL to the job's group.
    pub terminate_grace: Duration,
}

impl LocalConfig {
    /// The conventional layout under one data folder: `lake/` is the bucket, `lake.duckdb` the
    /// catalog and query database, `jobs/`, `crawlers/` and `queries/` the runners' state. The
    /// lake folder is a sibling of the state folders so listing the bucket never shows job logs.
    pub fn under(data_dir: impl AsRef<Path>, venv: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.as_ref();
        Self {
            venv: venv.into(),
            lake_dir: data_dir.join("lake"),
            duckdb_path: data_dir.join("lake.duckdb"),
            jobs_dir: data_dir.join("jobs"),
            crawlers_dir: data_dir.join("crawlers"),
            queries_dir: data_dir.join("queries"),
            job_workdir: std::env::current_dir().unwrap_or_else(|_| data_dir.to_owned()),
            lock_wait: Duration::from_secs(120),
            page_size: 1000,
            terminate_grace: Duration::from_secs(10),
        }
    }

    /// `LAKEGATE_VENV` if set, else `<repo_root>/.venv`.
    pub fn venv_from_env(repo_root: impl AsRef<Path>) -> PathBuf {
        std::env::var_os(VENV_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root.as_ref().join(".venv"))
    }

    pub fn venv_bin(&self) -> PathBuf {
        self.venv.join("bin")
    }

    pub fn duckdb_cli(&self) -> PathBuf {
        self.venv_bin().join("duckdb")
    }
}
