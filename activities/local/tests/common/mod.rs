//! Shared setup for the local backend's tests: a temporary data folder and the project's
//! virtualenv. The tools are required: a missing DuckDB CLI or dbt fails the test, it does not
//! skip it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lakegate_local::LocalConfig;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A config under a fresh temporary folder, with tools from `LAKEGATE_VENV` or `<repo>/.venv`.
pub fn config() -> (tempfile::TempDir, LocalConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let venv = LocalConfig::venv_from_env(repo_root());
    let mut config = LocalConfig::under(dir.path(), venv);
    config.job_workdir = repo_root();
    let cli = config.duckdb_cli();
    assert!(
        cli.is_file(),
        "the DuckDB CLI is missing at {} (run scripts/bootstrap or set LAKEGATE_VENV)",
        cli.display()
    );
    (dir, config)
}

/// Writes `body` at `key` under the lake folder.
pub fn put(config: &LocalConfig, key: &str, body: &str) {
    let path = config.lake_dir.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}
