//! Runs per dataset: the crawl workflow's state and its last crawl, and the transform that
//! followed it, stage by stage (dbt nodes) with its checks. Tool text (dbt logs) stays out: the
//! page shows statuses and counts, as the workflows' results carry them.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::App;
use super::auth::Reviewer;
use super::html::{self, Chrome, esc};

#[derive(Deserialize, Default)]
pub struct Which {
    #[serde(default)]
    dataset: String,
}

pub async fn runs(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    Query(which): Query<Which>,
) -> Response {
    let body = match app.config.pipeline_settings() {
        Ok(Some(settings)) => {
            let mut datasets: Vec<String> = settings.transforms.keys().cloned().collect();
            if let Ok(contracts) = lakegate_validate::ContractSet::load_dir(&app.config.contracts) {
                datasets.extend(contracts.contracts().iter().map(|c| c.dataset.clone()));
            }
            datasets.sort();
            datasets.dedup();
            let mut body: String = datasets
                .iter()
                .map(|d| format!("<a href=\"/runs?dataset={}\">{}</a> ", html::url(d), esc(d)))
                .collect();
            body = format!("<nav aria-label=\"Datasets\">Datasets: {body}</nav>");
            let dataset = if which.dataset.is_empty() {
                datasets.first().cloned().unwrap_or_default()
            } else {
                which.dataset.clone()
            };
            if !dataset.is_empty() {
                body.push_str(&dataset_runs(&app, &settings.crawler_for(&dataset), &dataset).await);
            }
            body
        }
        Ok(None) => "<p>No pipeline is configured: files stop at raw/.</p>".to_owned(),
        Err(e) => format!("<p class=\"error\">{}</p>", esc(&format!("{e:#}"))),
    };
    let chrome = Chrome {
        title: "Runs",
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh: false,
    };
    Html(html::page(&chrome, &body)).into_response()
}

async fn dataset_runs(app: &App, crawler: &str, dataset: &str) -> String {
    let mut body = format!("<h2>{}</h2>", esc(dataset));
    let status = match crate::client::crawl_status(&app.client, crawler).await {
        Ok(status) => status,
        Err(_) => {
            body.push_str("<p id=\"no-crawl\">No crawl has run for this dataset yet.</p>");
            return body;
        }
    };
    body.push_str(&format!(
        "<p id=\"crawl-state\">Crawl workflow: <strong>{}</strong>, {} crawls done, {} prefixes waiting.</p>",
        esc(&status.phase),
        status.crawls_done,
        status.pending_prefixes
    ));
    let Some(last) = status.last else {
        return body;
    };
    body.push_str(&html::table(
        "crawl",
        &[
            "Crawl",
            "Status",
            "Prefixes",
            "Tables created",
            "Tables updated",
        ],
        &[vec![
            last.number.to_string(),
            esc(&last.status),
            last.prefixes.len().to_string(),
            esc(&last.tables_created.join(", ")),
            esc(&last.tables_updated.join(", ")),
        ]],
    ));
    let Some(id) = &last.transform_workflow_id else {
        return body;
    };
    let Ok(result) = crate::client::transform_status(&app.client, id).await else {
        return body;
    };
    body.push_str(&format!(
        "<h3>Transform {}: {}</h3>",
        esc(id),
        if result.succeeded {
            "succeeded"
        } else {
            "not succeeded"
        }
    ));
    let stages: Vec<Vec<String>> = result
        .stages
        .iter()
        .map(|s| {
            let ok = s
                .nodes
                .iter()
                .filter(|n| matches!(n.status.as_str(), "success" | "pass"))
                .count();
            vec![
                esc(&s.stage),
                if s.succeeded {
                    "<span class=\"pass\">ok</span>".into()
                } else {
                    "<span class=\"fail\">FAILED</span>".into()
                },
                format!("{ok}/{}", s.nodes.len()),
                s.jobs.len().to_string(),
            ]
        })
        .collect();
    body.push_str(&html::table(
        "stages",
        &["Stage", "Status", "dbt nodes ok", "Jobs"],
        &stages,
    ));
    let nodes: Vec<Vec<String>> = result
        .stages
        .iter()
        .flat_map(|s| {
            s.nodes
                .iter()
                .map(|n| vec![esc(&s.stage), esc(&n.unique_id), esc(&n.status)])
        })
        .collect();
    body.push_str(&html::table("nodes", &["Stage", "Node", "Status"], &nodes));
    let checks: Vec<Vec<String>> = result
        .checks
        .iter()
        .map(|c| {
            vec![
                esc(&c.name),
                if c.passed {
                    "<span class=\"pass\">pass</span>".into()
                } else {
                    "<span class=\"fail\">FAIL</span>".into()
                },
                esc(&c.observed),
            ]
        })
        .collect();
    body.push_str(&html::table(
        "checks",
        &["Check", "Result", "Observed"],
        &checks,
    ));
    body
}
