//! Where the lake, the contracts and the tools are. Every field has an environment variable so
//! the worker can be configured in a container without flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use lakegate_activities::PipelineSettings;
use lakegate_local::LocalConfig;

use crate::codec::{self, EncryptionCodec, PayloadKeys};

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
    /// Payload encryption keys: a file of `<key id> <base64 of 32 bytes>` lines, the first of
    /// which encrypts (docs/production.md). Unset: the keys in LAKEGATE_CODEC_KEYS, else
    /// <data-dir>/codec.keys if it exists (`lakegate dev` writes one), else no encryption.
    #[arg(long, env = "LAKEGATE_CODEC_KEY_FILE", global = true)]
    pub codec_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// A folder, DuckDB and local processes: no AWS account needed.
    #[default]
    Local,
    /// S3, Glue, Athena, Batch and (with a queue URL) SQS events.
    Aws,
}

/// The AWS backend's settings. Credentials and region come from the standard AWS chain
/// (AWS_PROFILE, AWS_REGION, instance and container roles, SSO).
#[derive(Debug, Clone, Default, Args)]
pub struct AwsConfig {
    /// Which implementation of the ports the worker uses.
    #[arg(long, value_enum, env = "LAKEGATE_BACKEND", default_value_t = Backend::Local, global = true)]
    pub backend: Backend,
    /// Endpoint for every AWS service (moto, LocalStack, VPC endpoints); beats AWS_ENDPOINT_URL.
    #[arg(long, env = "LAKEGATE_AWS_ENDPOINT_URL", global = true)]
    pub aws_endpoint_url: Option<String>,
    /// The endpoint is an emulator (moto, LocalStack): use a fixed region and test credentials
    /// instead of the credentials chain.
    #[arg(long, env = "LAKEGATE_AWS_EMULATOR", global = true)]
    pub aws_emulator: bool,
    /// SQS queue with S3 event notifications (direct or via EventBridge); the worker routes them.
    #[arg(long, env = "LAKEGATE_SQS_QUEUE_URL", global = true)]
    pub sqs_queue_url: Option<String>,
    #[arg(
        long,
        env = "LAKEGATE_ATHENA_WORKGROUP",
        default_value = "primary",
        global = true
    )]
    pub athena_workgroup: String,
    /// s3:// location for Athena results, unless the workgroup enforces one.
    #[arg(long, env = "LAKEGATE_ATHENA_OUTPUT", global = true)]
    pub athena_output: Option<String>,
    #[arg(
        long,
        env = "LAKEGATE_BATCH_JOB_QUEUE",
        default_value = "lakegate-dbt",
        global = true
    )]
    pub batch_job_queue: String,
    #[arg(
        long,
        env = "LAKEGATE_BATCH_JOB_DEFINITION",
        default_value = "lakegate-dbt",
        global = true
    )]
    pub batch_job_definition: String,
    /// Where Batch jobs upload dbt's target/ files in the lake bucket (`<prefix><job name>/`);
    /// the dbt image's entrypoint writes there and the worker reads node results back.
    #[arg(
        long,
        env = "LAKEGATE_BATCH_ARTIFACTS_PREFIX",
        default_value = "jobs/",
        global = true
    )]
    pub batch_artifacts_prefix: String,
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
        let mut settings: PipelineSettings = serde_norway::from_str(&text)
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

    /// The payload codec from the configured keys (see [`Self::codec_key_file`]); `None` when no
    /// key is configured anywhere. A configured key file that cannot be read is an error, never a
    /// silent fall back to clear payloads.
    pub fn codec(&self) -> anyhow::Result<Option<EncryptionCodec>> {
        let keys = if let Some(path) = &self.codec_key_file {
            PayloadKeys::from_file(path)?
        } else if let Ok(text) = std::env::var(codec::KEYS_ENV) {
            PayloadKeys::parse(&text).with_context(|| format!("in {}", codec::KEYS_ENV))?
        } else {
            let dev = self.dev_key_file();
            if !dev.exists() {
                return Ok(None);
            }
            PayloadKeys::from_file(&dev)?
        };
        Ok(Some(EncryptionCodec::new(keys)))
    }

    /// [`Self::codec`] for `lakegate dev`: with no key configured anywhere, a fresh local key is
    /// generated in the data directory first, so a dev setup never sends clear payloads.
    pub fn dev_codec(&self) -> anyhow::Result<EncryptionCodec> {
        if self.codec_key_file.is_none() && std::env::var_os(codec::KEYS_ENV).is_none() {
            std::fs::create_dir_all(&self.data_dir)?;
            let path = self.dev_key_file();
            PayloadKeys::ensure_file(&path, "local")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        self.codec()?
            .context("no payload keys after generating the dev key file")
    }

    /// Where `lakegate dev` keeps its generated payload key.
    pub fn dev_key_file(&self) -> PathBuf {
        self.data_dir.join(codec::DEV_KEY_FILE)
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
