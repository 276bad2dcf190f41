//! The one HTTP client of lakegate's tests and test harnesses: moto's own API and the fault
//! proxy in front of it, the worker's `/metrics`, the Temporal Web UI. It is hyper-util's client,
//! which the Temporal client's tonic already compiles with these features, so it adds nothing to
//! the build. Plain HTTP only: every server a test talks to is on the loopback interface.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Longer than any answer of a loopback server takes: a server that hangs fails the test
/// instead of wedging it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An answer, its body read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy: the servers tests read answer in UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` on a connection of its own and reads the whole answer.
pub async fn send(request: Request<Full<Bytes>>) -> Result<Response, Error> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let uri = request.uri().clone();
    let exchange = async {
        let response = client.request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok::<_, Error>(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{uri} did not answer within {TIMEOUT:?}"))?
}

/// `method url` with `headers` and `body`.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Response, Error> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder.body(Full::new(body.into()))?).await
}

pub async fn get(url: &str) -> Result<Response, Error> {
    request("GET", url, &[], Bytes::new()).await
}

/// [`get`] for code outside a Tokio runtime (a plain `#[test]`, `spawn_blocking`).
pub fn blocking_get(url: &str) -> Result<Response, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(get(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// One canned answer from a listener this test owns; what the client sent comes back.
    async fn answer_once(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = vec![0; 4096];
            let n = stream.read(&mut seen).await.unwrap();
            stream.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen[..n]).into_owned()
        });
        (url, served)
    }

    #[tokio::test]
    async fn a_request_carries_its_headers_and_body_and_reads_a_chunked_answer() {
        let (url, served) = answer_once(
            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        )
        .await;
        let response = request("POST", &format!("{url}/p?q=1"), &[("X-Test", "yes")], "hi")
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.headers["x-a"], "b");
        assert_eq!(response.text(), "abc");
        let seen = served.await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("post /p?q=1 http/1.1\r\n"), "{seen}");
        assert!(seen.contains("x-test: yes\r\n"), "{seen}");
        assert!(seen.contains("content-length: 2\r\n"), "{seen}");
        assert!(seen.ends_with("\r\n\r\nhi"), "{seen}");
    }

    #[test]
    fn a_blocking_get_needs_no_runtime_and_a_refused_connection_is_an_error() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", free.local_addr().unwrap());
        drop(free);
        assert!(blocking_get(&url).is_err());
    }
}
