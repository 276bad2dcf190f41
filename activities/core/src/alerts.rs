//! The `send_alert` activity: an [`Alert`] posted to the webhooks of pipeline.yaml that subscribe
//! to its kind, as Slack-compatible or plain JSON. The webhook list is the worker's configuration
//! (as the pipeline is): a workflow only says what happened, and the receipt it gets back is what
//! its history records.

use std::sync::Arc;

use async_trait::async_trait;
use lakegate_models::{Alert, AlertKind, AlertReceipt, names};
use serde::{Deserialize, Serialize};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// A day's notice before a review deadline, unless pipeline.yaml says otherwise.
pub const DEFAULT_REVIEW_WARNING_SECS: u64 = 24 * 3600;

/// `alerts:` in pipeline.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Base URL of `lakegate console`; alerts link to the file's or the runs' page there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// How long before a review deadline `review_deadline_near` is sent.
    #[serde(default = "default_review_warning")]
    pub review_warning_secs: u64,
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

fn default_review_warning() -> u64 {
    DEFAULT_REVIEW_WARNING_SECS
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Names the webhook in receipts and logs; its URL is a secret and never logged.
    pub name: String,
    /// The URL, or (better: webhook URLs are credentials) `url_env`, the environment variable
    /// of the worker that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events it receives; all of them when left out.
    #[serde(default = "all_kinds")]
    pub events: Vec<AlertKind>,
}

