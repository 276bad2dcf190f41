//! Temporal Schedules for lakegate: a landing sweep (the safety net for lost S3 events) and a
//! nightly transform per dataset. Schedules live in Temporal, so they survive worker restarts
//! and show in the UI's Schedules page.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use lakegate_models::SweepInput;
use lakegate_workflows::{LandingSweepWorkflow, TransformWorkflow};
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ListSchedulesOptions, ScheduleAction, ScheduleOverlapPolicy,
    ScheduleSpec,
};

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
    let action = ScheduleAction::start_workflow(
        LandingSweepWorkflow::run,
        input.into(),
        config.task_queue.clone(),
        format!("{schedule_id}-run"),
    );
    create(
        client,
        schedule_id,
        action,
        ScheduleSpec::from_interval(every),
    )
    .await
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
    let spec = ScheduleSpec::builder()
        .cron_strings(vec![cron.to_owned()])
        .build();
    let action = ScheduleAction::start_workflow(
        TransformWorkflow::run,
        transform.into(),
        config.task_queue.clone(),
        format!("{schedule_id}-run"),
    );
    create(client, schedule_id, action, spec).await
}

/// Overlapping runs are skipped: the next one covers whatever a slow one has not.
async fn create(
    client: &Client,
    schedule_id: &str,
    action: ScheduleAction,
    spec: ScheduleSpec,
) -> anyhow::Result<()> {
    let options = CreateScheduleOptions::builder()
        .action(action)
        .spec(spec)
        .overlap_policy(ScheduleOverlapPolicy::Skip)
        .build();
    client
        .create_schedule(schedule_id, options)
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
