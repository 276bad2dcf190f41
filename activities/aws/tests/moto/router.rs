use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use lakegate_activities::ports::{IngestStarter, StartError, StartOutcome};
use lakegate_aws::run_event_router;
use lakegate_models::{IngestInput, ingest_workflow_id};
use tokio_util::sync::CancellationToken;

use crate::harness::{
    Moto, queue, queue_depth as depth, redeliver_first, send_object_events_to, wait_for,
};

/// The Temporal side of an ingest start, as the router sees it: the first start of a workflow id
/// starts it, later ones are duplicates (Temporal's workflow-id reuse policy). Records every call.
#[derive(Default)]
struct RecordingStarter {
    calls: Mutex<Vec<(IngestInput, StartOutcome)>>,
    started: Mutex<HashSet<String>>,
    /// Fail this many calls first, as an unreachable Temporal would.
    fail_first: AtomicUsize,
}

#[async_trait]
impl IngestStarter for RecordingStarter {
    async fn start_ingest(&self, input: IngestInput) -> Result<StartOutcome, StartError> {
        if self.fail_first.load(Ordering::SeqCst) > 0 {
            self.fail_first.fetch_sub(1, Ordering::SeqCst);
            return Err(StartError {
                message: "temporal unavailable".into(),
            });
        }
        let workflow_id = ingest_workflow_id(&input.bucket, &input.key, &input.version);
        let fresh = self.started.lock().unwrap().insert(workflow_id.clone());
        let outcome = if fresh {
            StartOutcome::Started { workflow_id }
        } else {
            StartOutcome::Duplicate { workflow_id }
        };
        self.calls.lock().unwrap().push((input, outcome.clone()));
        Ok(outcome)
    }
}

impl RecordingStarter {
    fn calls(&self) -> Vec<(IngestInput, StartOutcome)> {
        self.calls.lock().unwrap().clone()
    }
}

fn spawn_router(
    sqs: aws_sdk_sqs::Client,
    url: String,
    starter: Arc<RecordingStarter>,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), lakegate_aws::RouterError>>,
) {
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(run_event_router(sqs, url, starter, cancel.clone()));
    (cancel, handle)
}

/// Cancels the router and waits for it: promptly, even though it is in a 20 s long poll.
async fn stop(
    cancel: CancellationToken,
    router: tokio::task::JoinHandle<Result<(), lakegate_aws::RouterError>>,
) -> Result<()> {
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), router).await???;
    Ok(())
}