fn all_kinds() -> Vec<AlertKind> {
    AlertKind::ALL.to_vec()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"text": ...}`: Slack incoming webhooks, and the chat tools that copy them.
    Slack,
    /// The [`Alert`] itself, with `console_url` and `headline`.
    #[default]
    Json,
}

/// What a webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// HTTP status code.
    Status(u16),
    /// No HTTP answer: the class of what went wrong (connect, timeout, tls), never the URL.
    Unreachable(String),
}

/// Posts a JSON body. The worker implements it with its HTTP client; tests with a receiver.
#[async_trait]
pub trait WebhookPoster: Send + Sync {
    async fn post_json(&self, url: &str, body: Vec<u8>) -> PostOutcome;
}

pub struct AlertActivities {
    settings: AlertSettings,
    poster: Arc<dyn WebhookPoster>,
}

impl AlertActivities {
    pub fn new(settings: AlertSettings, poster: Arc<dyn WebhookPoster>) -> Self {
        Self { settings, poster }
    }
}

/// Posts to one webhook: this many tries, the gaps between them doubling from one second.
const TRIES: u32 = 5;

/// How one webhook's delivery ended.
enum Delivery {
    Delivered,
    /// Down or throttling through every try; a later attempt may get through.
    Unavailable(String),
    /// Refused (a 4xx other than 429), or no URL: no retry can help.
    Refused,
}

#[activities]
impl AlertActivities {
    /// Posts `alert` to every subscribed webhook. A webhook that is down or throttling (5xx, 429,
    /// no answer) is tried again within the attempt. The attempt fails, for Temporal to retry
    /// later, only when no webhook took the alert, so a retry never posts twice to one that did;
    /// when some took it, the others are listed as undelivered in the receipt. A webhook that
    /// refuses the request (another 4xx) is logged and skipped.
    #[activity(name = names::SEND_ALERT_ACTIVITY)]
    pub async fn send_alert(
        self: Arc<Self>,
        _ctx: ActivityContext,
        alert: Alert,
    ) -> Result<AlertReceipt, ActivityError> {
        let mut receipt = AlertReceipt::default();
        for hook in self.subscribed(alert.kind) {
            match self.deliver(hook, &alert).await {
                Delivery::Delivered => receipt.delivered.push(hook.name.clone()),
                Delivery::Unavailable(why) => {
                    receipt.undelivered.push(format!("{}: {why}", hook.name))
                }
                Delivery::Refused => {}
            }
        }
        if receipt.delivered.is_empty() && !receipt.undelivered.is_empty() {
            return Err(ApplicationFailure::new(format!(
                "alert {} not delivered: {}",
                alert.kind.as_str(),
                receipt.undelivered.join(", ")
            ))
            .into());
        }
        for undelivered in &receipt.undelivered {
            tracing::warn!(kind = alert.kind.as_str(), %undelivered, "alert not delivered to a webhook; given up");
        }
        receipt.review_warning_secs = (alert.kind == AlertKind::FileQuarantined
            && self
                .subscribed(AlertKind::ReviewDeadlineNear)
                .next()
                .is_some())
        .then_some(self.settings.review_warning_secs);
        Ok(receipt)
    }
}

impl AlertActivities {
    async fn deliver(&self, hook: &Webhook, alert: &Alert) -> Delivery {
        let Some(url) = hook.resolved_url() else {
            tracing::warn!(webhook = %hook.name, "alert webhook has no URL (url or url_env); skipped");
            return Delivery::Refused;
        };
        let body = render(alert, hook.format, self.settings.console_url.as_deref());
        let mut gap = std::time::Duration::from_secs(1);
        let mut last = String::new();
        for attempt in 1..=TRIES {
            match self.poster.post_json(&url, body.clone()).await {
                PostOutcome::Status(code) if (200..300).contains(&code) => {
                    return Delivery::Delivered;
                }
                PostOutcome::Status(code) if code == 429 || code >= 500 => {
                    last = format!("HTTP {code}");
                }
                PostOutcome::Status(code) => {
                    tracing::warn!(webhook = %hook.name, status = code, kind = alert.kind.as_str(),
                        "alert webhook refused the request; not retried");
                    return Delivery::Refused;
                }
                PostOutcome::Unreachable(class) => last = class,
            }
            if attempt < TRIES {
                tokio::time::sleep(gap).await;
                gap *= 2;
            }
        }
        Delivery::Unavailable(last)
    }

    fn subscribed(&self, kind: AlertKind) -> impl Iterator<Item = &Webhook> {
        self.settings
            .webhooks
            .iter()
            .filter(move |hook| hook.events.contains(&kind))
    }
}

impl Webhook {
    fn resolved_url(&self) -> Option<String> {
        self.url.clone().or_else(|| {
            self.url_env
                .as_deref()
                .and_then(|name| std::env::var(name).ok())
                .filter(|url| !url.is_empty())
        })
    }
}

/// The console page an alert links to: a file's page for ingest alerts, the runs otherwise.
pub fn console_link(alert: &Alert, console_url: &str) -> String {
    let base = console_url.trim_end_matches('/');
    match alert.kind {
        AlertKind::FileQuarantined | AlertKind::ReviewDeadlineNear | AlertKind::ReviewTimedOut => {
            format!("{base}/files/{}", alert.workflow_id)
        }
        AlertKind::CheckFailed | AlertKind::TransformFailed => format!("{base}/runs"),
    }
}

/// The request body for `format`.
pub fn render(alert: &Alert, format: WebhookFormat, console_url: Option<&str>) -> Vec<u8> {
    let link = console_url.map(|url| console_link(alert, url));
    let value = match format {
        WebhookFormat::Json => {
            let mut value = serde_json::to_value(alert).unwrap_or_default();
            if let Some(map) = value.as_object_mut() {
                map.insert("headline".into(), alert.kind.headline().into());
                if let Some(link) = &link {
                    map.insert("console_url".into(), link.clone().into());
                }
            }
            value
        }
        WebhookFormat::Slack => serde_json::json!({ "text": slack_text(alert, link.as_deref()) }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

fn slack_text(alert: &Alert, link: Option<&str>) -> String {
    let mut text = format!("*lakegate: {}*", alert.kind.headline());
    let what = [alert.dataset.as_deref(), alert.table.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(".");
    if !what.is_empty() {
        text.push_str(&format!("\ntable: `{what}`"));
    }
    if !alert.rules.is_empty() {
        text.push_str(&format!("\nrules: {}", alert.rules.join(", ")));
    }
    for (name, count) in &alert.counts {
        text.push_str(&format!("\n{name}: {count}"));
    }
    if let Some(deadline) = alert.deadline {
        text.push_str(&format!(
            "\nreview deadline: {} UTC",
            lakegate_models::civil_datetime_from_unix(deadline as i64)
        ));
    }
    text.push_str(&format!("\nworkflow: `{}`", alert.workflow_id));
    if let Some(link) = link {
        text.push_str(&format!("\n<{link}|Open in the lakegate console>"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quarantined() -> Alert {
        let mut alert = Alert::new(AlertKind::FileQuarantined, "ingest-0123abcd");
        alert.dataset = Some("ehr".into());
        alert.table = Some("patients".into());
        alert.rules = vec!["not_null(patient_id)".into()];
        alert.counts.insert("failed_rows".into(), 3);
        alert.deadline = Some(86_400);
        alert
    }

    #[test]
    fn slack_body_is_a_text_message_with_the_console_link() {
        let body = render(
            &quarantined(),
            WebhookFormat::Slack,
            Some("http://console:8080/"),
        );
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let text = value["text"].as_str().unwrap();
        assert!(text.contains("File quarantined"), "{text}");
        assert!(text.contains("`ehr.patients`"), "{text}");
        assert!(text.contains("not_null(patient_id)"), "{text}");
        assert!(text.contains("failed_rows: 3"), "{text}");
        assert!(text.contains("1970-01-02 00:00:00 UTC"), "{text}");
        assert!(
            text.contains("<http://console:8080/files/ingest-0123abcd|"),
            "{text}"
        );
    }

    #[test]
    fn json_body_is_the_alert_with_headline_and_link() {
        let body = render(&quarantined(), WebhookFormat::Json, Some("http://c"));
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["kind"], "file_quarantined");
        assert_eq!(value["workflow_id"], "ingest-0123abcd");
        assert_eq!(value["counts"]["failed_rows"], 3);
        assert_eq!(value["console_url"], "http://c/files/ingest-0123abcd");
        let back: Alert = serde_json::from_value(value).unwrap();
        assert_eq!(back, quarantined());
    }

    #[test]
    fn settings_default_to_every_event_and_a_days_warning() {
        let settings: AlertSettings =
            serde_json::from_str(r#"{"webhooks":[{"name":"ops","url_env":"OPS_HOOK"}]}"#).unwrap();
        assert_eq!(settings.review_warning_secs, DEFAULT_REVIEW_WARNING_SECS);
        assert_eq!(settings.webhooks[0].events, AlertKind::ALL.to_vec());
        assert_eq!(settings.webhooks[0].format, WebhookFormat::Json);
        let typo = serde_json::from_str::<AlertSettings>(r#"{"webhook":[]}"#);
        assert!(
            typo.is_err(),
            "a misspelt key must not silently turn alerts off"
        );
    }
}
