//! A fault-injecting HTTP proxy in front of moto: it forwards each call and, with a seeded RNG,
//! answers a share of them itself with the error a busy AWS region returns — a throttle or an
//! internal error, in the shape each service's SDK classifies as retryable — and counts calls and
//! injected faults per service. The SDK clients pointed at it cannot tell it from moto.
//!
//! hyper serves the SDK's connections and the workspace's test client forwards each call, so
//! keep-alive, chunked bodies and `Expect` are the libraries' business, not this file's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use lakegate_activities::testing::http;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Calls and injected faults of one service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls: u64,
    pub faults: u64,
}

#[derive(Debug)]
struct State {
    /// Faults per 1,000 calls.
    per_mille: u64,
    rng: u64,
    counts: BTreeMap<String, Counts>,
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
    state: Arc<Mutex<State>>,
    accept: JoinHandle<()>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Throttle,
    Internal,
}

impl FaultProxy {
    /// Forwards to 127.0.0.1:`upstream_port`, failing `per_mille` of every 1,000 calls.
    pub async fn start(upstream_port: u16, per_mille: u64, seed: u64) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            per_mille,
            rng: seed,
            counts: BTreeMap::new(),
        }));
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let state = shared.clone();
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    serve(request, upstream_port, state)
                });
                tokio::spawn(async move {
                    let io = hyper_util::rt::TokioIo::new(client);
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                    {
                        eprintln!("fault proxy: {e}");
                    }
                });
            }
        });
        Ok(Self {
            endpoint,
            state,
            accept,
        })
    }

    /// Per service (`s3`, `sqs`, `glue`, ...): calls received and faults injected so far.
    pub fn counts(&self) -> BTreeMap<String, Counts> {
        self.state.lock().expect("proxy state").counts.clone()
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

/// Headers that belong to one connection, not to the call: hyper sets its own on each side.
const HOP_BY_HOP: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::CONTENT_LENGTH,
    header::EXPECT,
    header::HeaderName::from_static("keep-alive"),
];

/// One call: count it, then fail it or forward it to moto and relay the answer.
async fn serve(
    request: Request<Incoming>,
    upstream_port: u16,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, http::Error> {
    // Credential=<key>/<date>/<region>/<service>/aws4_request names the service.
    let service = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("other")
        .to_owned();
    let fault = {
        let mut st = state.lock().expect("proxy state");
        let roll = st.next();
        let kind = if (roll >> 32).is_multiple_of(2) {
            Fault::Throttle
        } else {
            Fault::Internal
        };
        let fault = (roll % 1000 < st.per_mille).then_some(kind);
        let counts = st.counts.entry(service.clone()).or_default();
        counts.calls += 1;
        counts.faults += u64::from(fault.is_some());
        fault
    };
    // Read in full even when failing the call, as a server does: an answer before the body would
    // reach the SDK as a broken connection, not as the error it classifies.
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let head = parts.method == Method::HEAD;
    if let Some(fault) = fault {
        return Ok(fault_response(&service, fault, head));
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://127.0.0.1:{upstream_port}{path}").parse()?;
    for name in &HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let answer = http::send(Request::from_parts(parts, Full::new(body))).await?;
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    for name in &HOP_BY_HOP {
        // A HEAD answer's length is that of the object it describes (the SDK reads it), and
        // its body is empty; every other length is the body's, which hyper writes itself.
        if !(head && *name == header::CONTENT_LENGTH) {
            response.headers_mut().remove(name);
        }
    }
    Ok(response)
}

/// What the service itself answers when it throttles or fails: S3 speaks XML (503 SlowDown,
/// 500 InternalError); the JSON services name the error in `__type` and `x-amzn-ErrorType`.
/// A HEAD answer has no body, as S3's has none.
fn fault_response(service: &str, fault: Fault, head: bool) -> Response<Full<Bytes>> {
    let (status, content_type, error_type, body) = match (service, fault) {
        ("s3", Fault::Throttle) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/xml",
            None,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        ("s3", Fault::Internal) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/xml",
            None,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>fault-proxy</RequestId></Error>",
        ),
        (_, Fault::Throttle) => (
            StatusCode::BAD_REQUEST,
            json_content_type(service),
            Some("ThrottlingException"),
            "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}",
        ),
        (_, Fault::Internal) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json_content_type(service),
            Some("InternalFailure"),
            "{\"__type\":\"InternalFailure\",\"message\":\"An internal error occurred\"}",
        ),
    };
    let body = if head { "" } else { body };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("fault-proxy"));
    if let Some(error_type) = error_type {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    response
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
            counts: BTreeMap::new(),
        };
        let faults = (0..10_000).filter(|_| st.next() % 1000 < 200).count();
        assert!((1800..2200).contains(&faults), "{faults}");
    }
}