#[tokio::test]
async fn an_upload_reaches_the_router_once_even_when_its_event_is_delivered_twice() -> Result<()> {
    let moto = Moto::start().await?;
    let clients = moto.clients().await;
    let (s3, sqs) = (clients.s3.clone(), clients.sqs.clone());
    s3.create_bucket().bucket("lake").send().await?;
    let (url, arn) = queue(&sqs, "lake-events", &[]).await;
    send_object_events_to(&s3, "lake", &arn).await?;
    // Configuring the notification sent an s3:TestEvent; the uploads send one event each.
    let key = "landing/emr/ehr/visits 2026+11.csv";
    let put = s3
        .put_object()
        .bucket("lake")
        .key(key)
        .body(ByteStream::from_static(b"id\n1\n"))
        .send()
        .await?;
    s3.put_object()
        .bucket("lake")
        .key("raw/emr/ehr/elsewhere.csv")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await?;

    // At-least-once delivery: the same event body a second time, as SQS may deliver it.
    // moto form-encodes the whole key, slashes included (landing%2Femr%2F...).
    redeliver_first(&sqs, &url, |body| {
        body.contains("ObjectCreated") && body.contains("landing%2F")
    })
    .await?;
    assert_eq!(
        depth(&sqs, &url).await?,
        4,
        "test event, two uploads, one duplicate"
    );

    let starter = Arc::new(RecordingStarter::default());
    let (cancel, router) = spawn_router(sqs.clone(), url.clone(), starter.clone());
    wait_for("the queue to drain", Duration::from_secs(30), || async {
        Ok((depth(&sqs, &url).await? == 0).then_some(()))
    })
    .await?;
    stop(cancel, router).await?;

    let calls = starter.calls();
    let etag = put.e_tag().unwrap().trim_matches('"').to_owned();
    assert_eq!(
        calls.len(),
        2,
        "one call per delivery of the landing event: {calls:?}"
    );
    for (input, _) in &calls {
        assert_eq!(
            (
                input.bucket.as_str(),
                input.key.as_str(),
                input.version.as_str()
            ),
            ("lake", key, etag.as_str())
        );
    }
    let started = calls
        .iter()
        .filter(|(_, o)| matches!(o, StartOutcome::Started { .. }))
        .count();
    assert_eq!(
        started, 1,
        "exactly one onboarding; the redelivery is a duplicate"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_start_keeps_the_message_until_a_redelivery_succeeds() -> Result<()> {
    let moto = Moto::start().await?;
    let sqs = moto.clients().await.sqs;
    let (url, _) = queue(
        &sqs,
        "events",
        &[(QueueAttributeName::VisibilityTimeout, "1".into())],
    )
    .await;
    let body = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "lake"}, "object": {"key": "landing/a.csv", "eTag": "e1"}}}]});
    sqs.send_message()
        .queue_url(&url)
        .message_body(body.to_string())
        .send()
        .await?;

    let starter = Arc::new(RecordingStarter {
        fail_first: AtomicUsize::new(1),
        ..Default::default()
    });
    let (cancel, router) = spawn_router(sqs.clone(), url.clone(), starter.clone());
    wait_for("the queue to drain", Duration::from_secs(30), || async {
        Ok((depth(&sqs, &url).await? == 0).then_some(()))
    })
    .await?;
    stop(cancel, router).await?;
    assert_eq!(
        starter.fail_first.load(Ordering::SeqCst),
        0,
        "the first attempt failed"
    );
    let calls = starter.calls();
    assert_eq!(calls.len(), 1, "the redelivery started it: {calls:?}");
    assert_eq!(calls[0].0.key, "landing/a.csv");
    Ok(())
}

#[tokio::test]
async fn an_unparseable_message_is_left_to_the_redrive_policy() -> Result<()> {
    let moto = Moto::start().await?;
    let sqs = moto.clients().await.sqs;
    let (dlq_url, dlq_arn) = queue(&sqs, "events-dlq", &[]).await;
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string();
    let (url, _) = queue(
        &sqs,
        "events",
        &[
            (QueueAttributeName::VisibilityTimeout, "1".into()),
            (QueueAttributeName::RedrivePolicy, redrive),
        ],
    )
    .await;
    sqs.send_message()
        .queue_url(&url)
        .message_body("this is not an S3 event")
        .send()
        .await?;

    let starter = Arc::new(RecordingStarter::default());
    let (cancel, router) = spawn_router(sqs.clone(), url.clone(), starter.clone());
    let dead = wait_for(
        "the message to reach the dead-letter queue",
        Duration::from_secs(30),
        || async {
            let out = sqs.receive_message().queue_url(&dlq_url).send().await?;
            Ok(out
                .messages()
                .first()
                .and_then(|m| m.body())
                .map(str::to_owned))
        },
    )
    .await?;
    stop(cancel, router).await?;
    assert_eq!(dead, "this is not an S3 event");
    assert!(starter.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_missing_queue_stops_the_router_with_an_error() -> Result<()> {
    let moto = Moto::start().await?;
    let sqs = moto.clients().await.sqs;
    let url = format!("{}/123456789012/no-such-queue", moto.endpoint);
    let starter = Arc::new(RecordingStarter::default());
    let (_cancel, router) = spawn_router(sqs, url, starter);
    let result = tokio::time::timeout(Duration::from_secs(30), router).await??;
    assert!(result.is_err(), "{result:?}");
    Ok(())
}
