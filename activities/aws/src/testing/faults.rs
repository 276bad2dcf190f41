//! A fault-injecting HTTP proxy in front of moto: it forwards each call and, with a seeded RNG,
//! answers a share of them itself with the error a busy AWS region returns — a throttle or an
//! internal error, in the shape each service's SDK classifies as retryable — and counts calls and
//! injected faults per service. The SDK clients pointed at it cannot tell it from moto.
//!
//! Plain HTTP/1.1 over tokio, one call per connection: the forwarded request asks moto to close
//! the connection after answering, so a response ends where moto's stream ends, and the
//! `Connection: close` it carries makes the client open a new connection for its next call.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Calls and injected faults of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub faults: u64,
}

/// One call the proxy forwarded, as its hook sees it once moto answered and before the client
/// gets the answer: a test plays a service's part here (the container a Batch job would run, say)
/// at exactly the moment the real service would have done it.
#[derive(Debug, Clone)]
pub struct Call {
    /// As in the request's credential scope: `s3`, `glue`, `batch`, `athena`, ...
    pub service: String,
    /// What the call does: the `X-Amz-Target` operation (`CreateTable`), the last path segment of
    /// Batch's REST path (`submitjob`), or for S3 the method and its object (`PUT copy`).
    pub operation: String,
    pub request: Vec<u8>,
    pub status: u16,
    pub response: Vec<u8>,
}

/// Runs on every forwarded call before its answer is relayed.
pub type Hook = Arc<dyn Fn(Call) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What [`FaultProxy::start_with`] does besides forwarding.
#[derive(Clone, Default)]
pub struct ProxyOptions {
    /// Faults per 1,000 calls.
    pub per_mille: u64,
    pub seed: u64,
    /// Only these services' calls fail; `None`: every service's.
    pub services: Option<Vec<String>>,
    /// Internal errors hit after moto did the work: the call is forwarded, moto acts, and the
    /// client gets a 500 instead of the answer, as when a service fails after committing (or the
    /// answer is lost on the way). Throttles always come before the work, as AWS's do.
    pub lost_answers: bool,
    /// (service, operation) pairs whose internal errors still come before the work, because
    /// moto cannot play what the real service does on a retry of them (moto ignores Athena's
    /// ClientRequestToken, so a second StartQueryExecution would be a second query there).
    pub answers_kept: Vec<(String, String)>,
    /// (service, operation) pairs whose first call loses its answer, whatever the dice say: the
    /// one place a test wants a lost answer for sure (a SubmitJob, a StartCrawler).
    pub lose_first: Vec<(String, String)>,
    pub hook: Option<Hook>,
}

struct State {
    /// Faults per 1,000 calls.
    per_mille: u64,
    rng: u64,
    services: Option<Vec<String>>,
    lost_answers: bool,
    answers_kept: Vec<(String, String)>,
    lose_first: Vec<(String, String)>,
    counts: BTreeMap<String, Counts>,
    operations: BTreeMap<(String, String), Counts>,
}

impl State {
    /// splitmix64: enough randomness for picking calls, reproducible from the seed.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The proxy; stops accepting when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    hook: Option<Hook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Throttle,
    Internal,
    /// An internal error returned after moto did the work.
    LostAnswer,
}

impl FaultProxy {
    /// Forwards to 127.0.0.1:`upstream_port`, failing `per_mille` of every 1,000 calls.
    pub async fn start(upstream_port: u16, per_mille: u64, seed: u64) -> Result<Self> {
        Self::start_with(
            upstream_port,
            ProxyOptions {
                per_mille,
                seed,
                ..ProxyOptions::default()
            },
        )
        .await
    }

