use lakegate_activities::port_suites;
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_batch::types::KeyValuesPair;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use lakegate_activities::ports::{JobRunner, JobSpec, JobState};
use lakegate_aws::BatchRunner;
use lakegate_aws::batch::{DEFAULT_LOG_GROUP, batch_job_name};

use crate::harness::{self, Moto, wait_for};

/// A queue and a job definition, as the deployment would create them.
async fn setup(
    moto: &Moto,
) -> Result<(
    BatchRunner,
    aws_sdk_batch::Client,
    aws_sdk_cloudwatchlogs::Client,
)> {
    harness::play::batch_queue(moto, "dbt", "dbt-athena").await?;
    let clients = moto.clients().await;
    let batch = clients.batch.clone();
    let runner = BatchRunner::new(batch.clone(), clients.logs.clone(), "dbt", "dbt-athena");
    Ok((runner, batch, clients.logs))
}

fn spec(name: &str) -> JobSpec {
    JobSpec {
        name: name.into(),
        command: vec![
            "dbt".into(),
            "build".into(),
            "--select".into(),
            "staging".into(),
        ],
        environment: BTreeMap::from([("DBT_TARGET".to_owned(), "athena".to_owned())]),
        resume_from: None,
    }
}

#[tokio::test]
async fn a_job_completes_and_a_retried_submit_reconnects_to_it() -> Result<()> {
    let moto = Moto::start().await?;
    let (runner, batch, _) = setup(&moto).await?;
    let name = "transform/wf-1/staging";

    // The shared job-runner suite (the local backend runs it too).
    let id = port_suites::resubmit_returns_same_job(&runner, &spec(name)).await;
    let status = wait_for("the job to finish", Duration::from_secs(30), || async {
        let s = runner.describe(&id).await?;
        Ok(matches!(s.state, JobState::Succeeded | JobState::Failed).then_some(s))
    })
    .await?;
    assert_eq!(status.state, JobState::Succeeded);
    assert_eq!(status.job_id, id);

    // The activity is retried after its first attempt submitted the job.
    assert_eq!(runner.submit(&spec(name)).await?, id);
    let listed = batch
        .list_jobs()
        .job_queue("dbt")
        .filters(
            KeyValuesPair::builder()
                .name("JOB_NAME")
                .values(batch_job_name(name))
                .build(),
        )
        .send()
        .await?;
    assert_eq!(listed.job_summary_list().len(), 1, "one job, not two");

    // A different logical job is a different job.
    let other = runner.submit(&spec("transform/wf-1/marts")).await?;
    assert_ne!(other, id);

    // What the job ran with.
    let detail = batch.describe_jobs().jobs(&id).send().await?;
    let container = detail.jobs()[0].container().unwrap();
    assert_eq!(container.command(), ["dbt", "build", "--select", "staging"]);
    assert!(
        container
            .environment()
            .iter()
            .any(|kv| kv.name() == Some("DBT_TARGET") && kv.value() == Some("athena"))
    );
    Ok(())
}

#[tokio::test]
async fn the_log_tail_comes_from_the_jobs_stream() -> Result<()> {
    let moto = Moto::start().await?;
    let (runner, batch, logs) = setup(&moto).await?;
    let id = runner.submit(&spec("transform-wf-2-staging")).await?;
    let stream = wait_for(
        "the job's log stream name",
        Duration::from_secs(30),
        || async {
            let d = batch.describe_jobs().jobs(&id).send().await?;
            Ok(d.jobs()
                .first()
                .and_then(|j| j.container())
                .and_then(|c| c.log_stream_name())
                .map(str::to_owned))
        },
    )
    .await?;
    // moto runs no container in no-Docker mode, so nothing writes the stream: write what the
    // awslogs driver would have.
    logs.create_log_group()
        .log_group_name(DEFAULT_LOG_GROUP)
        .send()
        .await
        .ok();
    logs.create_log_stream()
        .log_group_name(DEFAULT_LOG_GROUP)
        .log_stream_name(&stream)
        .send()
        .await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let lines = [
        "Running with dbt=1.11",
        "1 of 3 OK",
        "2 of 3 ERROR",
        "Completed with 1 error",
    ];
    let mut put = logs
        .put_log_events()
        .log_group_name(DEFAULT_LOG_GROUP)
        .log_stream_name(&stream);
    for (i, l) in lines.iter().enumerate() {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(now + i as i64)
                .message(*l)
                .build()?,
        );
    }
    put.send().await?;

    assert_eq!(
        runner.log_tail(&id, 2).await?,
        ["2 of 3 ERROR", "Completed with 1 error"]
    );
    assert_eq!(runner.log_tail(&id, 10).await?, lines);
    Ok(())
}

#[tokio::test]
async fn terminate_and_unknown_jobs() -> Result<()> {
    let moto = Moto::start().await?;
    let (runner, _, _) = setup(&moto).await?;
    let id = runner.submit(&spec("transform-wf-3-staging")).await?;
    runner.terminate(&id, "workflow cancelled").await?;
    assert!(matches!(
        runner.describe("no-such-job").await,
        Err(lakegate_activities::ports::JobError::NotFound(_))
    ));
    Ok(())
}

#[tokio::test]
async fn a_failed_job_is_reported_failed() -> Result<()> {
    // moto's no-Docker Batch fails every job when told to.
    let moto = Moto::start_with_env(&[("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")]).await?;
    let (runner, _, _) = setup(&moto).await?;
    let id = runner.submit(&spec("transform-wf-4-staging")).await?;
    let status = wait_for("the job to finish", Duration::from_secs(30), || async {
        let s = runner.describe(&id).await?;
        Ok(matches!(s.state, JobState::Succeeded | JobState::Failed).then_some(s))
    })
    .await?;
    assert_eq!(status.state, JobState::Failed);
    // A failed job's id is still what a retried submit of the same spec returns: re-running a
    // stage is a new spec name, decided by the workflow.
    assert_eq!(runner.submit(&spec("transform-wf-4-staging")).await?, id);
    Ok(())
}

