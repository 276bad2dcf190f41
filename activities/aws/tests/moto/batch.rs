use lakegate_activities::port_suites;
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_batch::types::{
    CeState, CeType, ComputeEnvironmentOrder, ContainerProperties, JobDefinitionType, JqState,
    KeyValuesPair, ResourceRequirement, ResourceType,
};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use lakegate_activities::ports::{JobRunner, JobSpec, JobState};
use lakegate_aws::BatchRunner;
use lakegate_aws::batch::{DEFAULT_LOG_GROUP, batch_job_name};

use crate::harness::{Moto, wait_for};

/// A queue and a job definition, as the deployment would create them.
async fn setup(
    moto: &Moto,
) -> Result<(
    BatchRunner,
    aws_sdk_batch::Client,
    aws_sdk_cloudwatchlogs::Client,
)> {
    let clients = moto.clients().await;
    let role = moto.create_role("batch-service").await?;
    let batch = clients.batch.clone();
    let ce = batch
        .create_compute_environment()
        .compute_environment_name("lakegate")
        .r#type(CeType::Unmanaged)
        .state(CeState::Enabled)
        .service_role(role)
        .send()
        .await?;
    batch
        .create_job_queue()
        .job_queue_name("dbt")
        .state(JqState::Enabled)
        .priority(1)
        .compute_environment_order(
            ComputeEnvironmentOrder::builder()
                .order(1)
                .compute_environment(ce.compute_environment_arn().unwrap())
                .build(),
        )
        .send()
        .await?;
    batch
        .register_job_definition()
        .job_definition_name("dbt-athena")
        .r#type(JobDefinitionType::Container)
        .container_properties(
            ContainerProperties::builder()
                .image("lakegate/dbt:latest")
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Vcpu)
                        .value("1")
                        .build(),
                )
                .resource_requirements(
                    ResourceRequirement::builder()
                        .r#type(ResourceType::Memory)
                        .value("512")
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
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
