//! The worker's HTTP client for alert webhooks: hyper over rustls with ring, the TLS stack the
//! Temporal and AWS clients already compile, with the system's root certificates.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lakegate_activities::{PostOutcome, WebhookPoster};

/// A webhook that takes longer than this to answer is retried by the activity.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct HttpWebhooks {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl HttpWebhooks {
    pub fn new() -> anyhow::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }
}

#[async_trait]
impl WebhookPoster for HttpWebhooks {
    async fn post_json(&self, url: &str, body: Vec<u8>) -> PostOutcome {
        // The URL is a credential: errors say what kind of failure, never where.
        let request = match hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "lakegate-alerts")
            .body(Full::new(Bytes::from(body)))
        {
            Ok(request) => request,
            Err(_) => return PostOutcome::Unreachable("invalid webhook URL".into()),
        };
        match tokio::time::timeout(POST_TIMEOUT, self.client.request(request)).await {
            Err(_) => PostOutcome::Unreachable(format!("no answer in {}s", POST_TIMEOUT.as_secs())),
            Ok(Err(e)) if e.is_connect() => PostOutcome::Unreachable("connection failed".into()),
            Ok(Err(_)) => PostOutcome::Unreachable("request failed".into()),
            Ok(Ok(response)) => PostOutcome::Status(response.status().as_u16()),
        }
    }
}
