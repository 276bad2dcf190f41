//! Upload: files stream from the browser into landing/ (hashed on the way, never held whole in
//! memory), bounded by the contract's `size` rule and the console's own limit while they stream;
//! then their workflows start through [`crate::landing`], as `lakegate ingest` starts them, and
//! a page follows each to promoted or quarantined.

use std::sync::Arc;

use axum::extract::{Multipart, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use lakegate_models::{IngestPhase, IngestStatus};
use lakegate_validate::{ContractSet, Level, RuleSpec};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::Reviewer;
use super::html::{self, Chrome, esc};
use super::{App, error_page, valid_workflow_id};
use crate::config::Backend;
use crate::landing;

/// The first folder under landing/ for files uploaded here.
pub const UPLOAD_SOURCE: &str = "console";

pub async fn form(State(app): State<Arc<App>>, reviewer: Reviewer) -> Response {
    let datasets = match ContractSet::load_dir(&app.config.contracts) {
        Ok(set) => set
            .contracts()
            .iter()
            .map(|c| c.dataset.clone())
            .collect::<Vec<_>>(),
        Err(e) => {
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &reviewer,
                &format!("cannot read the contracts: {e}"),
            );
        }
    };
    let options: String = datasets
        .iter()
        .map(|d| format!("<option value=\"{0}\">{0}</option>", esc(d)))
        .collect();
    // csrf and dataset come before the files, so both are known before any byte is stored.
    let body = format!(
        "<form method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">{}\
         <label for=\"dataset\">Dataset</label><select id=\"dataset\" name=\"dataset\" required>{options}</select>\
         <label for=\"files\">Files (one or more)</label>\
         <input id=\"files\" name=\"files\" type=\"file\" multiple required>\
         <button type=\"submit\">Upload and onboard</button></form>\
         <p>Files land at <code>landing/{UPLOAD_SOURCE}/&lt;dataset&gt;/</code> and are validated against the \
         dataset's contract: a passing file is promoted to <code>raw/</code>, a failing one waits for review in \
         the inbox.</p>",
        html::csrf_field(&reviewer.csrf)
    );
    page(&reviewer, "Upload files", false, &body)
}

fn page(reviewer: &Reviewer, title: &str, refresh: bool, body: &str) -> Response {
    let chrome = Chrome {
        title,
        user: Some(&reviewer.name),
        csrf: &reviewer.csrf,
        refresh,
    };
    Html(html::page(&chrome, body)).into_response()
}

pub async fn receive(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    mut multipart: Multipart,
) -> Response {
    if app.config.aws.backend != Backend::Local {
        return error_page(
            StatusCode::NOT_IMPLEMENTED,
            &reviewer,
            "uploads go to the local backend's landing folder; on AWS, files arrive through S3",
        );
    }
    let contracts = match ContractSet::load_dir(&app.config.contracts) {
        Ok(set) => set,
        Err(e) => {
            let message = format!("cannot read the contracts: {e}");
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, &reviewer, &message);
        }
    };
    let mut csrf_ok = false;
    let mut dataset: Option<String> = None;
    let mut started = Vec::new();
    let mut problems = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return error_page(StatusCode::BAD_REQUEST, &reviewer, &e.body_text()),
        };
        match field.name() {
            Some("csrf") => {
                let token = field.text().await.unwrap_or_default();
                if let Err(denied) = reviewer.check(&app, &token) {
                    return denied.into_response();
                }
                csrf_ok = true;
            }
            Some("dataset") => {
                let name = field.text().await.unwrap_or_default();
                if !contracts.contracts().iter().any(|c| c.dataset == name) {
                    return error_page(StatusCode::BAD_REQUEST, &reviewer, "unknown dataset");
                }
                dataset = Some(name);
            }
            Some("files") => {
                if !csrf_ok {
                    return super::auth::CsrfRefused.into_response();
                }
                let Some(dataset) = &dataset else {
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        &reviewer,
                        "choose the dataset before the files",
                    );
                };
                let raw_name = field.file_name().unwrap_or_default().to_owned();
                if raw_name.is_empty() {
                    continue;
                }
                match store_one(&app, &contracts, dataset, &raw_name, &mut field).await {
                    Ok(id) => started.push(id),
                    Err(problem) => problems.push(format!("{raw_name}: {problem}")),
                }
            }
            _ => {}
        }
    }
    let follow = format!(
        "/uploads?{}",
        started
            .iter()
            .map(|id| format!("id={}", html::url(id)))
            .collect::<Vec<_>>()
            .join("&")
    );
    if problems.is_empty() && !started.is_empty() {
        return Redirect::to(&follow).into_response();
    }
    let mut body: String = problems
        .iter()
        .map(|p| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(p)))
        .collect();
    if started.is_empty() {
        body.push_str("<p>No file was onboarded. <a href=\"/upload\">Upload again</a>.</p>");
    } else {
        body.push_str(&format!(
            "<p><a href=\"{}\">Follow the {} file(s) that were onboarded</a>.</p>",
            esc(&follow),
            started.len()
        ));
    }
    let status = if started.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, page(&reviewer, "Upload", false, &body)).into_response()
}

