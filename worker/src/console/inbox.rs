//! The review inbox: files waiting for a person, found through Temporal visibility (the
//! `LakegatePhase` search attribute), their names and reasons read from each run's status query
//! and shown here only. Oldest first, filterable by dataset and reason; one form decides a row
//! or a selection.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt as _;
use lakegate_models::names::{self, search_attributes as sa};
use lakegate_models::{IngestPhase, IngestStatus};
use serde::Deserialize;
use temporalio_client::WorkflowListOptions;

use super::auth::Reviewer;
use super::file::{answer_words, decide as decide_one, parse_decision};
use super::html::{self, Chrome, esc};
use super::upload::file_of;
use super::{App, error_page, valid_workflow_id};

/// Files listed at most.
const MAX_LISTED: usize = 500;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    dataset: String,
    #[serde(default)]
    reason: String,
}

struct Waiting {
    id: String,
    since: u64,
    status: IngestStatus,
}

fn unix(t: Option<std::time::SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// A value safe to put between quotes in a visibility query.
fn plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

async fn waiting(app: &App, dataset: &str) -> anyhow::Result<Vec<Waiting>> {
    let mut query = format!(
        "WorkflowType = '{}' AND ExecutionStatus = 'Running' AND {} = '{}'",
        names::INGEST_FILE_WORKFLOW,
        sa::PHASE,
        IngestPhase::AwaitingReview.as_str()
    );
    if plain(dataset) {
        query.push_str(&format!(" AND {} = '{dataset}'", sa::DATASET));
    }
    let mut runs = app.client.list_workflows(
        query,
        WorkflowListOptions::builder().limit(MAX_LISTED).build(),
    );
    let mut found = Vec::new();
    while let Some(run) = runs.next().await {
        let run = run?;
        found.push((run.id().to_owned(), unix(run.start_time())));
    }
    let statuses = futures::future::join_all(
        found
            .iter()
            .map(|(id, _)| crate::client::query_status(&app.client, id)),
    )
    .await;
    let mut waiting: Vec<Waiting> = found
        .into_iter()
        .zip(statuses)
        .filter_map(|((id, start), status)| {
            let status = status.ok()?;
            // Visibility lags the workflow a little: trust the status query.
            (status.phase == IngestPhase::AwaitingReview && status.review.is_none()).then(|| {
                Waiting {
                    id,
                    since: status.awaiting_review_since.unwrap_or(start),
                    status,
                }
            })
        })
        .collect();
    waiting.sort_by_key(|w| (w.since, w.id.clone()));
    Ok(waiting)
}

pub async fn inbox(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    Query(filter): Query<Filter>,
) -> Response {
    let all = match waiting(&app, "").await {
        Ok(all) => all,
        Err(e) => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                &reviewer,
                &format!("cannot list runs from Temporal: {e:#}"),
            );
        }
    };
    let dataset_of = |w: &Waiting| w.status.contract.as_ref().map(|c| c.dataset.clone());
    let reason_of = |w: &Waiting| w.status.quarantine_reason.clone().unwrap_or_default();
    let mut datasets: Vec<String> = all.iter().filter_map(dataset_of).collect();
    datasets.sort();
    datasets.dedup();
    let mut reasons: Vec<String> = all.iter().map(reason_of).collect();
    reasons.sort();
    reasons.dedup();
    let shown: Vec<&Waiting> = all
        .iter()
        .filter(|w| filter.dataset.is_empty() || dataset_of(w).as_deref() == Some(&filter.dataset))
        .filter(|w| filter.reason.is_empty() || reason_of(w) == filter.reason)
        .collect();
    let select = |name: &str, label: &str, values: &[String], chosen: &str| {
        let options: String = std::iter::once(String::new())
            .chain(values.iter().cloned())
            .map(|v| {
                format!(
                    "<option value=\"{0}\"{1}>{2}</option>",
                    esc(&v),
                    if v == chosen { " selected" } else { "" },
                    if v.is_empty() {
                        "all".to_owned()
                    } else {
                        esc(&v)
                    }
                )
            })
            .collect();
        format!(
            "<label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\">{options}</select>"
        )
    };
    let mut body = format!(
        "<form method=\"get\" action=\"/inbox\"><fieldset><legend>Filter</legend>{}{}\
         <button type=\"submit\">Filter</button></fieldset></form>",
        select("dataset", "Dataset", &datasets, &filter.dataset),
        select("reason", "Reason", &reasons, &filter.reason)
    );
    if shown.is_empty() {
        body.push_str("<p id=\"inbox-empty\">No file is waiting for review.</p>");
        return page(&reviewer, &body);
    }
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|w| {
            let name = file_of(&w.status.key);
            let (dataset, table) = w
                .status
                .contract
                .as_ref()
                .map_or((String::new(), String::new()), |c| {
                    (c.dataset.clone(), c.table.clone())
                });
            vec![
                format!(
                    "<input type=\"checkbox\" name=\"id\" value=\"{0}\" id=\"sel-{0}\" aria-label=\"Select {1}\">",
                    esc(&w.id),
                    esc(name)
                ),
                format!("<a href=\"/files/{}\">{}</a>", esc(&w.id), esc(name)),
                esc(&dataset),
                esc(&table),
                esc(&reason_of(w)),
                esc(&html::when(w.since)),
                w.status
                    .review_deadline
                    .map(|d| esc(&html::when(d)))
                    .unwrap_or_default(),
                format!(
                    "<button type=\"submit\" name=\"one\" value=\"approve {0}\" aria-label=\"Approve {1}\">Approve</button>\
                     <button type=\"submit\" name=\"one\" value=\"reject {0}\" aria-label=\"Reject {1}\">Reject</button>",
                    esc(&w.id),
                    esc(name)
                ),
            ]
        })
        .collect();
    body.push_str(&format!(
        "<form method=\"post\" action=\"/decide\">{}\
         <label for=\"reason\">Reason for the decision (recorded in the history)</label>\
         <input id=\"reason\" name=\"reason\" size=\"60\">{}\
         <fieldset><legend>Selected files</legend>\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Approve selected</button>\
         <button type=\"submit\" name=\"decision\" value=\"reject\">Reject selected</button></fieldset></form>",
        html::csrf_field(&reviewer.csrf),
        html::table(
            "inbox",
            &["", "File", "Dataset", "Table", "Reason", "Waiting since", "Deadline", "Decide"],
            &rows
        )
    ));
    page(&reviewer, &body)
}

