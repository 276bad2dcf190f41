//! The PHI leak scan: every workflow history on a server, as the Temporal CLI dumps it
//! (`temporal workflow show --output json`, payloads base64-decoded) both as the server stores it
//! and, with a codec server, decrypted, and the given log files, searched for sentinel values that
//! were planted in data files. A sentinel found anywhere means a cell
//! value left the file; the scan names where and which sentinel, never what surrounds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use temporalio_client::{Client, WorkflowListOptions};

/// Where a sentinel was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// `workflow <id> run <run id>` or `log <path>`.
    pub place: String,
    /// The planted value as found: the sentinel and the letters, digits and dashes that follow it
    /// (the sentinel's own suffix), nothing else.
    pub sentinel: String,
}

#[derive(Debug, Clone, Default)]
pub struct LeakScan {
    /// Workflow runs whose history was dumped and searched.
    pub histories: usize,
    /// Payloads decoded from those histories (inputs, results, search attributes, failures...).
    pub payloads: usize,
    /// Of those, payloads the server stores encrypted (each decrypted through the codec server).
    pub encrypted: usize,
    pub log_files: usize,
    /// Bytes searched: history JSON, decoded payloads and logs.
    pub bytes: u64,
    pub leaks: Vec<Leak>,
}

impl LeakScan {
    /// Fails naming each place and sentinel found.
    pub fn ensure_clean(&self) -> anyhow::Result<()> {
        if self.leaks.is_empty() {
            return Ok(());
        }
        let places: Vec<String> = self
            .leaks
            .iter()
            .map(|l| format!("  {} in {}", l.sentinel, l.place))
            .collect();
        bail!(
            "{} planted sentinel(s) left their files:\n{}",
            self.leaks.len(),
            places.join("\n")
        )
    }
}

impl std::fmt::Display for LeakScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} workflow histories ({} payloads decoded, {} of them stored encrypted) and {} log \
             files, {:.1} MB searched: {}",
            self.histories,
            self.payloads,
            self.encrypted,
            self.log_files,
            self.bytes as f64 / 1e6,
            if self.leaks.is_empty() {
                "no sentinel found".to_owned()
            } else {
                format!("{} LEAKS", self.leaks.len())
            }
        )
    }
}

/// Histories dumped at once: each dump is one `temporal` process.
const PARALLEL_DUMPS: usize = 4;

/// Searches every workflow run on the server at `address` (all types, open and closed, every run
/// of a continued-as-new chain) and every file in `logs` for each of `sentinels`. The histories
/// come from the virtualenv's `temporal workflow show --output json`, the form an auditor would
/// export, with every payload base64-decoded so a value inside an input or a result is seen.
///
/// Errors (rather than passing) when there is nothing to search: no workflow on the server, or
/// a history without a single payload, would make a clean result meaningless.
///
/// With `codec_endpoint`, each history is also dumped through that codec server and searched
/// decrypted, and the scan fails unless every encrypted payload decrypted there.
pub async fn scan(
    client: &Client,
    address: &str,
    codec_endpoint: Option<&str>,
    sentinels: &[String],
    logs: &[PathBuf],
) -> anyhow::Result<LeakScan> {
    anyhow::ensure!(!sentinels.is_empty(), "no sentinels to search for");
    anyhow::ensure!(
        sentinels.iter().all(|s| s.len() >= 6),
        "sentinels shorter than 6 characters would match ordinary text"
    );
    let runs: Vec<(String, String)> = client
        .list_workflows("", WorkflowListOptions::default())
        .map_ok(|w| (w.id().to_owned(), w.run_id().to_owned()))
        .try_collect()
        .await
        .context("listing workflows")?;
    anyhow::ensure!(!runs.is_empty(), "no workflows on {address} to scan");
    let temporal = crate::venv().join("bin/temporal");
    let dumps = futures::stream::iter(runs.into_iter().map(|(id, run)| {
        let temporal = temporal.clone();
        async move {
            let json = dump_history(&temporal, address, None, &id, &run).await?;
            let decrypted = match codec_endpoint {
                Some(endpoint) => {
                    Some(dump_history(&temporal, address, Some(endpoint), &id, &run).await?)
                }
                None => None,
            };
            anyhow::Ok((id, run, json, decrypted))
        }
    }))
    .buffer_unordered(PARALLEL_DUMPS);
    futures::pin_mut!(dumps);

    let mut report = LeakScan::default();
    while let Some(dump) = dumps.next().await {
        let (id, run, json, decrypted) = dump?;
        let place = format!("workflow {id} run {run}");
        let (text, decoded, encrypted) = searchable(&json, &place)?;
        anyhow::ensure!(decoded > 0, "no payloads found in the history of {place}");
        report.histories += 1;
        report.payloads += decoded;
        report.encrypted += encrypted;
        report.bytes += text.len() as u64;
        find(&text, sentinels, &place, &mut report.leaks);
        if let Some(decrypted) = decrypted {
            let place = format!("{place} (decrypted)");
            let (text, _, left) = searchable(&decrypted, &place)?;
            anyhow::ensure!(
                left == 0,
                "{left} payloads of {place} did not decrypt through the codec server"
            );
            report.bytes += text.len() as u64;
            find(&text, sentinels, &place, &mut report.leaks);
        }
    }
    for log in logs {
        let bytes = std::fs::read(log).with_context(|| format!("reading {}", log.display()))?;
        report.log_files += 1;
        report.bytes += bytes.len() as u64;
        find(
            &String::from_utf8_lossy(&bytes),
            sentinels,
            &format!("log {}", log.display()),
            &mut report.leaks,
        );
    }
    Ok(report)
}