/// Streams one file into landing/ and starts its workflow; the workflow id, or why not.
async fn store_one(
    app: &App,
    contracts: &ContractSet,
    dataset: &str,
    raw_name: &str,
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, String> {
    let name = file_name(raw_name).ok_or("not a usable file name")?;
    let key = landing::landing_key(UPLOAD_SOURCE, dataset, &name);
    let bound =
        size_bound(contracts, &key).map_or(app.max_upload_bytes, |b| b.min(app.max_upload_bytes));
    let path = landing::local_path(&app.config, &key).map_err(|e| format!("{e:#}"))?;
    let dir = path.parent().ok_or("no folder")?.to_owned();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("creating the landing folder: {e}"))?;
    // A dot name in the destination folder: the rename below is atomic, and the watched-folder
    // and sweep listings skip it while it is being written.
    let suffix = hex::encode(&super::auth::random_bytes().map_err(|e| e.to_string())?[..8]);
    let temp = dir.join(format!(".lakegate-tmp-upload-{suffix}"));
    let result = async {
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| format!("writing: {e}"))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|e| e.body_text())? {
            size += chunk.len() as u64;
            if size > bound {
                return Err(format!(
                    "larger than the {bound} bytes this table accepts; nothing was stored"
                ));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("writing: {e}"))?;
        }
        file.flush().await.map_err(|e| format!("writing: {e}"))?;
        Ok(hex::encode(hasher.finalize()))
    }
    .await;
    let sha256 = match result {
        Ok(sha256) => sha256,
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
    };
    let input = landing::local_input(&app.config, &key, &sha256, app.review_timeout_secs);
    let started = landing::place_and_start(&app.client, &app.config, input, || async {
        tokio::fs::rename(&temp, &path).await?;
        Ok(())
    })
    .await;
    // Still there when the file was a duplicate (or the rename failed).
    let _ = tokio::fs::remove_file(&temp).await;
    started
        .map(|s| s.workflow_id().to_owned())
        .map_err(|e| format!("{e:#}"))
}

/// The last path segment of a browser-sent name, if it can be a landing file name.
fn file_name(raw: &str) -> Option<String> {
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    let usable = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 255
        && !name.chars().any(char::is_control);
    usable.then(|| name.to_owned())
}

/// The error-level `size` rule's `max_bytes` of the table the key belongs to.
fn size_bound(contracts: &ContractSet, key: &str) -> Option<u64> {
    let (_, table) = contracts.resolve(key)?;
    table.rules.iter().find_map(|rule| match rule {
        RuleSpec::Size {
            max_bytes: Some(max),
            severity: Level::Error,
            ..
        } => Some(*max),
        _ => None,
    })
}

/// Follows uploaded files until each is promoted, rejected or waiting for review.
pub async fn follow(
    State(app): State<Arc<App>>,
    reviewer: Reviewer,
    RawQuery(query): RawQuery,
) -> Response {
    let ids: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .filter(|id| valid_workflow_id(id))
        .collect();
    let statuses = futures::future::join_all(
        ids.iter()
            .map(|id| crate::client::query_status(&app.client, id)),
    )
    .await;
    let mut moving = false;
    let rows: Vec<Vec<String>> = ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| match status {
            Ok(status) => {
                moving |= !settled(&status);
                vec![
                    format!(
                        "<a href=\"/files/{}\">{}</a>",
                        esc(id),
                        esc(file_of(&status.key))
                    ),
                    format!(
                        "<span class=\"phase\">{}</span>",
                        esc(&phase_words(&status))
                    ),
                    esc(status.zone.prefix()),
                ]
            }
            Err(_) => {
                moving = true;
                vec![esc(id), "starting".into(), String::new()]
            }
        })
        .collect();
    let body = format!(
        "{}<p>{}</p><p><a href=\"/upload\">Upload more</a> · <a href=\"/inbox\">Review inbox</a></p>",
        html::table("uploads", &["File", "Status", "Zone"], &rows),
        if moving {
            "Validating… this page refreshes by itself."
        } else {
            "Every file has settled."
        }
    );
    page(&reviewer, "Uploaded files", moving, &body)
}

/// Promoted, rejected, or parked waiting for a person.
pub fn settled(status: &IngestStatus) -> bool {
    matches!(
        status.phase,
        IngestPhase::Promoted | IngestPhase::Rejected | IngestPhase::AwaitingReview
    )
}

/// The phase in words for people.
pub fn phase_words(status: &IngestStatus) -> String {
    match status.phase {
        IngestPhase::Resolving => "finding its contract".into(),
        IngestPhase::Validating => "validating".into(),
        IngestPhase::Promoting => "promoting".into(),
        IngestPhase::AwaitingReview => format!(
            "quarantined ({}), waiting for review",
            status.quarantine_reason.as_deref().unwrap_or("see report")
        ),
        IngestPhase::Rejecting => "rejecting".into(),
        IngestPhase::Promoted => "promoted".into(),
        IngestPhase::Rejected if status.review_timed_out => "rejected (review timed out)".into(),
        IngestPhase::Rejected => "rejected".into(),
    }
}

/// The file name of a key (the console shows it; Temporal's run list never does).
pub fn file_of(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn browser_names_are_reduced_to_a_safe_last_segment() {
        assert_eq!(
            file_name("C:\\x\\patients.csv").as_deref(),
            Some("patients.csv")
        );
        assert_eq!(file_name("a/b.csv").as_deref(), Some("b.csv"));
        assert_eq!(file_name(".hidden"), None);
        assert_eq!(file_name("x/.."), None);
        assert_eq!(file_name("bad\nname"), None);
        assert_eq!(file_name(""), None);
    }
}
