//! A real moto server for the AWS adapters' tests: started from the project's virtualenv on a
//! free loopback port, configured for lakegate's needs, and killed by PID when dropped.
//!
//! Behind the `testing` feature so the workspace's end-to-end tests use the same harness.

mod faults;
pub mod lake;
pub mod play;

pub use faults::{Call, Counts, FaultProxy, Hook, ProxyOptions};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{AwsClients, AwsSettings};
use anyhow::{Context, Result, bail};
use lakegate_activities::testing::http;

/// How long a crawl stays RUNNING in moto once started. Long enough for a test to start the same
/// crawler again and see it joined; short enough to wait for.
pub const CRAWL_SECONDS: u64 = 2;

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    pub log: PathBuf,
}

/// The project's virtualenv: `LAKEGATE_VENV`, else `<repo root>/.venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("LAKEGATE_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv"),
    }
}

fn free_port() -> Result<u16> {
    // Bind port 0 and let the OS pick; the tiny window before moto binds it is acceptable here.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Moto {
    pub async fn start() -> Result<Self> {
        Self::start_with_env(&[]).await
    }

    /// With extra environment for moto itself (e.g. MOTO_SIMPLE_BATCH_FAIL_AFTER=0 to fail jobs).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Result<Self> {
        let exe = venv().join("bin/moto_server");
        if !exe.exists() {
            bail!(
                "{} not found: run the project's bootstrap (requirements.txt has moto[server])",
                exe.display()
            );
        }
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("lakegate-moto-{port}.log"));
        let log_file = std::fs::File::create(&log)?;
        // moto runs under a tiny sh wrapper that holds moto's PID and kills exactly that PID when
        // its stdin closes: on Drop (we close it), and also when the test process dies without
        // running Drop (the kernel closes it), so no moto outlives its test.
        let child = Command::new("sh")
            .args([
                "-c",
                r#""$0" -H 127.0.0.1 -p "$1" & pid=$!; cat >/dev/null; kill -9 "$pid"; wait "$pid""#,
            ])
            .arg(&exe)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let moto = Self {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        moto.wait_ready(Duration::from_secs(60)).await?;
        // Batch without Docker: submitted jobs succeed at once instead of running containers.
        moto.post_json("/moto-api/config", r#"{"batch":{"use_docker":false}}"#)
            .await?;
        // A crawl stays RUNNING for CRAWL_SECONDS, then completes (moto's default would complete
        // it on the first read, leaving nothing to join).
        moto.post_json(
            "/moto-api/state-manager/set-transition",
            &format!(r#"{{"model_name":"glue::crawl","transition":{{"progression":"time","seconds":{CRAWL_SECONDS}}}}}"#),
        )
        .await?;
        Ok(moto)
    }

    async fn wait_ready(&self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok((200, _)) = self.request("GET", "/moto-api/data.json", "").await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "moto server did not answer within {within:?}; log: {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A JSON request to moto's own API: its status and body.
    pub async fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        self.raw_request(method, path, &[("Content-Type", "application/json")], body)
            .await
    }

    async fn raw_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, String)> {
        let url = format!("{}{path}", self.endpoint);
        let response = http::request(method, &url, headers, body.to_owned())
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
        Ok((response.status.as_u16(), response.text()))
    }

    pub async fn post_json(&self, path: &str, body: &str) -> Result<String> {
        let (status, answer) = self.request("POST", path, body).await?;
        if !(200..300).contains(&status) {
            bail!("POST {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    /// Creates an IAM role in moto (Batch's CreateComputeEnvironment insists its service role
    /// exists) without pulling the IAM SDK crate into the build: one query-protocol call, with an
    /// Authorization header whose credential scope tells moto's dispatcher it is IAM.
    pub async fn create_role(&self, name: &str) -> Result<String> {
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
        );
        let headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            ),
        ];
        let (status, answer) = self.raw_request("POST", "/", &headers, &body).await?;
        if status != 200 {
            bail!("CreateRole answered {status}: {answer}");
        }
        Ok(format!("arn:aws:iam::123456789012:role/{name}"))
    }

    pub fn settings(&self) -> AwsSettings {
        AwsSettings::emulator(&self.endpoint)
    }

    pub async fn clients(&self) -> AwsClients {
        AwsClients::load(&self.settings()).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing the wrapper's stdin makes it kill moto by PID; never by name.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        if !std::thread::panicking() {
            // Kept when a test failed: it is the first thing to read.
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Polls `check` until it yields `Some`, or fails after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A queue and its ARN; `attrs` as in CreateQueue (e.g. a redrive policy).
pub async fn queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attrs: &[(aws_sdk_sqs::types::QueueAttributeName, String)],
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut req = sqs.create_queue().queue_name(name);
    for (k, v) in attrs {
        req = req.attributes(k.clone(), v);
    }
    let url = req.send().await.unwrap().queue_url().unwrap().to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// Messages in the queue, visible or in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<usize> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    let attrs = out.attributes().cloned().unwrap_or_default();
    let n = |k: QueueAttributeName| {
        attrs
            .get(&k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// S3 → SQS notifications of every created object in `bucket` (moto sends an s3:TestEvent
/// when this is configured, as S3 does).
pub async fn send_object_events_to(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    queue_arn: &str,
) -> Result<()> {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    s3.put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(queue_arn)
                        .events(Event::from("s3:ObjectCreated:*"))
                        .build()?,
                )
                .build(),
        )
        .send()
        .await?;
    Ok(())
}

/// At-least-once delivery, on purpose: waits for the first message whose body `matches` and
/// puts the same body in the queue a second time, as SQS may deliver it.
pub async fn redeliver_first(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    matches: impl Fn(&str) -> bool,
) -> Result<()> {
    wait_for(
        "the event in the queue",
        Duration::from_secs(30),
        || async {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await?;
            for message in out.messages() {
                let body = message.body().unwrap_or_default();
                if matches(body) {
                    sqs.send_message()
                        .queue_url(url)
                        .message_body(body)
                        .send()
                        .await?;
                    return Ok(Some(()));
                }
            }
            Ok(None)
        },
    )
    .await
}
