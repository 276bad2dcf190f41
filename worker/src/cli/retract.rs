//! `lakegate retract`: take a promoted file back (RetractWorkflow): raw/ to rejected/, who and
//! why recorded, the catalog refreshed and the transform rerun by the dataset's crawl workflow.

use std::process::ExitCode;

use anyhow::{Context, bail};
use lakegate::{LakeConfig, client};
use lakegate_activities::{RetractStart, start_retract};
use lakegate_models::{RetractInput, RetractPhase, RetractStatus};
use lakegate_workflows::RetractWorkflow;
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowQueryOptions,
};

use super::{EXIT_FAILED, Output, dev_address, outln};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The IngestFileWorkflow that promoted the file (as `lakegate ingest` printed it).
    workflow_id: String,
    /// Why the file is taken back; kept in the retract's (encrypted) history, never in a search
    /// attribute or a log line.
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    reason: String,
    /// Who retracts [default: the OS user, from $USER or $LOGNAME].
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    reviewer: Option<String>,
    /// Return once the retract has started, without waiting for the file to move.
    #[arg(long)]
    no_wait: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let reviewer = match args.reviewer {
        Some(reviewer) => reviewer,
        None => os_user().context("no --reviewer given and neither $USER nor $LOGNAME is set")?,
    };
    let input = RetractInput {
        ingest_workflow_id: args.workflow_id,
        reviewer,
        reason: args.reason,
    };
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let started = start_retract(&client, &config.task_queue, &input)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let (id, existed) = match started {
        RetractStart::Started { workflow_id } => (workflow_id, false),
        RetractStart::Exists { workflow_id } => (workflow_id, true),
    };
    if existed {
        let handle = client.get_workflow_handle::<RetractWorkflow>(id.clone());
        let described = handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .with_context(|| format!("describing {id}"))?;
        if described.status() == WorkflowExecutionStatus::Completed {
            let earlier = status_of(&client, &id).await?;
            eprintln!(
                "refused: {} was already retracted by {id} (reviewer {}, reason {:?}); \
                 its file is in {}",
                earlier.ingest_workflow_id,
                earlier.reviewer,
                earlier.reason,
                earlier.zone.map_or("rejected/", |z| z.prefix()),
            );
            return Ok(ExitCode::from(EXIT_FAILED));
        }
        eprintln!("{id}: a retract of this run is already running; following it");
    }
    if args.no_wait {
        outln!("{id}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let handle = client.get_workflow_handle::<RetractWorkflow>(id.clone());
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(status) => {
            print(&id, &status, args.output)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(WorkflowGetResultError::Failed(failure)) => {
            // The run's own record says why; a failure before it had one (bad input) is shown
            // as the workflow reported it.
            let refused = status_of(&client, &id).await.ok().and_then(|s| s.refused);
            match refused {
                Some(reason) => eprintln!("refused: {reason}"),
                None => eprintln!("{id} failed: {failure}"),
            }
            Ok(ExitCode::from(EXIT_FAILED))
        }
        Err(e) => Err(e).with_context(|| format!("waiting for {id}")),
    }
}

async fn status_of(client: &Client, id: &str) -> anyhow::Result<RetractStatus> {
    client
        .get_workflow_handle::<RetractWorkflow>(id.to_owned())
        .query(
            RetractWorkflow::get_status,
            (),
            WorkflowQueryOptions::default(),
        )
        .await
        .with_context(|| format!("querying {id}"))
}

fn os_user() -> Option<String> {
    ["USER", "LOGNAME"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .find(|user| !user.trim().is_empty())
}

fn print(id: &str, status: &RetractStatus, output: Output) -> anyhow::Result<()> {
    if output == Output::Json {
        outln!("{}", serde_json::to_string_pretty(status)?)?;
        return Ok(());
    }
    if status.phase != RetractPhase::Retracted {
        bail!("{id} ended in phase {}", status.phase.as_str());
    }
    outln!("workflow:  {id}")?;
    outln!("retracted: {}", status.ingest_workflow_id)?;
    outln!("reviewer:  {}", status.reviewer)?;
    outln!("reason:    {}", status.reason)?;
    if let Some(c) = &status.contract {
        outln!("contract:  {}/{}", c.dataset, c.table)?;
    }
    if let (Some(from), Some(to)) = (&status.promoted_key, &status.key) {
        outln!("moved:     {from} -> {to}")?;
    }
    match (&status.crawl_workflow_id, &status.contract) {
        (Some(crawl), Some(c)) => outln!(
            "catalog:   {crawl} refreshes the table and reruns the transform \
             (`lakegate pipeline --dataset {} --wait`)",
            c.dataset
        )?,
        _ => outln!("catalog:   no pipeline configured; nothing to refresh")?,
    }
    Ok(())
}
