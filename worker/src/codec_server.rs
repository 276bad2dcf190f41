//! `lakegate codec-server`: Temporal's remote codec protocol over the payload codec, so the Web UI
//! (its codec server setting, or `temporal server start-dev --ui-codec-endpoint`) and the
//! `temporal` CLI (`--codec-endpoint`) show the payloads of lakegate's histories decoded, to those
//! who can reach it and hold its token.
//!
//! The protocol: `POST <prefix>/encode` and `POST <prefix>/decode`, each with a JSON body
//! `{"payloads": [...]}` of payloads in proto3 JSON (metadata values and data base64), answered in
//! the same shape. Browsers reach it cross-origin from the Web UI, so the configured UI origins get
//! CORS headers (credentials allowed: the UI can send cookies or an Authorization header); other
//! origins get none, and the browser keeps the answer from them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;
use tokio::net::TcpListener;

use crate::codec::EncryptionCodec;

/// Request bodies larger than this are refused: Temporal's own limit for a whole request is 4 MB.
const MAX_BODY: usize = 8 << 20;

/// `lakegate codec-server`'s flags. The keys are the configured payload keys (`--codec-key-file`,
/// LAKEGATE_CODEC_KEYS or the dev key file), the same the workers use.
#[derive(Debug, Clone, clap::Args)]
pub struct CodecServerArgs {
    /// Address to listen on. Behind an ingress or a port-forward in production; loopback here.
    #[arg(
        long,
        env = "LAKEGATE_CODEC_SERVER_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub listen: std::net::SocketAddr,
    /// Origin of the Temporal Web UI that may call the server from the browser (repeatable),
    /// e.g. https://temporal.example.org.
    #[arg(
        long = "ui-origin",
        env = "LAKEGATE_CODEC_SERVER_UI_ORIGINS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8233,http://localhost:8233"
    )]
    pub ui_origins: Vec<String>,
    /// Require `Authorization: Bearer <token>` (the CLI's `--codec-auth "Bearer <token>"`). Only
    /// from the environment, so it stays out of process listings.
    #[arg(skip = std::env::var(TOKEN_ENV).ok())]
    pub token: Option<String>,
}

/// Environment variable with the codec server's bearer token.
pub const TOKEN_ENV: &str = "LAKEGATE_CODEC_SERVER_TOKEN";

/// `lakegate codec-server`: serves until `shutdown` resolves.
pub async fn run(
    args: CodecServerArgs,
    config: &crate::LakeConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let codec = config.codec()?.context(
        "no payload keys configured: set --codec-key-file, LAKEGATE_CODEC_KEYS, or run `lakegate dev` once",
    )?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        key = codec.keys().current_id(),
        origins = ?args.ui_origins,
        auth = args.token.is_some(),
        "codec server started"
    );
    CodecServer::new(codec, args.ui_origins, args.token)
        .serve(listener, shutdown)
        .await?;
    Ok(())
}

/// The codec server `lakegate dev` runs for its Web UI on `ui_port`: on 127.0.0.1, port
/// `ui_port + 1` when free (a stable address to pass to `--codec-endpoint`), else any free port.
/// Returns its URL and the task serving it.
pub async fn start_dev(
    codec: &EncryptionCodec,
    ui_port: u16,
) -> std::io::Result<(String, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = match TcpListener::bind(("127.0.0.1", ui_port.wrapping_add(1))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(("127.0.0.1", 0)).await?,
    };
    let url = format!("http://{}", listener.local_addr()?);
    let origins = vec![
        format!("http://127.0.0.1:{ui_port}"),
        format!("http://localhost:{ui_port}"),
    ];
    let server = CodecServer::new(codec.clone(), origins, None);
    let task = tokio::spawn(server.serve(listener, futures::future::pending()));
    Ok((url, task))
}

