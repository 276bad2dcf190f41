//! The event router: S3 notifications in SQS become ingest starts.
//!
//! It accepts the three shapes a bucket's events reach a queue in: S3's own notification
//! (`{"Records":[{"eventSource":"aws:s3",...}]}`), an EventBridge event (`"detail-type": "Object
//! Created"`), and either of them wrapped in an SNS notification. A message is deleted only after
//! every file in it was started or recognised as a duplicate; until then SQS redelivers it after
//! its visibility timeout, and the queue's redrive policy moves a message that keeps failing (or
//! cannot be parsed) to the dead-letter queue. The router itself never drops what it does not
//! understand.
//!
//! Object keys are never logged in clear: keys can carry patient names. Logs use [`KeyTag`].

use std::sync::Arc;
use std::time::Duration;

use lakegate_activities::ports::{IngestStarter, KeyTag, StartOutcome};
use lakegate_models::{DEFAULT_REVIEW_TIMEOUT_SECS, IngestInput, Zone};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::classify;

/// SQS's maximum long-poll wait: fewer empty receives, lower cost, no added latency.
const WAIT_SECONDS: i32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One object version an event says was created in landing/.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    /// Version id, else ETag, else the event's sequencer.
    pub version: String,
}

impl FileEvent {
    pub fn ingest_input(&self) -> IngestInput {
        IngestInput {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version: self.version.clone(),
            review_timeout_secs: DEFAULT_REVIEW_TIMEOUT_SECS,
            crawl_later: false,
        }
    }
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedMessage {
    /// Files to onboard (possibly none, when every record was filtered out).
    Files {
        files: Vec<FileEvent>,
        /// Records skipped: not ObjectCreated, or outside landing/.
        skipped: usize,
    },
    /// S3's `s3:TestEvent`, sent when a notification is configured: nothing to do.
    TestEvent,
    /// An EventBridge event of another type (Object Deleted, ...): nothing to do.
    OtherEvent(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("the body is JSON but not an S3, EventBridge or SNS envelope")]
    UnknownShape,
    #[error("record {index} lacks {field}")]
    MissingField { index: usize, field: &'static str },
    #[error("record {index} has a key that is not valid percent-encoded UTF-8")]
    BadKeyEncoding { index: usize },
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Receiving failed in a way retrying will not fix (no such queue, access denied).
    #[error("receiving from the queue failed: {message}")]
    Receive { message: String },
}

/// Decodes a key the way S3 encodes it in notifications: form encoding, where `+` is a space and
/// a literal `+` arrives as `%2B`.
pub fn decode_key(encoded: &str) -> Option<String> {
    let plus_as_space = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().filter(|s| !s.is_empty())
}

/// Parses one SQS message body.
pub fn parse_message(body: &str) -> Result<ParsedMessage, ParseError> {
    let value: Value = serde_json::from_str(body).map_err(|_| ParseError::NotJson)?;
    parse_value(&value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<ParsedMessage, ParseError> {
    if str_at(value, &["Event"]) == Some("s3:TestEvent") {
        return Ok(ParsedMessage::TestEvent);
    }
    if let Some(records) = value.get("Records").and_then(Value::as_array) {
        return parse_records(records);
    }
    if str_at(value, &["source"]) == Some("aws.s3")
        && let Some(detail_type) = str_at(value, &["detail-type"])
    {
        return parse_eventbridge(value, detail_type);
    }
    // S3 -> SNS -> SQS without raw message delivery: the event is a string inside.
    if str_at(value, &["Type"]) == Some("Notification")
        && depth == 0
        && let Some(inner) = str_at(value, &["Message"])
    {
        let inner: Value = serde_json::from_str(inner).map_err(|_| ParseError::NotJson)?;
        return parse_value(&inner, depth + 1);
    }
    Err(ParseError::UnknownShape)
}

fn parse_records(records: &[Value]) -> Result<ParsedMessage, ParseError> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for (index, r) in records.iter().enumerate() {
        let name = str_at(r, &["eventName"]).ok_or(ParseError::MissingField {
            index,
            field: "eventName",
        })?;
        // Direct notifications say "ObjectCreated:Put"; some producers keep the "s3:" prefix.
        if !name.trim_start_matches("s3:").starts_with("ObjectCreated:") {
            skipped += 1;
            continue;
        }
        let bucket = str_at(r, &["s3", "bucket", "name"]).ok_or(ParseError::MissingField {
            index,
            field: "s3.bucket.name",
        })?;
        let raw_key = str_at(r, &["s3", "object", "key"]).ok_or(ParseError::MissingField {
            index,
            field: "s3.object.key",
        })?;
        let key = decode_key(raw_key).ok_or(ParseError::BadKeyEncoding { index })?;
        let version = str_at(r, &["s3", "object", "versionId"])
            .or_else(|| str_at(r, &["s3", "object", "eTag"]))
            .or_else(|| str_at(r, &["s3", "object", "sequencer"]))
            .ok_or(ParseError::MissingField {
                index,
                field: "s3.object.versionId/eTag/sequencer",
            })?;
        if Zone::of_key(&key) != Some(Zone::Landing) {
            skipped += 1;
            continue;
        }
        files.push(FileEvent {
            bucket: bucket.to_owned(),
            key,
            version: version.trim_matches('"').to_owned(),
        });
    }
    Ok(ParsedMessage::Files { files, skipped })
}

fn parse_eventbridge(value: &Value, detail_type: &str) -> Result<ParsedMessage, ParseError> {
    if detail_type != "Object Created" {
        return Ok(ParsedMessage::OtherEvent(detail_type.to_owned()));
    }
    let index = 0;
    let bucket = str_at(value, &["detail", "bucket", "name"]).ok_or(ParseError::MissingField {
        index,
        field: "detail.bucket.name",
    })?;
    let raw_key = str_at(value, &["detail", "object", "key"]).ok_or(ParseError::MissingField {
        index,
        field: "detail.object.key",
    })?;
    // EventBridge carries the key form-encoded like S3's notifications (AWS Lambda Powertools
    // decodes it with unquote_plus too); moto sends it raw, which only matters for keys with `+`
    // or `%`.
    let key = decode_key(raw_key).ok_or(ParseError::BadKeyEncoding { index })?;
    let version = str_at(value, &["detail", "object", "version-id"])
        .or_else(|| str_at(value, &["detail", "object", "etag"]))
        .or_else(|| str_at(value, &["detail", "object", "eTag"]))
        .or_else(|| str_at(value, &["detail", "object", "sequencer"]))
        .ok_or(ParseError::MissingField {
            index,
            field: "detail.object.version-id/etag/sequencer",
        })?;
    if Zone::of_key(&key) != Some(Zone::Landing) {
        return Ok(ParsedMessage::Files {
            files: vec![],
            skipped: 1,
        });
    }
    Ok(ParsedMessage::Files {
        files: vec![FileEvent {
            bucket: bucket.to_owned(),
            key,
            version: version.trim_matches('"').to_owned(),
        }],
        skipped: 0,
    })
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Handled {
    /// Every file was started or was a duplicate (or there was nothing to start): delete it.
    Done,
    /// Leave it for redelivery and, eventually, the dead-letter queue.
    Keep,
}

async fn handle_body(body: &str, message_id: &str, starter: &dyn IngestStarter) -> Handled {
    let parsed = match parse_message(body) {
        Ok(p) => p,
        Err(reason) => {
            tracing::warn!(message_id, %reason, "unparseable message left for the queue's redrive policy");
            return Handled::Keep;
        }
    };
    let files = match parsed {
        ParsedMessage::TestEvent => {
            tracing::debug!(message_id, "s3:TestEvent ignored");
            return Handled::Done;
        }
        ParsedMessage::OtherEvent(kind) => {
            tracing::debug!(message_id, kind, "event type ignored");
            return Handled::Done;
        }
        ParsedMessage::Files { files, skipped } => {
            if skipped > 0 {
                tracing::debug!(
                    message_id,
                    skipped,
                    "records outside landing/ or not ObjectCreated ignored"
                );
            }
            files
        }
    };
    let mut all_ok = true;
    for file in files {
        let key = KeyTag(file.key.clone());
        match starter.start_ingest(file.ingest_input()).await {
            Ok(StartOutcome::Started { workflow_id }) => {
                tracing::info!(message_id, %key, workflow_id, "ingest started");
            }
            Ok(StartOutcome::Duplicate { workflow_id }) => {
                tracing::info!(message_id, %key, workflow_id, "ingest already started for this version");
            }
            Err(err) => {
                // The message stays; a redelivery retries every file in it, and the starts that
                // did succeed come back as duplicates.
                tracing::warn!(message_id, %key, error = %err, "starting the ingest failed; message kept");
                all_ok = false;
            }
        }
    }
    if all_ok { Handled::Done } else { Handled::Keep }
}

/// Long-polls `queue_url` until `cancel` fires, starting an ingest for every created object in
/// landing/. Returns `Ok` when cancelled, `Err` when the queue cannot be read for a reason that
/// retrying will not fix; transient receive errors back off and retry.
pub async fn run_event_router(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    starter: Arc<dyn IngestStarter>,
    cancel: CancellationToken,
) -> Result<(), RouterError> {
    let mut backoff = Duration::from_millis(500);
    tracing::info!("event router polling its queue");
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(WAIT_SECONDS)
            .send();
        let result = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            r = receive => r,
        };
        let out = match result {
            Ok(out) => {
                backoff = Duration::from_millis(500);
                out
            }
            Err(err) => {
                let c = classify(&err);
                if !c.retryable {
                    return Err(RouterError::Receive { message: c.message });
                }
                tracing::warn!(error = %c.message, backoff_ms = backoff.as_millis() as u64, "receive failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        for message in out.messages() {
            let message_id = message.message_id().unwrap_or("?");
            let handled = handle_body(
                message.body().unwrap_or_default(),
                message_id,
                starter.as_ref(),
            )
            .await;
            if handled == Handled::Done {
                let Some(receipt) = message.receipt_handle() else {
                    continue;
                };
                if let Err(err) = sqs
                    .delete_message()
                    .queue_url(&queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                {
                    // The message comes back after its visibility timeout; its starts will be
                    // duplicates, so this costs a little work and nothing else.
                    tracing::warn!(message_id, error = %classify(&err).message, "deleting a handled message failed");
                }
            }
        }
        if cancel.is_cancelled() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_record(name: &str, key: &str, object: Value) -> Value {
        let mut obj = object;
        obj["key"] = Value::String(key.into());
        serde_json::json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": "lake"}, "object": obj}
        })
    }

    #[test]
    fn direct_records_decode_keys_and_prefer_version_ids() {
        let body = serde_json::json!({"Records": [
            s3_record("ObjectCreated:Put", "landing/emr/a+b%2Bc%C3%A9.csv", serde_json::json!({"eTag": "e1", "versionId": "v1", "sequencer": "s"})),
            s3_record("ObjectCreated:CompleteMultipartUpload", "landing/emr/x.csv", serde_json::json!({"eTag": "e2"})),
            s3_record("ObjectCreated:Copy", "landing/emr/y.csv", serde_json::json!({"sequencer": "0055"})),
        ]});
        let parsed = parse_message(&body.to_string()).unwrap();
        assert_eq!(
            parsed,
            ParsedMessage::Files {
                files: vec![
                    FileEvent {
                        bucket: "lake".into(),
                        key: "landing/emr/a b+cé.csv".into(),
                        version: "v1".into()
                    },
                    FileEvent {
                        bucket: "lake".into(),
                        key: "landing/emr/x.csv".into(),
                        version: "e2".into()
                    },
                    FileEvent {
                        bucket: "lake".into(),
                        key: "landing/emr/y.csv".into(),
                        version: "0055".into()
                    },
                ],
                skipped: 0
            }
        );
    }

    #[test]
    fn keys_outside_landing_and_removals_are_skipped() {
        let body = serde_json::json!({"Records": [
            s3_record("ObjectCreated:Put", "raw/emr/a.csv", serde_json::json!({"eTag": "e"})),
            s3_record("ObjectCreated:Put", "landingzone/a.csv", serde_json::json!({"eTag": "e"})),
            s3_record("ObjectRemoved:Delete", "landing/emr/a.csv", serde_json::json!({"sequencer": "1"})),
            s3_record("ObjectCreated:Put", "landing/emr/ok.csv", serde_json::json!({"eTag": "e"})),
        ]});
        match parse_message(&body.to_string()).unwrap() {
            ParsedMessage::Files { files, skipped } => {
                assert_eq!(skipped, 3);
                assert_eq!(files.len(), 1);
                assert_eq!(files[0].key, "landing/emr/ok.csv");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_event_is_recognised() {
        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T00:00:00.000Z","Bucket":"lake","RequestId":"r","HostId":"h"}"#;
        assert_eq!(parse_message(body).unwrap(), ParsedMessage::TestEvent);
    }

    #[test]
    fn eventbridge_object_created() {
        let body = serde_json::json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "111122223333", "time": "2021-11-12T00:00:00Z", "region": "ca-central-1",
            "resources": ["arn:aws:s3:::lake"],
            "detail": {"version": "0", "bucket": {"name": "lake"},
                "object": {"key": "landing/emr/p+q.csv", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
                "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}
        });
        assert_eq!(
            parse_message(&body.to_string()).unwrap(),
            ParsedMessage::Files {
                files: vec![FileEvent {
                    bucket: "lake".into(),
                    key: "landing/emr/p q.csv".into(),
                    version: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e".into()
                }],
                skipped: 0
            }
        );
        // Without versioning the ETag is the version.
        let mut unversioned = body.clone();
        unversioned["detail"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("version-id");
        match parse_message(&unversioned.to_string()).unwrap() {
            ParsedMessage::Files { files, .. } => {
                assert_eq!(files[0].version, "b1946ac92492d2347c6235b4d2611184")
            }
            other => panic!("{other:?}"),
        }
        let mut outside = body.clone();
        outside["detail"]["object"]["key"] = Value::String("raw/emr/p.csv".into());
        assert_eq!(
            parse_message(&outside.to_string()).unwrap(),
            ParsedMessage::Files {
                files: vec![],
                skipped: 1
            }
        );
        let mut deleted = body;
        deleted["detail-type"] = Value::String("Object Deleted".into());
        assert_eq!(
            parse_message(&deleted.to_string()).unwrap(),
            ParsedMessage::OtherEvent("Object Deleted".into())
        );
    }

    #[test]
    fn sns_wrapped_records_are_unwrapped() {
        let inner = serde_json::json!({"Records": [s3_record("ObjectCreated:Put", "landing/a.csv", serde_json::json!({"eTag": "e"}))]});
        let body = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": inner.to_string()});
        match parse_message(&body.to_string()).unwrap() {
            ParsedMessage::Files { files, .. } => assert_eq!(files[0].key, "landing/a.csv"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_message() {
        assert_eq!(parse_message("not json"), Err(ParseError::NotJson));
        assert_eq!(
            parse_message(r#"{"hello": 1}"#),
            Err(ParseError::UnknownShape)
        );
        let no_key = serde_json::json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"eTag": "e"}}}]});
        assert_eq!(
            parse_message(&no_key.to_string()),
            Err(ParseError::MissingField {
                index: 0,
                field: "s3.object.key"
            })
        );
        let bad = serde_json::json!({"Records": [s3_record("ObjectCreated:Put", "landing/%FF.csv", serde_json::json!({"eTag": "e"}))]});
        assert_eq!(
            parse_message(&bad.to_string()),
            Err(ParseError::BadKeyEncoding { index: 0 })
        );
    }

    #[test]
    fn ingest_input_defaults_review_timeout() {
        let f = FileEvent {
            bucket: "b".into(),
            key: "landing/k".into(),
            version: "v".into(),
        };
        let i = f.ingest_input();
        assert_eq!(
            (i.bucket.as_str(), i.key.as_str(), i.version.as_str()),
            ("b", "landing/k", "v")
        );
        assert_eq!(i.review_timeout_secs, DEFAULT_REVIEW_TIMEOUT_SECS);
    }
}
