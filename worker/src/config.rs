//! Where the lake, the contracts and the tools are. Every field has an environment variable so
//! the worker can be configured in a container without flags.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct LakeConfig {
    /// Local state: the lake folder, the dev server's database, logs.
    #[arg(
        long,
        env = "LAKEGATE_DATA_DIR",
        default_value = ".lakegate",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Bucket name. On the local backend the bucket is the folder <data-dir>/<bucket>.
    #[arg(long, env = "LAKEGATE_BUCKET", default_value = "lake", global = true)]
    pub bucket: String,
    /// Directory of dataset contracts (*.yaml).
    #[arg(
        long,
        env = "LAKEGATE_CONTRACTS",
        default_value = "examples/ehr/contracts",
        global = true
    )]
    pub contracts: PathBuf,
    /// Temporal task queue the worker serves and clients start workflows on.
    #[arg(long, env = "LAKEGATE_TASK_QUEUE", default_value = lakegate_models::names::DEFAULT_TASK_QUEUE, global = true)]
    pub task_queue: String,
    /// Python virtualenv holding the Temporal CLI, DuckDB CLI and dbt.
    #[arg(long, env = "LAKEGATE_VENV", default_value = ".venv", global = true)]
    pub venv: PathBuf,
}

impl LakeConfig {
    /// The local bucket's folder.
    pub fn lake_root(&self) -> PathBuf {
        self.data_dir.join(&self.bucket)
    }

    pub fn venv_bin(&self, tool: &str) -> PathBuf {
        self.venv.join("bin").join(tool)
    }
}
