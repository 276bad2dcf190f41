//! The checks at the end of a run: where every file is, and what became of every workflow.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use futures::TryStreamExt;
use lakegate_models::{Zone, names};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowExecutionStatus, WorkflowListOptions,
};

use super::ChaosReport;
use super::plan::{Planned, fate_name};

pub(super) async fn count(client: &Client, query: &str) -> anyhow::Result<usize> {
    Ok(client
        .count_workflows(query.to_owned(), WorkflowCountOptions::default())
        .await?
        .count())
}

pub(super) fn closed_query() -> String {
    format!(
        "WorkflowType='{}' AND ExecutionStatus!='Running'",
        names::INGEST_FILE_WORKFLOW
    )
}
pub(super) fn zone_name(zone: Zone) -> &'static str {
    match zone {
        Zone::Landing => "landing",
        Zone::Raw => "raw",
        Zone::Quarantine => "quarantine",
        Zone::Rejected => "rejected",
    }
}

/// Walks the lake folder itself (not the store's listing), so a second name for a file, left by
/// a move cut short, is seen too.
pub(super) fn check_lake(
    planned: &[Planned],
    lake: &Path,
    report: &mut ChaosReport,
) -> anyhow::Result<()> {
    let mut found: HashMap<String, Vec<(Zone, String)>> = HashMap::new();
    for zone in Zone::ALL {
        report.zones.insert(zone_name(zone), 0);
    }
    let mut stack = vec![lake.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(lake)?
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if lakegate_models::RECORD_AREAS
                .iter()
                .any(|area| key.starts_with(area))
            {
                continue;
            }
            let Some(zone) = Zone::of_key(&key) else {
                report.problems.push(format!("{key} is outside every zone"));
                continue;
            };
            *report.zones.entry(zone_name(zone)).or_default() += 1;
            let sha = lakegate_local::content_sha256(&path)?;
            found.entry(sha).or_default().push((zone, key));
        }
    }
    let mut known = HashSet::new();
    for p in planned {
        known.insert(p.sha256.as_str());
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        match found.get(&p.sha256).map(Vec::as_slice) {
            None | Some([]) => report.problems.push(format!("{name} is lost: in no zone")),
            Some([(zone, _)]) if *zone == p.fate.zone() => report.files_in_expected_zone += 1,
            Some([(zone, key)]) => report.problems.push(format!(
                "{name} ({}) is in {}, expected {}: {key}",
                fate_name(p.fate),
                zone_name(*zone),
                zone_name(p.fate.zone())
            )),
            Some(places) => {
                let keys: Vec<&str> = places.iter().map(|(_, k)| k.as_str()).collect();
                report
                    .problems
                    .push(format!("{name} is in {} places: {keys:?}", places.len()));
            }
        }
    }
    for (sha, places) in &found {
        let raw = places.iter().filter(|(z, _)| *z == Zone::Raw).count();
        if raw > 1 {
            report.raw_duplicates += 1;
        }
        if !known.contains(sha.as_str()) {
            let keys: Vec<&str> = places.iter().map(|(_, k)| k.as_str()).collect();
            report
                .problems
                .push(format!("objects no generated file explains: {keys:?}"));
        }
    }
    if report.raw_duplicates > 0 {
        report.problems.push(format!(
            "{} content(s) are in raw/ more than once",
            report.raw_duplicates
        ));
    }
    Ok(())
}

pub(super) async fn check_workflows(
    client: &Client,
    planned: &[Planned],
    report: &mut ChaosReport,
) -> anyhow::Result<()> {
    let query = format!("WorkflowType='{}'", names::INGEST_FILE_WORKFLOW);
    let runs: Vec<(String, WorkflowExecutionStatus)> = client
        .list_workflows(query, WorkflowListOptions::default())
        .map_ok(|w| (w.id().to_owned(), w.status()))
        .try_collect()
        .await
        .context("listing ingest workflows")?;
    report.workflows = runs.len();
    let mut by_id: HashMap<&str, Vec<WorkflowExecutionStatus>> = HashMap::new();
    for (id, status) in &runs {
        by_id.entry(id.as_str()).or_default().push(*status);
        if *status == WorkflowExecutionStatus::Completed {
            report.workflows_completed += 1;
        }
    }
    for p in planned {
        let name = p.path.file_name().unwrap_or_default().to_string_lossy();
        match by_id.remove(p.workflow_id.as_str()).as_deref() {
            None => report
                .problems
                .push(format!("{name} has no workflow {}", p.workflow_id)),
            Some([WorkflowExecutionStatus::Completed]) => {}
            Some(statuses) => report.problems.push(format!(
                "{name}: workflow {} has runs {statuses:?}, expected one Completed ({})",
                p.workflow_id,
                failure_reason(client, &p.workflow_id).await
            )),
        }
    }
    for (id, statuses) in by_id {
        report.problems.push(format!(
            "workflow {id} ({statuses:?}) belongs to no generated file"
        ));
    }
    Ok(())
}

/// Why the latest run failed, with its causes: the first thing to know when a chaos run finds a
/// failed file (failures carry ids and hashed keys only, so the report stays PHI-free).
async fn failure_reason(client: &Client, workflow_id: &str) -> String {
    let history = match lakegate::replay::fetch_history(client, workflow_id, None).await {
        Ok(loaded) => serde_json::to_value(&loaded.history).unwrap_or_default(),
        Err(e) => return format!("its history could not be read: {e}"),
    };
    let events = history["events"].as_array().cloned().unwrap_or_default();
    let mut failure = crate::events::failure_of_run(&events);
    let mut messages = Vec::new();
    while let Some(f) = failure.filter(|f| f.is_object()) {
        if let Some(m) = f["message"].as_str() {
            messages.push(m.to_owned());
        }
        failure = f.get("cause");
    }
    if messages.is_empty() {
        "no failure recorded".into()
    } else {
        messages.join(": ")
    }
}