#[derive(Debug, Clone)]
pub struct CodecServer {
    codec: EncryptionCodec,
    /// Origins (`scheme://host:port`) whose pages may call the server: the Web UI's.
    allowed_origins: Vec<String>,
    /// When set, every encode/decode must carry `Authorization: Bearer <token>`.
    token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payloads {
    #[serde(default)]
    payloads: Vec<JsonPayload>,
}

/// A payload in proto3 JSON: bytes as standard base64.
#[derive(Debug, Serialize, Deserialize)]
struct JsonPayload {
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    data: String,
}

#[derive(Debug, thiserror::Error)]
enum RequestError {
    #[error("body is not {{\"payloads\": [...]}} with base64 metadata and data: {0}")]
    BadJson(#[from] serde_json::Error),
    #[error("payload field {0} is not base64")]
    BadBase64(&'static str),
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

impl JsonPayload {
    fn into_payload(self) -> Result<Payload, RequestError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let metadata = self
            .metadata
            .into_iter()
            .map(|(k, v)| {
                b64.decode(v)
                    .map(|v| (k, v))
                    .map_err(|_| RequestError::BadBase64("metadata"))
            })
            .collect::<Result<_, _>>()?;
        let data = b64
            .decode(self.data)
            .map_err(|_| RequestError::BadBase64("data"))?;
        Ok(Payload {
            metadata,
            data,
            external_payloads: Vec::new(),
        })
    }

    fn from_payload(payload: Payload) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            metadata: payload
                .metadata
                .into_iter()
                .map(|(k, v)| (k, b64.encode(v)))
                .collect(),
            data: b64.encode(payload.data),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    Encode,
    Decode,
}

impl CodecServer {
    pub fn new(
        codec: EncryptionCodec,
        allowed_origins: Vec<String>,
        token: Option<String>,
    ) -> Self {
        Self {
            codec,
            allowed_origins: allowed_origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Serves connections from `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let server = Arc::new(self);
        futures::pin_mut!(shutdown);
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => accepted?,
                () = &mut shutdown => return Ok(()),
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.handle(request).await) }
                });
                // A client that hangs up mid-request is its own business.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .filter(|o| self.allowed_origins.iter().any(|a| a == o))
            .map(str::to_owned);
        let mut response = self.route(request).await;
        if let Some(origin) = origin {
            let headers = response.headers_mut();
            if let Ok(origin) = HeaderValue::from_str(&origin) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, x-namespace, authorization"),
            );
            headers.insert(header::VARY, HeaderValue::from_static("origin"));
        }
        response
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().trim_end_matches('/');
        let direction = if path.ends_with("/encode") {
            Direction::Encode
        } else if path.ends_with("/decode") {
            Direction::Decode
        } else {
            return text(StatusCode::NOT_FOUND, "POST to /encode or /decode");
        };
        match *request.method() {
            // A CORS preflight carries no credentials; the headers are added by `handle`.
            Method::OPTIONS => return text(StatusCode::NO_CONTENT, ""),
            Method::POST => {}
            _ => return text(StatusCode::METHOD_NOT_ALLOWED, "POST only"),
        }
        if !self.authorized(&request) {
            return text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        }
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large or cut off"),
        };
        match self.convert(direction, &body) {
            Ok(json) => {
                let mut response = Response::new(Full::new(Bytes::from(json)));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(e) => text(StatusCode::BAD_REQUEST, &e.to_string()),
        }
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }

    fn convert(&self, direction: Direction, body: &[u8]) -> Result<Vec<u8>, RequestError> {
        let request: Payloads = serde_json::from_slice(body)?;
        let payloads = request
            .payloads
            .into_iter()
            .map(JsonPayload::into_payload)
            .collect::<Result<Vec<_>, _>>()?;
        let converted = match direction {
            Direction::Encode => self.codec.encode_all(payloads)?,
            Direction::Decode => self.codec.decode_all(payloads)?,
        };
        Ok(serde_json::to_vec(&Payloads {
            payloads: converted
                .into_iter()
                .map(JsonPayload::from_payload)
                .collect(),
        })?)
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.to_owned())));
    *response.status_mut() = status;
    response
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PayloadKeys;

    fn server() -> CodecServer {
        let keys = PayloadKeys::parse(&PayloadKeys::generate_entry("k1")).unwrap();
        CodecServer::new(
            EncryptionCodec::new(keys),
            vec!["http://127.0.0.1:8233/".into()],
            Some("s3cret".into()),
        )
    }

    #[test]
    fn encode_then_decode_gives_the_payloads_back() {
        let server = server();
        let body =
            br#"{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"eyJhIjoxfQ=="}]}"#;
        let encoded = server.convert(Direction::Encode, body).unwrap();
        let text = String::from_utf8(encoded.clone()).unwrap();
        assert!(!text.contains("eyJhIjoxfQ=="), "{text}");
        let decoded: serde_json::Value =
            serde_json::from_slice(&server.convert(Direction::Decode, &encoded).unwrap()).unwrap();
        assert_eq!(decoded["payloads"][0]["data"], "eyJhIjoxfQ==");
        assert_eq!(
            decoded["payloads"][0]["metadata"]["encoding"],
            "anNvbi9wbGFpbg=="
        );
    }

    #[test]
    fn bad_bodies_are_named() {
        let server = server();
        let error = server
            .convert(Direction::Decode, br#"{"payloads":[{"data":"%%"}]}"#)
            .unwrap_err();
        assert!(error.to_string().contains("not base64"), "{error}");
        assert!(server.convert(Direction::Decode, b"nope").is_err());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"abc", b"ab"));
    }
}
