//! `lakegate pipeline`: a dataset's crawls and transform (tables, dbt models, checks), or a wait
//! for them with a progress line.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use lakegate::{LakeConfig, client};
use lakegate_models::names;

use super::dev_address;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    dataset: String,
    /// Wait, with a progress line, until every promoted file has been crawled and transformed.
    #[arg(long)]
    wait: bool,
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        dataset,
        wait,
        timeout_secs,
    } = args;
    let dataset = dataset.as_str();
    let timeout = Duration::from_secs(timeout_secs);
    let Some(settings) = config.pipeline_settings()? else {
        bail!(
            "no pipeline configured ({} does not exist)",
            config.pipeline.display()
        );
    };
    let crawler = settings.crawler_for(dataset);
    let client = client::connect(dev_address(config).as_deref(), config.codec()?.as_ref()).await?;
    let deadline = Instant::now() + timeout;
    let spinner = ['|', '/', '-', '\\'];
    let mut tick = 0usize;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line: Option<String> = None;
    let status = loop {
        let status = client::crawl_status(&client, &crawler).await?;
        let idle =
            status.phase == "waiting" && status.pending_prefixes == 0 && status.last.is_some();
        if !wait || idle {
            break status;
        }
        if Instant::now() >= deadline {
            bail!("the pipeline of {dataset} was still busy after {timeout:?}");
        }
        let crawl = status.crawls_done + u64::from(status.phase != "waiting");
        let mut line = format!(
            "crawl #{crawl}: {} ({} prefixes waiting)",
            status.phase, status.pending_prefixes
        );
        if status.phase == "transforming"
            && let Ok(t) =
                client::transform_status(&client, &names::transform_workflow_id(&crawler, crawl))
                    .await
        {
            let done: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
            line.push_str(&format!(", dbt stages done: [{}]", done.join(", ")));
        }
        // A live line on a terminal; one line per change when the output is a log.
        if interactive {
            eprint!("\r{} {line:<96}", spinner[tick % spinner.len()]);
        } else if last_line.as_deref() != Some(line.as_str()) {
            eprintln!("{line}");
            last_line = Some(line);
        }
        tick += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if wait && interactive {
        eprintln!("\r{:<100}", "");
    }
    let Some(last) = status.last else {
        println!("{dataset}: no crawl yet");
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "Crawl #{} of {crawler}: {} over {} prefixes{}",
        last.number,
        last.status,
        last.prefixes.len(),
        if last.joined_running {
            " (joined a run already in progress first)"
        } else {
            ""
        }
    );
    if let Some(error) = &last.error {
        println!("  error: {error}");
    }
    println!("  tables created: [{}]", last.tables_created.join(", "));
    println!("  tables updated: [{}]", last.tables_updated.join(", "));
    let mut ok = last.status == "SUCCEEDED";
    if let Some(id) = &last.transform_workflow_id {
        let result = client::transform_status(&client, id).await?;
        println!("Transform {id}:");
        for stage in &result.stages {
            let passed = stage
                .nodes
                .iter()
                .filter(|n| matches!(n.status.as_str(), "success" | "pass"))
                .count();
            println!(
                "  stage {:<13} {}  {passed}/{} nodes ok, {} job(s)",
                stage.stage,
                if stage.succeeded { "ok    " } else { "FAILED" },
                stage.nodes.len(),
                stage.jobs.len()
            );
            if let Some(failure) = &stage.failure
                && !stage.succeeded
            {
                println!("    {failure}");
                for line in &stage.log_tail {
                    println!("    | {line}");
                }
            }
        }
        for check in &result.checks {
            println!(
                "  check {:<45} {}  {}{}",
                check.name,
                if check.passed { "pass" } else { "FAIL" },
                check.observed,
                check
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            );
        }
        ok &= last.transform_succeeded == Some(true);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