/// Runs the dbt image's entrypoint as Batch would run the container: with the environment the
/// job was submitted with (read back from DescribeJobs) and its command. moto runs no container,
/// so the test runs the entrypoint itself, with a stand-in `dbt` first on PATH (`fake_dbt`, a
/// shell script) and boto3 from the project's virtualenv pointed at moto.
async fn run_entrypoint(
    moto: &Moto,
    batch: &aws_sdk_batch::Client,
    job_id: &str,
    bin: &std::path::Path,
    scratch: &std::path::Path,
) -> Result<i32> {
    let detail = batch.describe_jobs().jobs(job_id).send().await?;
    let container = detail.jobs()[0].container().unwrap();
    let env: Vec<(String, String)> = container
        .environment()
        .iter()
        .map(|kv| {
            (
                kv.name().unwrap_or_default().to_owned(),
                kv.value().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = tokio::process::Command::new("sh")
        .arg(repo.join("deploy/docker/dbt-entrypoint.sh"))
        .args(container.command())
        .envs(env)
        .env("PATH", path)
        .env("LAKEGATE_DBT_SCRATCH", scratch)
        .env("LAKEGATE_PYTHON", crate::harness::venv().join("bin/python"))
        .env(
            "LAKEGATE_ARTIFACTS_HELPER",
            repo.join("deploy/docker/lakegate-artifacts.py"),
        )
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .status()
        .await?;
    Ok(status.code().unwrap_or(-1))
}

/// The artifacts path end to end, minus the container: the runner tells the job where its
/// artifacts go, the image's entrypoint uploads dbt's target/ there whatever dbt's exit code, a
/// job that resumes gets the failed job's files as DBT_STATE, and `artifact` reads them back.
#[tokio::test]
async fn the_entrypoint_uploads_artifacts_the_runner_reads_and_a_retry_resumes_from() -> Result<()>
{
    let moto = Moto::start().await?;
    let (runner, batch, _) = setup(&moto).await?;
    let clients = moto.clients().await;
    clients.s3.create_bucket().bucket("lake").send().await?;
    let runner = runner.with_artifacts(clients.s3.clone(), "lake", "jobs/");
    let tmp = tempfile::tempdir()?;
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    // The stand-in dbt: `build` writes run_results.json with a failed model and exits 1, as dbt
    // does; `retry` records which state it was given and succeeds.
    let fake_dbt = r#"#!/bin/sh
mkdir -p "$DBT_TARGET_PATH"
case "$1" in
  build) printf '{"results":[{"unique_id":"model.ehr.stg_visits","status":"error","execution_time":0.5}]}' > "$DBT_TARGET_PATH/run_results.json"; echo manifest > "$DBT_TARGET_PATH/manifest.json"; exit 1 ;;
  retry) cp "$DBT_STATE/run_results.json" "$LAKEGATE_SEEN_STATE"; printf '{"results":[{"unique_id":"model.ehr.stg_visits","status":"success","execution_time":0.4}]}' > "$DBT_TARGET_PATH/run_results.json"; exit 0 ;;
esac
exit 2
"#;
    std::fs::write(bin.join("dbt"), fake_dbt)?;
    std::fs::set_permissions(
        bin.join("dbt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;

    let first = runner.submit(&spec("transform-wf-5-staging-1")).await?;
    // Nothing uploaded yet: no artifact, not an error.
    assert_eq!(
        runner.artifact(&first, "target/run_results.json").await?,
        None
    );
    let code = run_entrypoint(&moto, &batch, &first, &bin, &tmp.path().join("s1")).await?;
    assert_eq!(code, 1, "the job's exit code is dbt's");
    let results = runner
        .artifact(&first, "target/run_results.json")
        .await?
        .expect("the entrypoint uploaded run_results.json");
    let nodes = lakegate_activities::pipeline::parse_run_results(&results)?;
    assert_eq!(nodes[0].unique_id, "model.ehr.stg_visits");
    assert_eq!(nodes[0].status, "error");
    assert_eq!(
        runner.artifact_key("transform-wf-5-staging-1", "target/manifest.json"),
        Some("jobs/transform-wf-5-staging-1/target/manifest.json".to_owned())
    );
    assert!(
        runner
            .artifact(&first, "target/manifest.json")
            .await?
            .is_some()
    );
    assert!(runner.artifact(&first, "../other/target/x").await.is_err());

    let mut retry = spec("transform-wf-5-staging-2");
    retry.command = vec!["dbt".into(), "retry".into()];
    retry.resume_from = Some("transform-wf-5-staging-1".into());
    let seen = tmp.path().join("seen-state.json");
    retry
        .environment
        .insert("LAKEGATE_SEEN_STATE".into(), seen.display().to_string());
    let second = runner.submit(&retry).await?;
    let code = run_entrypoint(&moto, &batch, &second, &bin, &tmp.path().join("s2")).await?;
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read(&seen)?,
        results.to_vec(),
        "dbt retry ran on the failed job's run_results.json"
    );
    let resumed = runner
        .artifact(&second, "target/run_results.json")
        .await?
        .unwrap();
    let nodes = lakegate_activities::pipeline::parse_run_results(&resumed)?;
    assert_eq!(nodes[0].status, "success");
    // A runner without an artifacts location reports none rather than guessing.
    let bare = BatchRunner::new(batch.clone(), clients.logs.clone(), "dbt", "dbt-athena");
    assert_eq!(
        bare.artifact(&second, "target/run_results.json").await?,
        None
    );
    Ok(())
}
