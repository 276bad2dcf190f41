//! Where the lake, the contracts and the tools are. Every field has an environment variable so
//! the worker can be configured in a container without flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use lakegate_activities::PipelineSettings;
use lakegate_local::LocalConfig;

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
    /// Crawl and transform settings (YAML). A missing file turns the pipeline off: files stop
    /// at raw/.
    #[arg(
        long,
        env = "LAKEGATE_PIPELINE",
        default_value = "examples/ehr/pipeline.yaml",
        global = true
    )]
    pub pipeline: PathBuf,
}

impl LakeConfig {
    /// The pipeline settings, with the transforms' relative paths resolved against the file's
    /// folder; `None` when the file does not exist.
    pub fn pipeline_settings(&self) -> anyhow::Result<Option<PipelineSettings>> {
        let text = match std::fs::read_to_string(&self.pipeline) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.pipeline.display()));
            }
        };
        let mut settings: PipelineSettings = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing {}", self.pipeline.display()))?;
        let base = self
            .pipeline
            .parent()
            .map(absolute)
            .transpose()?
            .unwrap_or_default();
        for transform in settings.transforms.values_mut() {
            for dir in [&mut transform.project_dir, &mut transform.profiles_dir] {
                if Path::new(dir.as_str()).is_relative() {
                    *dir = base.join(dir.as_str()).display().to_string();
                }
            }
        }
        Ok(Some(settings))
    }

    /// The local backend's paths under the data directory.
    pub fn local(&self) -> anyhow::Result<LocalConfig> {
        let data_dir = absolute(&self.data_dir)?;
        let mut local = LocalConfig::under(&data_dir, absolute(&self.venv)?);
        local.lake_dir = data_dir.join(&self.bucket);
        Ok(local)
    }

    /// The local bucket's folder.
    pub fn lake_root(&self) -> PathBuf {
        self.data_dir.join(&self.bucket)
    }

    pub fn venv_bin(&self, tool: &str) -> PathBuf {
        self.venv.join("bin").join(tool)
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}