fn page(reviewer: &Reviewer, body: &str) -> Response {
    let chrome = Chrome {
        title: "Review inbox",
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh: false,
    };
    Html(html::page(&chrome, body)).into_response()
}

/// One row's decision (the row's own button) or the selection's (the bulk buttons).
pub async fn decide(State(app): State<Arc<App>>, reviewer: Reviewer, body: Bytes) -> Response {
    let mut csrf = String::new();
    let mut reason = String::new();
    let mut decision = String::new();
    let mut one = None;
    let mut ids = Vec::new();
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "csrf" => csrf = v.into_owned(),
            "reason" => reason = v.into_owned(),
            "decision" => decision = v.into_owned(),
            "one" => one = Some(v.into_owned()),
            "id" => ids.push(v.into_owned()),
            _ => {}
        }
    }
    if let Err(denied) = reviewer.check(&app, &csrf) {
        return denied.into_response();
    }
    if let Some(one) = one {
        let Some((d, id)) = one.split_once(' ') else {
            return error_page(StatusCode::BAD_REQUEST, &reviewer, "malformed decision");
        };
        decision = d.to_owned();
        ids = vec![id.to_owned()];
    }
    let Some(decision) = parse_decision(&decision) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &reviewer,
            "decide approve or reject",
        );
    };
    if ids.is_empty() {
        return error_page(
            StatusCode::BAD_REQUEST,
            &reviewer,
            "select at least one file",
        );
    }
    ids.retain(|id| valid_workflow_id(id));
    let answers = futures::future::join_all(
        ids.iter()
            .map(|id| decide_one(&app, &reviewer, id, decision, &reason)),
    )
    .await;
    let rows: Vec<Vec<String>> = ids
        .iter()
        .zip(answers)
        .map(|(id, answer)| {
            let (class, text) = match answer {
                Ok(outcome) => ("pass", answer_words(&outcome)),
                Err(refused) => ("fail", format!("not decided: {refused}")),
            };
            vec![
                format!("<a href=\"/files/{0}\">{0}</a>", esc(id)),
                format!("<span class=\"{class}\">{}</span>", esc(&text)),
            ]
        })
        .collect();
    let body = format!(
        "{}<p><a href=\"/inbox\">Back to the inbox</a></p>",
        html::table("answers", &["Run", "Answer"], &rows)
    );
    let chrome = Chrome {
        title: "Decisions",
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh: false,
    };
    Html(html::page(&chrome, &body)).into_response()
}
