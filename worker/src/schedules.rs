//! Temporal Schedules for lakegate: a landing sweep (the safety net for lost S3 events) and a
//! nightly transform per dataset. Schedules live in Temporal, so they survive worker restarts
//! and show in the UI's Schedules page.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures::StreamExt;
use lakegate_models::SweepInput;
use lakegate_workflows::{LandingSweepWorkflow, TransformWorkflow};
use temporalio_client::grpc::WorkflowService;
use temporalio_client::schedules::ListSchedulesOptions;
use temporalio_client::tonic::IntoRequest;
use temporalio_client::{Client, NamespacedClient};
use temporalio_common::HasWorkflowDefinition;
use temporalio_common::data_converters::{
    GenericPayloadConverter, PayloadConverter, SerializationContext, SerializationContextData,
    TemporalSerializable, WorkflowSerializationContext,
};
use temporalio_common::protos::temporal::api::common::v1::{Payloads, WorkflowType};
use temporalio_common::protos::temporal::api::enums::v1::ScheduleOverlapPolicy;
use temporalio_common::protos::temporal::api::schedule::v1 as schedule_proto;
use temporalio_common::protos::temporal::api::sdk::v1::UserMetadata;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo;
use temporalio_common::protos::temporal::api::workflowservice::v1::CreateScheduleRequest;

use crate::LakeConfig;

pub const SWEEP_SCHEDULE_ID: &str = "lakegate-landing-sweep";

/// Sweeps landing/ every `every`, starting files older than `older_than`.
pub async fn create_sweep(
    client: &Client,
    config: &LakeConfig,
    schedule_id: &str,
    every: Duration,
    older_than: Duration,
) -> anyhow::Result<()> {
    let input = SweepInput {
        older_than_secs: older_than.as_secs(),
        review_timeout_secs: lakegate_models::DEFAULT_REVIEW_TIMEOUT_SECS,
    };
    let spec = schedule_proto::ScheduleSpec {
        interval: vec![schedule_proto::IntervalSpec {
            interval: Some(every.try_into().context("the sweep interval")?),
            phase: None,
        }],
        ..Default::default()
    };
    let summary = format!(
        "Scheduled landing sweep: start the ingest of every file in landing/ older than {} s \
         that has none",
        older_than.as_secs()
    );
    let start = Start::new(
        client,
        config,
        schedule_id,
        LandingSweepWorkflow::run,
        input.into(),
    );
    create(client, schedule_id, start.await?, spec, summary).await
}

/// Runs the dataset's transform (from the pipeline settings) on a cron schedule.
pub async fn create_transform(
    client: &Client,
    config: &LakeConfig,
    schedule_id: &str,
    dataset: &str,
    cron: &str,
) -> anyhow::Result<()> {
    let settings = config
        .pipeline_settings()?
        .with_context(|| format!("{} does not exist", config.pipeline.display()))?;
    let transform = settings
        .transforms
        .get(dataset)
        .with_context(|| format!("the pipeline settings have no transform for {dataset}"))?
        .clone();
    let spec = schedule_proto::ScheduleSpec {
        cron_string: vec![cron.to_owned()],
        ..Default::default()
    };
    // The dataset's name from the pipeline settings, as the crawl's transform child says it.
    let summary = format!(
        "Scheduled transform of dataset {}: dbt stages, then checks",
        transform.dataset
    );
    let start = Start::new(
        client,
        config,
        schedule_id,
        TransformWorkflow::run,
        transform.into(),
    );
    create(client, schedule_id, start.await?, spec, summary).await
}

/// The workflow a schedule starts, its input encoded as the client encodes any start input
/// (payload codec included).
struct Start(NewWorkflowExecutionInfo);

