//! `lakegate query`: SQL on the configured query engine (DuckDB locally, Athena on AWS).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use lakegate::{LakeConfig, worker};

use super::{Output, outln, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    sql: String,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    use lakegate_activities::ports::QueryState;
    let engine = worker::ports(config).await?.query;
    // A fresh token per invocation: the CLI wants a new run, not a reconnect.
    let token = format!(
        "cli-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let id = engine.start_query(&args.sql, &token).await?;
    loop {
        match engine.query_state(&id).await? {
            QueryState::Succeeded => break,
            QueryState::Failed { reason, .. } | QueryState::Cancelled { reason, .. } => {
                bail!("query failed: {reason}")
            }
            QueryState::Queued | QueryState::Running => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
    let mut page = engine.results(&id, None).await?;
    let columns = page.columns.clone();
    let mut rows = std::mem::take(&mut page.rows);
    while let Some(next) = page.next_token.take() {
        page = engine.results(&id, Some(&next)).await?;
        rows.append(&mut page.rows);
    }
    if args.output == Output::Json {
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        (
                            c.clone(),
                            v.clone()
                                .map_or(serde_json::Value::Null, serde_json::Value::String),
                        )
                    })
                    .collect()
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&objects)?)?;
    } else {
        render::print_table(&columns, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}