/// The dump's text with every payload's data base64-decoded, how many payloads it has and how many
/// of them are encrypted.
fn searchable(json: &[u8], place: &str) -> anyhow::Result<(String, usize, usize)> {
    let value: serde_json::Value =
        serde_json::from_slice(json).with_context(|| format!("history of {place} is not JSON"))?;
    let mut text = String::from_utf8_lossy(json).into_owned();
    let mut decoded = 0;
    crate::decode_payloads(&value, &mut text, &mut decoded);
    // `binary/encrypted` as the dump spells a payload's encoding (base64 of the metadata value).
    let encrypted = text.matches("\"YmluYXJ5L2VuY3J5cHRlZA==\"").count();
    Ok((text, decoded, encrypted))
}

async fn dump_history(
    temporal: &Path,
    address: &str,
    codec_endpoint: Option<&str>,
    workflow_id: &str,
    run_id: &str,
) -> anyhow::Result<Vec<u8>> {
    let mut command = tokio::process::Command::new(temporal);
    if let Some(endpoint) = codec_endpoint {
        command.args(["--codec-endpoint", endpoint]);
    }
    command
        .args(["workflow", "show", "--output", "json", "--address", address])
        .args(["--namespace", "default", "--workflow-id", workflow_id])
        .args(["--run-id", run_id])
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .with_context(|| format!("temporal workflow show {workflow_id} timed out"))?
        .with_context(|| format!("running {}", temporal.display()))?;
    if !output.status.success() {
        bail!(
            "temporal workflow show {workflow_id} run {run_id} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// The sentinels in `text`, named by `place`: for output a test captured itself (a CLI's).
pub fn find_in(text: &str, sentinels: &[String], place: &str) -> Vec<Leak> {
    let mut leaks = Vec::new();
    find(text, sentinels, place, &mut leaks);
    leaks
}

/// What the server's visibility store shows of every workflow, as an auditor would list it:
/// `temporal workflow list --output json` (search attributes, memo, types, ids) and each run's
/// `temporal workflow describe --output json` (pending activities, their last failures too),
/// without a codec, every payload base64-decoded; searched for the sentinels. Search attributes
/// are indexed in clear, whatever the codec does, so nothing in them may be PHI.
pub async fn scan_visibility(address: &str, sentinels: &[String]) -> anyhow::Result<LeakScan> {
    let temporal = crate::venv().join("bin/temporal");
    let run = |args: Vec<String>| {
        let temporal = temporal.clone();
        async move {
            let output = tokio::time::timeout(
                Duration::from_secs(120),
                tokio::process::Command::new(&temporal)
                    .args(&args)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .context("temporal timed out")??;
            anyhow::ensure!(
                output.status.success(),
                "temporal {args:?}: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            anyhow::Ok(output.stdout)
        }
    };
    let base = |verb: &str| -> Vec<String> {
        ["workflow", verb, "--output", "json", "--address", address]
            .into_iter()
            .map(str::to_owned)
            .chain(["--namespace".into(), "default".into()])
            .collect()
    };
    let listing = run(base("list")).await?;
    let mut report = LeakScan::default();
    let mut texts = vec![("workflow list".to_owned(), listing.clone())];
    let listed: Vec<serde_json::Value> = match serde_json::from_slice(&listing) {
        Ok(serde_json::Value::Array(items)) => items,
        _ => String::from_utf8_lossy(&listing)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    };
    anyhow::ensure!(!listed.is_empty(), "no workflows listed on {address}");
    for item in &listed {
        let execution = &item["execution"];
        let (Some(id), Some(run_id)) = (
            execution["workflowId"].as_str(),
            execution["runId"].as_str(),
        ) else {
            bail!("a listed workflow without an id: {item}");
        };
        let mut args = base("describe");
        args.extend([
            "--workflow-id".into(),
            id.into(),
            "--run-id".into(),
            run_id.into(),
        ]);
        texts.push((format!("describe {id} run {run_id}"), run(args).await?));
    }
    for (place, bytes) in texts {
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::new()));
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        let mut decoded = 0;
        crate::decode_payloads(&value, &mut text, &mut decoded);
        report.histories += 1;
        report.payloads += decoded;
        report.bytes += text.len() as u64;
        find(&text, sentinels, &place, &mut report.leaks);
    }
    Ok(report)
}

fn find(text: &str, sentinels: &[String], place: &str, leaks: &mut Vec<Leak>) {
    for sentinel in sentinels {
        for (at, _) in text.match_indices(sentinel.as_str()) {
            let rest = &text[at + sentinel.len()..];
            let suffix = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .map_or(rest, |end| &rest[..end]);
            let found = format!("{sentinel}{suffix}");
            let leak = Leak {
                place: place.to_owned(),
                sentinel: found,
            };
            if !leaks.contains(&leak) {
                leaks.push(leak);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_found_sentinel_is_named_without_its_surroundings() {
        let mut leaks = Vec::new();
        let text = "{\"FIRST\":\"ZZLEAK-ab12-7\",\"LAST\":\"Moore338\"} and ZZLEAK-ab12-7 again";
        find(text, &["ZZLEAK-ab12".to_owned()], "log x", &mut leaks);
        assert_eq!(
            leaks,
            [Leak {
                place: "log x".into(),
                sentinel: "ZZLEAK-ab12-7".into()
            }]
        );
        let error = LeakScan {
            leaks,
            ..LeakScan::default()
        }
        .ensure_clean()
        .unwrap_err()
        .to_string();
        assert!(error.contains("ZZLEAK-ab12-7 in log x"), "{error}");
        assert!(!error.contains("Moore338"), "{error}");
    }
}
