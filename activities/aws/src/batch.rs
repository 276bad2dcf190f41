//! The job runner on AWS Batch, with log tails from CloudWatch Logs.
//!
//! `submit` is safe to retry: the job is named after `JobSpec::name` (which the workflow derives
//! from its own id and the stage, so it is unique per logical job), and before submitting, the
//! queue is searched for a job of that name. A retried activity therefore returns the job its
//! first attempt started instead of starting a second dbt run. Waiting is the workflow's job.
//!
//! Artifacts: a Batch container starts clean and ends without a trace, so the dbt image's
//! entrypoint (deploy/docker/dbt-entrypoint.sh) uploads dbt's `target/run_results.json` and
//! `target/manifest.json` to `s3://<bucket>/<jobs prefix><job name>/target/` when dbt ends, and a
//! job that resumes from another (`dbt retry`) first downloads that job's files as its dbt state.
//! The runner tells the container where with environment overrides ([`ENV_JOB_NAME`],
//! [`ENV_ARTIFACTS`], [`ENV_RESUME_FROM`]) and reads the files back in [`JobRunner::artifact`].

use async_trait::async_trait;
use aws_sdk_batch::types::{
    ContainerOverrides, JobStatus as BatchStatus, KeyValuePair, KeyValuesPair,
};
use bytes::Bytes;
use lakegate_activities::ports::{JobError, JobRunner, JobSpec, JobState, JobStatus};
use lakegate_models::short_hash;

use crate::error::{Classified, classify};

/// Where Batch's awslogs driver writes unless the job definition names another group.
pub const DEFAULT_LOG_GROUP: &str = "/aws/batch/job";
const MAX_JOB_NAME: usize = 128;
/// The job's own (Batch) name: the folder its artifacts go to. Batch tells a container its job
/// id but not its name.
pub const ENV_JOB_NAME: &str = "LAKEGATE_JOB_NAME";
/// `s3://<bucket>/<jobs prefix>`: where every job's artifacts folder is.
pub const ENV_ARTIFACTS: &str = "LAKEGATE_ARTIFACTS";
/// The (Batch) name of the job whose artifacts are this job's dbt state (`dbt retry`).
pub const ENV_RESUME_FROM: &str = "LAKEGATE_RESUME_FROM";
/// Where job artifacts go unless configured otherwise.
pub const DEFAULT_JOBS_PREFIX: &str = "jobs/";

#[derive(Debug, Clone)]
pub struct BatchRunner {
    batch: aws_sdk_batch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    job_queue: String,
    job_definition: String,
    artifacts: Option<Artifacts>,
}

/// The bucket and prefix the dbt image uploads each job's target/ files under.
#[derive(Debug, Clone)]
struct Artifacts {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl Artifacts {
    fn key(&self, job_name: &str, name: &str) -> String {
        format!("{}{job_name}/{name}", self.prefix)
    }
}

impl BatchRunner {
    pub fn new(
        batch: aws_sdk_batch::Client,
        logs: aws_sdk_cloudwatchlogs::Client,
        job_queue: impl Into<String>,
        job_definition: impl Into<String>,
    ) -> Self {
        Self {
            batch,
            logs,
            job_queue: job_queue.into(),
            job_definition: job_definition.into(),
            artifacts: None,
        }
    }

    /// Jobs upload their artifacts to `s3://<bucket>/<prefix><job name>/` (the dbt image's
    /// entrypoint does), and `artifact` reads them there. Without this, jobs keep no artifacts:
    /// no node results and no `dbt retry`.
    pub fn with_artifacts(
        mut self,
        s3: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
    ) -> Self {
        let mut prefix = prefix.into();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        self.artifacts = Some(Artifacts {
            s3,
            bucket: bucket.into(),
            prefix,
        });
        self
    }

    /// The S3 key of a job's artifact, for tests and tools that place or inspect them.
    pub fn artifact_key(&self, job_name: &str, name: &str) -> Option<String> {
        self.artifacts
            .as_ref()
            .map(|a| a.key(&batch_job_name(job_name), name))
    }

    /// What the container must know to upload its artifacts and find the ones it resumes from.
    fn artifact_environment(&self, job_name: &str, spec: &JobSpec) -> Vec<(String, String)> {
        let Some(a) = &self.artifacts else {
            return Vec::new();
        };
        let mut env = vec![
            (ENV_JOB_NAME.to_owned(), job_name.to_owned()),
            (
                ENV_ARTIFACTS.to_owned(),
                format!("s3://{}/{}", a.bucket, a.prefix),
            ),
        ];
        if let Some(previous) = &spec.resume_from {
            env.push((ENV_RESUME_FROM.to_owned(), batch_job_name(previous)));
        }
        env
    }

