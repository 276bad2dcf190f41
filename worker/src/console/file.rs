//! A file's page: what validation found, the decision form (through the `review` Update, whose
//! answer or refusal the reviewer sees), and the first failing rows on demand. Those rows are read here, straight from the quarantined object, and shown to the
//! signed-in reviewer only; they never pass through Temporal or a log, and every view is written
//! to the audit log in the lake (`audit/console/`).

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use lakegate_models::{Decision, IngestPhase, IngestStatus, ReviewOutcome, ReviewSignal, Zone};
use lakegate_validate::{Compression, ContractSet, FormatKind, FormatSpec};
use serde::{Deserialize, Serialize};
use temporalio_client::WorkflowListOptions;

use super::auth::Reviewer;
use super::html::{self, Chrome, esc};
use super::upload::{file_of, phase_words};
use super::{App, error_page, valid_workflow_id};

/// Failing rows shown at most per view.
pub const MAX_ROWS_SHOWN: usize = 20;
/// Where the console's audit records go in the lake.
pub const AUDIT_PREFIX: &str = "audit/console/";

fn render(reviewer: &Reviewer, title: &str, body: &str) -> Response {
    let chrome = Chrome {
        title,
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh: false,
    };
    Html(html::page(&chrome, body)).into_response()
}

/// The run id of the latest run of a workflow, for the Web UI link.
async fn run_id(app: &App, id: &str) -> Option<String> {
    use futures::StreamExt as _;
    let query = format!("WorkflowId = '{id}'");
    let mut runs = app
        .client
        .list_workflows(query, WorkflowListOptions::builder().limit(1).build());
    runs.next().await?.ok().map(|w| w.run_id().to_owned())
}

pub async fn page_of(app: &App, reviewer: &Reviewer, id: &str, answered: Option<&str>) -> Response {
    if !valid_workflow_id(id) {
        return error_page(StatusCode::NOT_FOUND, reviewer, "no such file");
    }
    let status = match crate::client::query_status(&app.client, id).await {
        Ok(status) => status,
        Err(_) => return error_page(StatusCode::NOT_FOUND, reviewer, "no such file"),
    };
    let mut body = String::new();
    let contract = status
        .contract
        .as_ref()
        .map(|c| format!("{} / {}", c.dataset, c.table))
        .unwrap_or_else(|| "none matches".into());
    body.push_str(&html::table(
        "summary",
        &["File", "Dataset / table", "Status", "Zone"],
        &[vec![
            esc(file_of(&status.key)),
            esc(&contract),
            format!("<span id=\"phase\">{}</span>", esc(&phase_words(&status))),
            esc(status.zone.prefix()),
        ]],
    ));
    // After a decision made here (the redirect names the outcome's kind; the words come from
    // the status, so no key travels in a URL).
    if let Some(kind) = answered {
        let words = match (kind, status.phase) {
            ("promoted", IngestPhase::Promoted) => Some(answer_words(&ReviewOutcome::Promoted {
                key: status.key.clone(),
            })),
            ("rejected", IngestPhase::Rejected) => Some(answer_words(&ReviewOutcome::Rejected {
                key: status.key.clone(),
            })),
            ("waiting", IngestPhase::AwaitingReview) => status
                .quarantine_reason
                .as_ref()
                .map(|reason| format!("still waiting: {reason}")),
            _ => None,
        };
        if let Some(words) = words {
            body.push_str(&format!(
                "<p class=\"note\" id=\"answer\" role=\"status\">The workflow answered: \
                 <strong>{}</strong></p>",
                esc(&words)
            ));
        }
    }
    if let Some(review) = &status.review {
        body.push_str(&format!(
            "<p class=\"note\" id=\"decision\">Decided: <strong>{}</strong> by <strong>{}</strong>{}</p>",
            match review.decision {
                Decision::Approve => "approve",
                Decision::Reject => "reject",
            },
            esc(&review.reviewer),
            if review.reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", esc(&review.reason))
            }
        ));
    }
    if let Some(report) = &status.report {
        body.push_str(&format!(
            "<h2>Validation report</h2><p>{} rows, {} bytes, verdict <strong>{:?}</strong>.</p>",
            report.rows, report.bytes, report.verdict
        ));
        let rows: Vec<Vec<String>> = report
            .rules
            .iter()
            .map(|r| {
                vec![
                    esc(&r.rule),
                    esc(r.column.as_deref().unwrap_or("")),
                    format!("{:?}", r.severity).to_lowercase(),
                    if r.passed {
                        "<span class=\"pass\">pass</span>".into()
                    } else {
                        "<span class=\"fail\">FAIL</span>".into()
                    },
                    r.failures.to_string(),
                    esc(&r
                        .first_rows
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")),
                    esc(&r.detail),
                ]
            })
            .collect();
        body.push_str(&html::table(
            "report",
            &[
                "Rule",
                "Column",
                "Severity",
                "Result",
                "Failures",
                "First failing rows",
                "Detail",
            ],
            &rows,
        ));
    }
    // Also after an approval that could not promote (no contract yet): the file stays reviewable.
    if status.phase == IngestPhase::AwaitingReview {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/files/{id}/review\"><fieldset><legend>Decide</legend>{}\
             <label for=\"reason\">Reason (recorded in the history)</label>\
             <input id=\"reason\" name=\"reason\" size=\"60\" required>\
             <button type=\"submit\" name=\"decision\" value=\"approve\">Approve: promote to raw/</button>\
             <button type=\"submit\" name=\"decision\" value=\"reject\">Reject: move to rejected/</button>\
             </fieldset></form>",
            html::csrf_field(&reviewer.csrf)
        ));
    }
    if status.zone == Zone::Quarantine {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/files/{id}/rows\">{}\
             <button type=\"submit\">Show the first failing rows</button> \
             (read from the quarantined file; your view is written to the audit log)</form>",
            html::csrf_field(&reviewer.csrf)
        ));
    }
    if let Some(run) = run_id(app, id).await {
        body.push_str(&format!(
            "<p><a id=\"ui-link\" href=\"{}\">This run in the Temporal Web UI</a></p>",
            esc(&app.ui_link(id, &run))
        ));
    }
    body.push_str("<p><a href=\"/inbox\">Back to the inbox</a></p>");
    render(reviewer, file_of(&status.key), &body)
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    /// Set by the redirect after a decision: `promoted`, `rejected` or `waiting`.
    #[serde(default)]
    answer: Option<String>,
}

