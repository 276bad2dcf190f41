//! `lakegate pipeline`: a dataset's crawls and transform (tables, dbt models, checks), or a wait
//! for them with a progress line. A failure's tool output (dbt's log, the engine's error) is read
//! from the lake's log zone, where the activities kept it, and printed redacted: the history holds
//! only its key and error class.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use lakegate::{LakeConfig, client};
use lakegate_models::names;

use super::{dev_address, outln};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    dataset: String,
    /// Wait, with a progress line, until every promoted file has been crawled and transformed.
    #[arg(long)]
    wait: bool,
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Lines of each stored failure log to print (values in them are blanked); 0 prints none.
    #[arg(long, default_value_t = 30)]
    log_lines: usize,
}

pub async fn run(config: &LakeConfig, args: Args) -> anyhow::Result<ExitCode> {
    let Args {
        dataset,
        wait,
        timeout_secs,
        log_lines,
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
    let logs = StoredLogs::new(config, log_lines);
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
        outln!("{dataset}: no crawl yet")?;
        return Ok(ExitCode::SUCCESS);
    };
    // A failed step stays visible after later successes: its files may still be missing.
    if let Some(failed) = status
        .last_failure
        .as_ref()
        .filter(|f| f.number != last.number)
    {
        outln!(
            "Catalog step #{} of {crawler} FAILED over {} prefixes: {}",
            failed.number,
            failed.prefixes.len(),
            failed.error.as_deref().unwrap_or("no reason given")
        )?;
        logs.print(failed.log_key.as_deref(), "  ").await?;
    }
    outln!(
        "Catalog step #{} of {crawler}: {} over {} prefixes{}",
        last.number,
        last.status,
        last.prefixes.len(),
        if last.joined_running {
            " (joined a run already in progress first)"
        } else {
            ""
        }
    )?;
    if let Some(error) = &last.error {
        outln!("  error: {error}")?;
        logs.print(last.log_key.as_deref(), "  ").await?;
    }
    outln!("  tables created: [{}]", last.tables_created.join(", "))?;
    outln!("  tables updated: [{}]", last.tables_updated.join(", "))?;
    for change in &last.changes {
        outln!("  {}", describe_change(change))?;
    }
    let mut ok = last.status == "SUCCEEDED";
    if let Some(id) = &last.transform_workflow_id {
        let result = client::transform_status(&client, id).await?;
        outln!("Transform {id}:")?;
        for stage in &result.stages {
            let passed = stage
                .nodes
                .iter()
                .filter(|n| matches!(n.status.as_str(), "success" | "pass"))
                .count();
            outln!(
                "  stage {:<13} {}  {passed}/{} nodes ok, {} job(s)",
                stage.stage,
                if stage.succeeded { "ok    " } else { "FAILED" },
                stage.nodes.len(),
                stage.jobs.len()
            )?;
            if let Some(failure) = &stage.failure
                && !stage.succeeded
            {
                outln!("    {failure}")?;
                if let Some(class) = &stage.error_class {
                    outln!("    error class: {class}")?;
                }
                // Histories from before the log zone carry a redacted tail of their own.
                for line in &stage.log_tail {
                    outln!("    | {line}")?;
                }
            }
            // A recovered attempt's log stays worth a look, but only a failed stage prints it.
            if !stage.succeeded {
                logs.print(stage.log_key.as_deref(), "    ").await?;
            }
        }
        for check in &result.checks {
            outln!(
                "  check {:<45} {}  {}{}",
                check.name,
                if check.passed { "pass" } else { "FAIL" },
                check.observed,
                check
                    .error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )?;
            logs.print(check.log_key.as_deref(), "    ").await?;
        }
        ok &= last.transform_succeeded == Some(true);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILED)
    })
}

/// One table's change on one line: `ehr_patients: created, +2 partitions (1,204 rows)`.
fn describe_change(change: &lakegate_models::TableChange) -> String {
    let mut parts = Vec::new();
    if change.created {
        parts.push("created".to_owned());
    }
    let list = |label: &str, items: &[String]| format!("{label} [{}]", items.join(", "));
    if !change.columns_added.is_empty() {
        parts.push(list("columns added", &change.columns_added));
    }
    if !change.columns_removed.is_empty() {
        parts.push(list("columns removed", &change.columns_removed));
    }
    if !change.columns_retyped.is_empty() {
        parts.push(list("columns retyped", &change.columns_retyped));
    }
    if !change.partitions_added.is_empty() {
        parts.push(list("partitions added", &change.partitions_added));
    }
    if let Some(rows) = change.partition_rows {
        parts.push(format!("{rows} rows in the step's partitions"));
    }
    if parts.is_empty() {
        parts.push("unchanged".to_owned());
    }
    format!("{}: {}", change.table, parts.join(", "))
}

/// The log zone as the operator's CLI reads it: the lake's store of the configured backend.
struct StoredLogs<'a> {
    config: &'a LakeConfig,
    lines: usize,
    store: tokio::sync::OnceCell<std::sync::Arc<dyn lakegate_activities::ports::ObjectStore>>,
}

impl<'a> StoredLogs<'a> {
    fn new(config: &'a LakeConfig, lines: usize) -> Self {
        Self {
            config,
            lines,
            store: tokio::sync::OnceCell::new(),
        }
    }

    /// Prints the key and the last lines of the log at `key`, each through the redaction (defence
    /// in depth: the operator may paste this output anywhere). A log that cannot be read is
    /// reported, not fatal: the rest of the status still matters.
    async fn print(&self, key: Option<&str>, indent: &str) -> anyhow::Result<()> {
        let Some(key) = key else { return Ok(()) };
        if self.lines == 0 {
            outln!("{indent}log: {key}")?;
            return Ok(());
        }
        match self.tail(key).await {
            Ok(lines) => {
                outln!(
                    "{indent}log: {key} (last {} lines, values blanked)",
                    lines.len()
                )?;
                for line in lines {
                    outln!("{indent}| {line}")?;
                }
            }
            Err(e) => outln!("{indent}log: {key} (unreadable: {e:#})")?,
        }
        Ok(())
    }

    async fn tail(&self, key: &str) -> anyhow::Result<Vec<String>> {
        use lakegate_activities::ports::redact_log;
        use tokio::io::AsyncReadExt;
        let store = self
            .store
            .get_or_try_init(|| async {
                anyhow::Ok(lakegate::worker::ports(self.config).await?.store)
            })
            .await?;
        let mut body = store.get(key).await?;
        let mut bytes = Vec::new();
        body.read_to_end(&mut bytes).await?;
        let text = String::from_utf8_lossy(&bytes);
        let root = self.config.lake_root().display().to_string();
        // The whole log through the redaction, then the tail: a block of error lines that
        // starts above the tail is still recognised as one.
        let lines = redact_log(text.lines(), Some(root.trim_end_matches('/')));
        Ok(lines[lines.len().saturating_sub(self.lines)..].to_vec())
    }
}