    /// The id of a job named `job_name` in the queue, if one exists (any status). When several
    /// do, the newest: it is the one a retried submit would have started last.
    async fn find_job(&self, job_name: &str) -> Result<Option<String>, JobError> {
        let mut best: Option<(i64, String)> = None;
        let mut token: Option<String> = None;
        loop {
            let out = self
                .batch
                .list_jobs()
                .job_queue(&self.job_queue)
                .filters(
                    KeyValuesPair::builder()
                        .name("JOB_NAME")
                        .values(job_name)
                        .build(),
                )
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| backend(&e))?;
            for job in out.job_summary_list() {
                // The filter matches case-insensitively and treats a trailing * as a wildcard.
                if job.job_name() != Some(job_name) {
                    continue;
                }
                let Some(id) = job.job_id() else { continue };
                let created = job.created_at().unwrap_or_default();
                if best.as_ref().is_none_or(|(t, _)| created > *t) {
                    best = Some((created, id.to_owned()));
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    async fn detail(&self, job_id: &str) -> Result<aws_sdk_batch::types::JobDetail, JobError> {
        let out = self
            .batch
            .describe_jobs()
            .jobs(job_id)
            .send()
            .await
            .map_err(|e| backend(&e))?;
        out.jobs()
            .first()
            .cloned()
            .ok_or_else(|| JobError::NotFound(job_id.to_owned()))
    }
}

/// A Batch job name for `name`: Batch allows up to 128 letters, digits, hyphens and underscores,
/// starting with a letter or digit. Names that need changing get a hash of the original appended,
/// so two different specs never collapse onto one job name.
pub fn batch_job_name(name: &str) -> String {
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let starts_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if starts_ok && name.len() <= MAX_JOB_NAME && name.chars().all(valid) {
        return name.to_owned();
    }
    let suffix = format!("-{}", short_hash(name));
    let mut base: String = name
        .chars()
        .map(|c| if valid(c) { c } else { '-' })
        .collect();
    if !starts_ok {
        base.insert(0, 'j');
    }
    base.truncate(MAX_JOB_NAME - suffix.len());
    base + &suffix
}

fn backend(err: impl Into<Classified>) -> JobError {
    let c = err.into();
    JobError::Backend {
        message: c.message,
        retryable: c.retryable,
    }
}

#[async_trait]
impl JobRunner for BatchRunner {
    async fn submit(&self, spec: &JobSpec) -> Result<String, JobError> {
        let job_name = batch_job_name(&spec.name);
        if let Some(existing) = self.find_job(&job_name).await? {
            tracing::info!(
                job_name,
                job_id = existing,
                "job already submitted: reconnecting"
            );
            return Ok(existing);
        }
        let environment: Vec<KeyValuePair> = spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(self.artifact_environment(&job_name, spec))
            .map(|(k, v)| KeyValuePair::builder().name(k).value(v).build())
            .collect();
        let overrides = ContainerOverrides::builder()
            .set_command((!spec.command.is_empty()).then(|| spec.command.clone()))
            .set_environment((!environment.is_empty()).then_some(environment))
            .build();
        // SubmitJob has no idempotency token: the SDK retrying a 5xx that Batch sent after it had
        // created the job (or a timeout after it did) would create a second job of the same
        // name, a second dbt run. So the SDK does not retry it; after a retryable failure the
        // job is looked up by name first, and submitted again only if it is not there.
        let mut attempt = 1;
        loop {
            let sent = self
                .batch
                .submit_job()
                .job_name(&job_name)
                .job_queue(&self.job_queue)
                .job_definition(&self.job_definition)
                .container_overrides(overrides.clone())
                .customize()
                .config_override(
                    aws_sdk_batch::config::Builder::default()
                        .retry_config(aws_sdk_batch::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            let err = match sent {
                Ok(out) => {
                    tracing::info!(job_name, job_id = out.job_id(), "job submitted");
                    return out
                        .job_id()
                        .map(str::to_owned)
                        .ok_or_else(|| JobError::Backend {
                            message: "SubmitJob returned no job id".into(),
                            retryable: true,
                        });
                }
                Err(e) => backend(&e),
            };
            let retryable = matches!(
                err,
                JobError::Backend {
                    retryable: true,
                    ..
                }
            );
            if !retryable || attempt >= crate::config::SDK_MAX_ATTEMPTS {
                return Err(err);
            }
            // The SDK's own backoff would be about this; a throttle needs it.
            tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            if let Some(existing) = self.find_job(&job_name).await? {
                tracing::info!(
                    job_name,
                    job_id = existing,
                    "SubmitJob failed after the job was created: reconnecting"
                );
                return Ok(existing);
            }
            attempt += 1;
        }
    }

    async fn describe(&self, job_id: &str) -> Result<JobStatus, JobError> {
        let job = self.detail(job_id).await?;
        let state = match job.status() {
            Some(BatchStatus::Succeeded) => JobState::Succeeded,
            Some(BatchStatus::Failed) => JobState::Failed,
            Some(BatchStatus::Starting | BatchStatus::Running) => JobState::Running,
            _ => JobState::Submitted,
        };
        let container = job.container();
        let reason = [job.status_reason(), container.and_then(|c| c.reason())]
            .into_iter()
            .flatten()
            .filter(|r| !r.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Ok(JobStatus {
            job_id: job_id.to_owned(),
            state,
            exit_code: container.and_then(|c| c.exit_code()),
            reason: (!reason.is_empty()).then_some(reason),
        })
    }

    async fn terminate(&self, job_id: &str, reason: &str) -> Result<(), JobError> {
        self.batch
            .terminate_job()
            .job_id(job_id)
            .reason(reason)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_client_exception())
                    && self_is_missing(&e)
                {
                    JobError::NotFound(job_id.to_owned())
                } else {
                    backend(&e)
                }
            })?;
        Ok(())
    }

    async fn log_tail(&self, job_id: &str, lines: usize) -> Result<Vec<String>, JobError> {
        let job = self.detail(job_id).await?;
        let container = job.container();
        let stream = container.and_then(|c| c.log_stream_name()).or_else(|| {
            job.attempts()
                .last()
                .and_then(|a| a.container())
                .and_then(|c| c.log_stream_name())
        });
        let Some(stream) = stream else {
            // Not started yet: no stream, nothing to show.
            return Ok(Vec::new());
        };
        let group = container
            .and_then(|c| c.log_configuration())
            .and_then(|l| l.options())
            .and_then(|o| o.get("awslogs-group"))
            .map_or(DEFAULT_LOG_GROUP, String::as_str);
        let limit = i32::try_from(lines.clamp(1, 10_000)).unwrap_or(10_000);
        let out = self
            .logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(false)
            .limit(limit)
            .send()
            .await;
        match out {
            Ok(out) => {
                let mut msgs: Vec<String> = out
                    .events()
                    .iter()
                    .filter_map(|e| e.message())
                    .map(str::to_owned)
                    .collect();
                let skip = msgs.len().saturating_sub(lines);
                msgs.drain(..skip);
                Ok(msgs)
            }
            // The stream appears with the container's first line.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => {
                let c = classify(&e);
                Err(JobError::Backend {
                    message: c.message,
                    retryable: c.retryable,
                })
            }
        }
    }

    async fn artifact(&self, job_id: &str, name: &str) -> Result<Option<Bytes>, JobError> {
        let Some(artifacts) = &self.artifacts else {
            return Ok(None);
        };
        if name.is_empty()
            || name.starts_with('/')
            || name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(JobError::Backend {
                message: format!("artifact name must be a relative path inside the job: {name}"),
                retryable: false,
            });
        }
        let job = self.detail(job_id).await?;
        let Some(job_name) = job.job_name() else {
            return Ok(None);
        };
        let out = artifacts
            .s3
            .get_object()
            .bucket(&artifacts.bucket)
            .key(artifacts.key(job_name, name))
            .send()
            .await;
        let body = match out {
            Ok(out) => out.body,
            // The job ended before dbt wrote the file, or is still running.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                let c = classify(&e);
                return Err(JobError::Backend {
                    message: c.message,
                    retryable: c.retryable,
                });
            }
        };
        let bytes = body.collect().await.map_err(|e| JobError::Backend {
            message: format!("reading artifact {name} of job {job_id}: {e}"),
            retryable: true,
        })?;
        Ok(Some(bytes.into_bytes()))
    }
}

/// Batch reports an unknown job id to TerminateJob as a ClientException naming the job.
fn self_is_missing<E>(
    err: &aws_sdk_batch::error::SdkError<E, aws_sdk_batch::config::http::HttpResponse>,
) -> bool
where
    E: aws_sdk_batch::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    err.as_service_error()
        .and_then(|s| s.message())
        .is_some_and(|m| m.contains("not found") || m.contains("does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_valid_and_distinct() {
        assert_eq!(batch_job_name("transform-abc_1"), "transform-abc_1");
        let a = batch_job_name("transform/wf-1/staging");
        let b = batch_job_name("transform.wf-1.staging");
        assert_ne!(a, b);
        assert!(a.starts_with("transform-wf-1-staging-"), "{a}");
        for n in [
            &a,
            &b,
            &batch_job_name(&"x".repeat(300)),
            &batch_job_name("_leading"),
        ] {
            assert!(
                n.len() <= 128 && n.chars().next().unwrap().is_ascii_alphanumeric(),
                "{n}"
            );
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{n}"
            );
        }
        assert_eq!(batch_job_name("transform/wf-1/staging"), a);
    }
}