pub async fn page(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    page_of(&app, &reviewer, &id, query.answer.as_deref()).await
}

#[derive(Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
}

pub async fn review(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ReviewForm>,
) -> Response {
    if let Err(denied) = reviewer.check(&app, &form.csrf) {
        return denied.into_response();
    }
    let Some(decision) = parse_decision(&form.decision) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &reviewer,
            "decide approve or reject",
        );
    };
    match decide(&app, &reviewer, &id, decision, &form.reason).await {
        // Post/redirect/get: a reload shows the page, it does not decide again.
        Ok(outcome) => {
            let kind = match outcome {
                ReviewOutcome::Promoted { .. } => "promoted",
                ReviewOutcome::Rejected { .. } => "rejected",
                ReviewOutcome::Waiting { .. } => "waiting",
            };
            Redirect::to(&format!("/files/{id}?answer={kind}")).into_response()
        }
        Err(e) => error_page(
            StatusCode::CONFLICT,
            &reviewer,
            &format!("Not decided. The workflow answered: {e}"),
        ),
    }
}

pub fn parse_decision(text: &str) -> Option<Decision> {
    match text {
        "approve" => Some(Decision::Approve),
        "reject" => Some(Decision::Reject),
        _ => None,
    }
}

/// Decides through the `review` Update as the signed-in reviewer and returns what the workflow
/// answered once it acted, or its refusal (the validator's message: not in quarantine yet,
/// already decided, another review first), which names a rule, never a value.
pub async fn decide(
    app: &App,
    reviewer: &Reviewer,
    id: &str,
    decision: Decision,
    reason: &str,
) -> Result<ReviewOutcome, String> {
    if !valid_workflow_id(id) {
        return Err("no such file".into());
    }
    let review = ReviewSignal {
        decision,
        reviewer: reviewer.name.clone(),
        reason: reason.to_owned(),
    };
    crate::client::review(&app.client, id, &review)
        .await
        .map_err(|e| format!("{e:#}"))?
}