impl Start {
    async fn new<W>(
        client: &Client,
        config: &LakeConfig,
        schedule_id: &str,
        workflow: W,
        input: W::Input,
    ) -> anyhow::Result<Self>
    where
        W: HasWorkflowDefinition,
        W::Input: TemporalSerializable + Send + Sync + 'static,
    {
        let context = SerializationContextData::Workflow(WorkflowSerializationContext::new());
        let payloads = client
            .data_converter()
            .to_payloads(&context, &input)
            .await
            .context("encoding the scheduled workflow's input")?;
        Ok(Self(NewWorkflowExecutionInfo {
            // The server appends the action time, so every run has an id of its own.
            workflow_id: format!("{schedule_id}-run"),
            workflow_type: Some(WorkflowType {
                name: workflow.name().to_owned(),
            }),
            task_queue: Some(TaskQueue {
                name: config.task_queue.clone(),
                ..Default::default()
            }),
            input: Some(Payloads { payloads }),
            ..Default::default()
        }))
    }
}

/// Creates the schedule through the raw API: the SDK's `ScheduleAction` (temporalio-client
/// 1.1.1) has no field for the runs' user metadata, which the API's `NewWorkflowExecutionInfo`
/// carries, so a scheduled run would be the one unlabelled run in the Web UI. The summary is
/// encoded as the SDK encodes a started workflow's (plain JSON, no codec: user metadata is shown
/// in clear), so it must name no file. Overlapping runs are skipped: the next one covers
/// whatever a slow one has not.
async fn create(
    client: &Client,
    schedule_id: &str,
    Start(mut start): Start,
    spec: schedule_proto::ScheduleSpec,
    summary: String,
) -> anyhow::Result<()> {
    let converter = PayloadConverter::default();
    let context = SerializationContextData::Workflow(WorkflowSerializationContext::new());
    let summary = converter
        .to_payload(&SerializationContext::new(&context, &converter), &summary)
        .context("encoding the schedule's summary")?;
    start.user_metadata = Some(UserMetadata {
        summary: Some(summary),
        details: None,
    });
    let schedule = schedule_proto::Schedule {
        spec: Some(spec),
        action: Some(schedule_proto::ScheduleAction {
            action: Some(schedule_proto::schedule_action::Action::StartWorkflow(
                start,
            )),
        }),
        policies: Some(schedule_proto::SchedulePolicies {
            overlap_policy: ScheduleOverlapPolicy::Skip as i32,
            ..Default::default()
        }),
        state: Some(schedule_proto::ScheduleState::default()),
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let request = CreateScheduleRequest {
        namespace: client.namespace(),
        schedule_id: schedule_id.to_owned(),
        schedule: Some(schedule),
        identity: client.identity(),
        // Deduplicates a retried request; one create is one request.
        request_id: format!("{schedule_id}-{nanos}"),
        ..Default::default()
    };
    WorkflowService::create_schedule(&mut client.clone(), request.into_request())
        .await
        .with_context(|| format!("creating schedule {schedule_id}"))?;
    Ok(())
}

/// (id, workflow type, paused) of every schedule in the namespace.
pub async fn list(client: &Client) -> anyhow::Result<Vec<(String, String, bool)>> {
    let mut stream = client.list_schedules(ListSchedulesOptions::default());
    let mut found = Vec::new();
    while let Some(entry) = stream.next().await {
        let entry = entry.context("listing schedules")?;
        found.push((
            entry.schedule_id().to_owned(),
            entry.workflow_type().unwrap_or("-").to_owned(),
            entry.paused(),
        ));
    }
    Ok(found)
}

pub async fn pause(client: &Client, schedule_id: &str, pause: bool) -> anyhow::Result<()> {
    let handle = client.get_schedule_handle(schedule_id);
    if pause {
        handle
            .pause(
                Some("paused with lakegate schedule pause"),
                Default::default(),
            )
            .await?;
    } else {
        handle
            .unpause(
                Some("resumed with lakegate schedule unpause"),
                Default::default(),
            )
            .await?;
    }
    Ok(())
}

pub async fn delete(client: &Client, schedule_id: &str) -> anyhow::Result<()> {
    client
        .get_schedule_handle(schedule_id)
        .delete(Default::default())
        .await?;
    Ok(())
}
