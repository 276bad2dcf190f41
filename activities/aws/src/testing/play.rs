//! The parts moto does not play, played by a test: moto's Batch runs no container, its Athena runs
//! no SQL and its crawler reads no S3. Each helper here does, against moto, exactly what the real
//! service (or the dbt image's container) would have left behind, so a test can say what it placed
//! itself and assert only what lakegate did with it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JqState,
    ResourceRequirement, ResourceType,
};

use super::{Moto, venv};

/// A Batch job queue `queue` on an unmanaged compute environment and a container job definition
/// `definition`, as the deployment creates them (moto insists on the service role existing).
pub async fn batch_queue(moto: &Moto, queue: &str, definition: &str) -> Result<()> {
    let batch = moto.clients().await.batch;
    let role = moto.create_role(&format!("{queue}-batch-service")).await?;
    let ce = batch
        .create_compute_environment()
        .compute_environment_name(format!("{queue}-ce"))
        .r#type(CeType::Unmanaged)
        .state(CeState::Enabled)
        .service_role(role)
        .send()
        .await?;
    batch
        .create_job_queue()
        .job_queue_name(queue)
        .state(JqState::Enabled)
        .priority(1)
        .compute_environment_order(
            ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment(ce.compute_environment_arn().context("no CE ARN")?)
                .build(),
        )
        .send()
        .await?;
    let requirement = |kind, value: &str| {
        ResourceRequirement::builder()
            .r#type(kind)
            .value(value)
            .build()
    };
    batch
        .register_job_definition()
        .job_definition_name(definition)
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("lakegate/dbt:latest")
                .resource_requirements(requirement(ResourceType::Vcpu, "1"))
                .resource_requirements(requirement(ResourceType::Memory, "512"))
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// A job as Batch would start its container: the command and environment of its container
/// overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    pub name: String,
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
}

impl SubmittedJob {
    /// From a SubmitJob request body (Batch's REST JSON).
    pub fn from_request(body: &[u8]) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(body).context("SubmitJob body")?;
        let overrides = &v["containerOverrides"];
        Ok(Self {
            name: v["jobName"]
                .as_str()
                .context("SubmitJob without jobName")?
                .to_owned(),
            command: overrides["command"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            environment: overrides["environment"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|kv| {
                            Some((
                                kv["name"].as_str()?.to_owned(),
                                kv["value"].as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    pub fn env(&self, name: &str) -> Option<&str> {
        self.environment
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The repository root (this crate is activities/aws).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the dbt image's entrypoint (deploy/docker/dbt-entrypoint.sh) as Batch would run the
/// container of `job`: its command and environment, with `bin` first on PATH (where a test puts
/// its stand-in `dbt`), `scratch` as the container's scratch folder, and the artifacts helper's
/// boto3 (the project's virtualenv) pointed at moto (straight, not through a fault proxy: the
/// container's calls are not the worker's). Returns the container's exit code.
pub async fn run_entrypoint(
    moto_endpoint: &str,
    job: &SubmittedJob,
    bin: &Path,
    scratch: &Path,
) -> Result<i32> {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new("sh")
        .arg(repo().join("deploy/docker/dbt-entrypoint.sh"))
        .args(&job.command)
        .envs(job.environment.iter().cloned())
        .env("PATH", path)
        .env("LAKEGATE_DBT_SCRATCH", scratch)
        .env("LAKEGATE_PYTHON", venv().join("bin/python"))
        .env(
            "LAKEGATE_ARTIFACTS_HELPER",
            repo().join("deploy/docker/lakegate-artifacts.py"),
        )
        .env("AWS_ENDPOINT_URL", moto_endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .context("running deploy/docker/dbt-entrypoint.sh")?;
    let code = out.status.code().unwrap_or(-1);
    if code == 64 {
        bail!(
            "the entrypoint refused the job: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(code)
}

/// Writes `script` as an executable `dbt` in `bin`: the stand-in a test puts first on PATH.
pub fn stand_in_dbt(bin: &Path, script: &str) -> Result<()> {
    std::fs::create_dir_all(bin)?;
    let path = bin.join("dbt");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(())
}

impl Moto {
    /// Queues the results the next Athena queries return, one per query in the order they start
    /// (moto's documented `/moto-api/static/athena/query-results`; it assigns a result to a query
    /// when StartQueryExecution runs). Each result is one integer column `_col0`; its rows come
    /// after the header row Athena puts first on a SELECT's first page, as Athena would send them.
    pub async fn queue_athena_counts(&self, counts: &[i64]) -> Result<()> {
        let results: Vec<serde_json::Value> = counts
            .iter()
            .map(|n| {
                serde_json::json!({
                    "rows": [
                        {"Data": [{"VarCharValue": "_col0"}]},
                        {"Data": [{"VarCharValue": n.to_string()}]},
                    ],
                    "column_info": [{
                        "CatalogName": "hive", "SchemaName": "", "TableName": "",
                        "Name": "_col0", "Label": "_col0", "Type": "bigint",
                        "Precision": 19, "Scale": 0, "Nullable": "UNKNOWN",
                        "CaseSensitive": false,
                    }],
                })
            })
            .collect();
        let body = serde_json::json!({ "region": "us-east-1", "results": results });
        self.post_json("/moto-api/static/athena/query-results", &body.to_string())
            .await?;
        Ok(())
    }
}

/// The names of every job in `queue` whose name starts with `prefix`, in any status (a JOB_NAME
/// filter lists all statuses; without one Batch lists only RUNNING jobs).
pub async fn job_names(moto: &Moto, queue: &str, prefix: &str) -> Result<Vec<String>> {
    let batch = moto.clients().await.batch;
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let out = batch
            .list_jobs()
            .job_queue(queue)
            .filters(
                aws_sdk_batch::types::KeyValuesPair::builder()
                    .name("JOB_NAME")
                    .values(format!("{prefix}*"))
                    .build(),
            )
            .set_next_token(token)
            .send()
            .await?;
        names.extend(
            out.job_summary_list()
                .iter()
                .filter_map(|j| j.job_name().map(str::to_owned)),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    names.sort();
    Ok(names)
}