/// A review's outcome in the console's words (the file name only: the page already says where).
pub fn answer_words(outcome: &ReviewOutcome) -> String {
    match outcome {
        ReviewOutcome::Promoted { key } => format!("promoted to {key}"),
        // Said once: the bulk answers page is read for the word.
        ReviewOutcome::Rejected { key } => {
            format!("rejected ({} moved out of quarantine)", file_of(key))
        }
        ReviewOutcome::Waiting { reason } => format!("still waiting: {reason}"),
    }
}

/// One audit record: who saw which file's failing rows, when. Lives in the lake only.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditRecord {
    pub action: String,
    pub at_unix: u64,
    pub reviewer: String,
    pub workflow_id: String,
    pub key: String,
    pub rows: Vec<u64>,
}

pub async fn failing_rows(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<super::CsrfForm>,
) -> Response {
    if let Err(denied) = reviewer.check(&app, &form.csrf) {
        return denied.into_response();
    }
    if !valid_workflow_id(&id) {
        return error_page(StatusCode::NOT_FOUND, &reviewer, "no such file");
    }
    let Ok(status) = crate::client::query_status(&app.client, &id).await else {
        return error_page(StatusCode::NOT_FOUND, &reviewer, "no such file");
    };
    if status.zone != Zone::Quarantine {
        return error_page(
            StatusCode::CONFLICT,
            &reviewer,
            "the file is no longer in quarantine",
        );
    }
    let wanted: BTreeSet<u64> = status
        .report
        .iter()
        .flat_map(|r| r.rules.iter().filter(|r| !r.passed))
        .flat_map(|r| r.first_rows.iter().copied())
        .take(MAX_ROWS_SHOWN * 8)
        .collect();
    let wanted: Vec<u64> = wanted.into_iter().take(MAX_ROWS_SHOWN).collect();
    let format = format_of(&app, &status);
    // Audit first: a view that cannot be recorded is not shown.
    let record = AuditRecord {
        action: "view_failing_rows".into(),
        at_unix: now(),
        reviewer: reviewer.name.clone(),
        workflow_id: id.clone(),
        key: status.key.clone(),
        rows: wanted.clone(),
    };
    if let Err(e) = write_audit(&app, &record).await {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &reviewer,
            &format!("the audit log cannot be written, so the rows are not shown: {e:#}"),
        );
    }
    let rows = match read_rows(&app, &status.key, format, wanted.clone()).await {
        Ok(rows) => rows,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &reviewer,
                &format!("cannot read the quarantined file: {e:#}"),
            );
        }
    };
    let mut body = format!(
        "<p class=\"note\">Shown to <strong>{}</strong>; this view is recorded in the audit log. \
         Row numbers count data rows from 1, as the report does.</p>",
        esc(&reviewer.name)
    );
    let width = rows
        .header
        .len()
        .max(rows.rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0));
    let mut headers: Vec<String> = vec!["Row".into()];
    headers.extend((0..width).map(|i| rows.header.get(i).cloned().unwrap_or_default()));
    let header_refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|(n, row)| {
            std::iter::once(n.to_string())
                .chain(row.iter().map(|c| esc(c)))
                .collect()
        })
        .collect();
    body.push_str(&html::table("failing-rows", &header_refs, &cells));
    body.push_str(&format!(
        "<p><a href=\"/files/{id}\">Back to the file</a></p>"
    ));
    let mut response = render(
        &reviewer,
        &format!("Failing rows of {}", file_of(&status.key)),
        &body,
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn format_of(app: &App, status: &IngestStatus) -> FormatSpec {
    let contracts = ContractSet::load_dir(&app.config.contracts).unwrap_or_default();
    status
        .contract
        .as_ref()
        .and_then(|c| contracts.table(&c.dataset, &c.table))
        .map(|(_, t)| t.format.clone())
        .unwrap_or_default()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn write_audit(app: &App, record: &AuditRecord) -> anyhow::Result<()> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let day = lakegate_models::civil_date_from_unix(i64::try_from(record.at_unix)?);
    let tag = hex::encode(&super::auth::random_bytes()?[..4]);
    let key = format!("{AUDIT_PREFIX}{day}/{nanos}-{tag}.json");
    app.store
        .put(&key, Bytes::from(serde_json::to_vec(record)?))
        .await?;
    Ok(())
}

struct Rows {
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

/// The wanted data rows (1-based) of the object, read as a stream up to the last one wanted.
async fn read_rows(
    app: &App,
    key: &str,
    format: FormatSpec,
    wanted: Vec<u64>,
) -> anyhow::Result<Rows> {
    let stream = app.store.get(key).await?;
    let gzip = match format.compression {
        Compression::Gzip => true,
        Compression::None => false,
        Compression::Auto => key.ends_with(".gz"),
    };
    tokio::task::spawn_blocking(move || {
        let reader = tokio_util::io::SyncIoBridge::new(stream);
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        match format.kind {
            FormatKind::Csv => csv_rows(reader, &format, &wanted),
            FormatKind::Ndjson | FormatKind::Fhir => line_rows(reader, &wanted),
        }
    })
    .await?
}

fn csv_rows(reader: impl Read, format: &FormatSpec, wanted: &[u64]) -> anyhow::Result<Rows> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(u8::try_from(format.delimiter).unwrap_or(b','))
        .quote(u8::try_from(format.quote).unwrap_or(b'"'))
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let last = wanted.last().copied().unwrap_or(0);
    let mut header = Vec::new();
    let mut rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut n = 0u64;
    let text = |r: &csv::ByteRecord| -> Vec<String> {
        r.iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    };
    if format.header && csv.read_byte_record(&mut record)? {
        header = text(&record);
    }
    while n < last && csv.read_byte_record(&mut record)? {
        n += 1;
        if wanted.binary_search(&n).is_ok() {
            rows.push((n, text(&record)));
        }
    }
    Ok(Rows { header, rows })
}

fn line_rows(reader: impl Read, wanted: &[u64]) -> anyhow::Result<Rows> {
    use std::io::BufRead as _;
    let last = wanted.last().copied().unwrap_or(0);
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(reader).split(b'\n').enumerate() {
        let n = i as u64 + 1;
        if n > last {
            break;
        }
        let line = line?;
        if wanted.binary_search(&n).is_ok() {
            rows.push((
                n,
                vec![String::from_utf8_lossy(&line).trim_end().to_owned()],
            ));
        }
    }
    Ok(Rows {
        header: vec!["record".into()],
        rows,
    })
}

/// The audit log: the latest views of failing rows.
pub async fn audit_log(State(app): State<Arc<App>>, reviewer: Reviewer) -> Response {
    let mut objects = match app.store.list(AUDIT_PREFIX).await {
        Ok(objects) => objects,
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &reviewer,
                &format!("cannot list the audit log: {e}"),
            );
        }
    };
    // Keys sort by day, then by the nanosecond stamp.
    objects.sort_by(|a, b| b.key.cmp(&a.key));
    let mut rows = Vec::new();
    for object in objects.iter().take(200) {
        let Ok(mut stream) = app.store.get(&object.key).await else {
            continue;
        };
        let mut bytes = Vec::new();
        if tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut bytes)
            .await
            .is_err()
        {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<AuditRecord>(&bytes) else {
            continue;
        };
        rows.push(vec![
            esc(&html::when(record.at_unix)),
            esc(&record.reviewer),
            esc(&record.action),
            format!(
                "<a href=\"/files/{0}\">{1}</a>",
                esc(&record.workflow_id),
                esc(file_of(&record.key))
            ),
            esc(&record
                .rows
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")),
        ]);
    }
    let body = format!(
        "<p>Every view of failing rows, newest first (stored in the lake under <code>{AUDIT_PREFIX}</code>).</p>{}",
        html::table(
            "audit",
            &["When", "Who", "What", "File", "Rows shown"],
            &rows
        )
    );
    render(&reviewer, "Audit log", &body)
}