    /// Forwards to 127.0.0.1:`upstream_port` as `options` say.
    pub async fn start_with(upstream_port: u16, options: ProxyOptions) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                per_mille: options.per_mille,
                rng: options.seed,
                services: options.services,
                lost_answers: options.lost_answers,
                answers_kept: options.answers_kept,
                lose_first: options.lose_first,
                counts: BTreeMap::new(),
                operations: BTreeMap::new(),
            }),
            hook: options.hook,
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accepting.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(client, upstream_port, &shared).await {
                        eprintln!("fault proxy: {e:#}");
                    }
                });
            }
        });
        Ok(Self {
            endpoint,
            shared,
            accept,
        })
    }

    /// Per service (`s3`, `sqs`, `glue`, ...): calls received and faults injected so far.
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.shared
            .state
            .lock()
            .expect("proxy state")
            .counts
            .clone()
    }

    /// Per service and operation (see [`Call::operation`]): calls received and faults injected.
    pub fn operations(&self) -> BTreeMap<(String, String), Counts> {
        self.shared
            .state
            .lock()
            .expect("proxy state")
            .operations
            .clone()
    }

    /// The sum over all services.
    pub fn totals(&self) -> Counts {
        self.counts()
            .values()
            .fold(Counts::default(), |a, c| Counts {
                calls: a.calls + c.calls,
                faults: a.faults + c.faults,
            })
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A name for what a call does: the operation of `X-Amz-Target` (the JSON services), the last
/// path segment of Batch's REST paths, and for S3 the method and what it acts on (`PUT copy`
/// for a CopyObject, `GET bucket` for a listing).
fn operation(service: &str, method: &str, path: &str, target: Option<&str>, copy: bool) -> String {
    if let Some(target) = target {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let path = path.split('?').next().unwrap_or_default();
    match service {
        "s3" => {
            let on = if copy {
                "copy"
            } else if path.trim_matches('/').contains('/') {
                "object"
            } else {
                "bucket"
            };
            format!("{method} {on}")
        }
        _ => path.rsplit('/').next().unwrap_or_default().to_owned(),
    }
}

/// One request: read it, fail it or forward it, relay the answer, close.
async fn serve(client: TcpStream, upstream_port: u16, shared: &Shared) -> Result<()> {
    let mut client = BufReader::new(client);
    let Some(text) = read_head(&mut client).await? else {
        // The client closed an idle connection.
        return Ok(());
    };
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut content_length = 0usize;
    let mut service = None;
    let mut target = None;
    let mut copy = false;
    let mut forwarded = format!("{request_line}\r\n");
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        match name.as_str() {
            "content-length" => content_length = value.parse().context("Content-Length")?,
            "transfer-encoding" if value.eq_ignore_ascii_case("chunked") => {
                bail!("chunked request bodies are not supported by the fault proxy")
            }
            // Credential=<key>/<date>/<region>/<service>/aws4_request names the service.
            "authorization" => {
                service = value
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').nth(3))
                    .map(str::to_owned);
            }
            "x-amz-target" => target = Some(value.to_owned()),
            "x-amz-copy-source" => copy = true,
            "connection" | "keep-alive" => continue,
            _ => {}
        }
        forwarded.push_str(line);
        forwarded.push_str("\r\n");
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0; content_length];
    client.read_exact(&mut body).await?;

    let service = service.unwrap_or_else(|| "other".into());
    let op = operation(&service, &method, &path, target.as_deref(), copy);
    let fault = {
        let mut guard = shared.state.lock().expect("proxy state");
        let st = &mut *guard;
        let roll = st.next();
        let kind = if (roll >> 32).is_multiple_of(2) {
            Fault::Throttle
        } else {
            Fault::Internal
        };
        let targeted = st.services.as_ref().is_none_or(|s| s.contains(&service));
        let kind = match kind {
            Fault::Internal
                if st.lost_answers
                    && !st
                        .answers_kept
                        .iter()
                        .any(|(s, o)| *s == service && *o == op) =>
            {
                Fault::LostAnswer
            }
            other => other,
        };
        let mut fault = (targeted && roll % 1000 < st.per_mille).then_some(kind);
        if let Some(i) = st
            .lose_first
            .iter()
            .position(|(s, o)| *s == service && *o == op)
        {
            st.lose_first.remove(i);
            fault = Some(Fault::LostAnswer);
        }
        for counts in [
            st.counts.entry(service.clone()).or_default(),
            st.operations
                .entry((service.clone(), op.clone()))
                .or_default(),
        ] {
            counts.calls += 1;
            counts.faults += u64::from(fault.is_some());
        }
        fault
    };
    let mut client = client.into_inner();
    if let Some(fault) = fault.filter(|f| *f != Fault::LostAnswer) {
        let answer = fault_response(&service, fault, method == "HEAD");
        client.write_all(answer.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }
    let mut upstream = BufReader::new(TcpStream::connect(("127.0.0.1", upstream_port)).await?);
    upstream.get_mut().write_all(forwarded.as_bytes()).await?;
    upstream.get_mut().write_all(&body).await?;
    // The answer says the connection closes, whatever moto said, so the client never sends a
    // second call down a connection this proxy is about to close.
    let head = read_head(&mut upstream)
        .await?
        .context("moto closed the connection without answering")?;
    // The whole answer, so a hook sees it before the client does (moto closes after it).
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer).await?;
    let service_of_fault = service.clone();
    if let Some(hook) = &shared.hook {
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        hook(Call {
            service,
            operation: op,
            request: body,
            status,
            response: answer.clone(),
        })
        .await;
    }
    if fault == Some(Fault::LostAnswer) {
        let answer = fault_response(&service_of_fault, Fault::Internal, method == "HEAD");
        client.write_all(answer.as_bytes()).await?;
        client.shutdown().await?;
        return Ok(());
    }
    let mut relayed: String = head
        .split("\r\n")
        .filter(|l| {
            let name = l.split(':').next().unwrap_or_default().trim();
            !l.is_empty()
                && !name.eq_ignore_ascii_case("connection")
                && !name.eq_ignore_ascii_case("keep-alive")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    relayed.push_str("Connection: close\r\n\r\n");
    client.write_all(relayed.as_bytes()).await?;
    client.write_all(&answer).await?;
    client.shutdown().await?;
    Ok(())
}

/// An HTTP head up to its blank line, or `None` at a clean end of stream.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if reader.read_until(b'\n', &mut head).await? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("the stream ended inside an HTTP head");
        }
        if head[before..] == *b"\r\n" {
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
    }
}

/// What the service itself answers when it throttles or fails: S3 speaks XML (503 SlowDown,
/// 500 InternalError); the JSON services name the error in `__type` and `x-amzn-ErrorType`.
/// A HEAD answer has no body, as S3's has none.
fn fault_response(service: &str, fault: Fault, head: bool) -> String {
    let (status, content_type, error_header, body) = match (service, fault) {
        (_, Fault::LostAnswer) => unreachable!("answered as an internal error"),
        ("s3", Fault::Throttle) => (
            "503 Slow Down",
            "application/xml",
            None,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        ("s3", Fault::Internal) => (
            "500 Internal Server Error",
            "application/xml",
            None,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        (_, Fault::Throttle) => (
            "400 Bad Request",
            json_content_type(service),
            Some("ThrottlingException"),
            "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}",
        ),
        (_, Fault::Internal) => (
            "500 Internal Server Error",
            json_content_type(service),
            Some("InternalFailure"),
            "{\"__type\":\"InternalFailure\",\"message\":\"An internal error occurred\"}",
        ),
    };
    let body = if head { "" } else { body };
    let error_header = error_header.map_or(String::new(), |e| format!("x-amzn-ErrorType: {e}\r\n"));
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{error_header}x-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The content type of each service's protocol: awsJson1_0 (SQS), restJson1 (Batch),
/// awsJson1_1 (the rest).
fn json_content_type(service: &str) -> &'static str {
    match service {
        "sqs" => "application/x-amz-json-1.0",
        "batch" => "application/json",
        _ => "application/x-amz-json-1.1",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_rng_fails_about_the_asked_share() {
        let mut st = State {
            per_mille: 200,
            rng: 7,
            services: None,
            lost_answers: false,
            answers_kept: Vec::new(),
            lose_first: Vec::new(),
            counts: BTreeMap::new(),
            operations: BTreeMap::new(),
        };
        let faults = (0..10_000).filter(|_| st.next() % 1000 < 200).count();
        assert!((1800..2200).contains(&faults), "{faults}");
    }
}
