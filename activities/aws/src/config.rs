//! The one place that builds AWS clients.
//!
//! Everything comes from the SDK's standard chain (AWS_PROFILE, AWS_REGION, the credentials chain,
//! AWS_ENDPOINT_URL and its per-service variants such as AWS_ENDPOINT_URL_S3) unless
//! [`AwsSettings`] says otherwise: an explicit setting always beats the environment, so a test
//! pointed at moto can never be redirected to a real account by a stray variable.
//!
//! Retries: both layers retry, each bounded. The SDK's standard retry (3 attempts, jittered
//! exponential backoff, a client-side token bucket) absorbs sub-second blips — a throttle, a
//! dropped connection, a 503 SlowDown — inside one activity attempt, where a retry costs
//! milliseconds instead of a Temporal round trip and a history event. Anything that outlives
//! those attempts surfaces as a port error with `retryable: true`, and Temporal's activity retry
//! policy takes over with its own backoff, visible in the workflow history and bounded by the
//! activity's schedule-to-close timeout. Per-attempt timeouts keep the worst case of one activity
//! attempt bounded (3 × attempt timeout + backoff), so activities' start-to-close timeouts can
//! be set above it. docs/aws.md has the numbers.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedHttpClient};

/// SDK attempts per call (the first try included). The SDK's standard default, kept explicit
/// because Temporal's retry policy is sized against it.
pub const SDK_MAX_ATTEMPTS: u32 = 3;
/// Per-attempt timeout for control-plane calls (Glue, Athena, Batch, Logs, SQS). It must outlast
/// SQS's 20-second long poll.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-attempt timeout for S3: a server-side CopyObject of a multi-GB object, or one 512 MiB part
/// of a multipart copy, can legitimately take minutes.
pub const S3_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(600);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a deployment (or a test) may set explicitly; anything left `None` comes from the
/// standard chain.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// Region; beats AWS_REGION and the profile.
    pub region: Option<String>,
    /// Named profile; beats AWS_PROFILE.
    pub profile: Option<String>,
    /// Endpoint for every service (moto, LocalStack, a VPC endpoint); beats AWS_ENDPOINT_URL and
    /// AWS_ENDPOINT_URL_<SERVICE>. Setting it also switches S3 to path-style addressing.
    pub endpoint_url: Option<String>,
    /// Static credentials. Only for emulators: real deployments use the credentials chain.
    pub static_credentials: Option<(String, String)>,
}

impl AwsSettings {
    /// Settings for an AWS emulator such as moto server: fixed region, fixed dummy credentials.
    pub fn emulator(endpoint_url: impl Into<String>) -> Self {
        Self {
            region: Some("us-east-1".into()),
            profile: None,
            endpoint_url: Some(endpoint_url.into()),
            static_credentials: Some(("testing".into(), "testing".into())),
        }
    }
}

/// The HTTPS client every AWS client shares: rustls with ring, the same TLS stack the Temporal
/// SDK already compiles. The SDK's default would add aws-lc (cmake and minutes of C).
pub fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Loads the shared SDK configuration from the standard chain plus `settings`.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .retry_config(RetryConfig::standard().with_max_attempts(SDK_MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((id, secret)) = &settings.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            id,
            secret,
            None,
            None,
            "lakegate-static",
        ));
    }
    loader.load().await
}

/// Whether the environment configures an endpoint for S3 (the SDK then talks to it instead of AWS,
/// and an emulator or VPC endpoint cannot resolve virtual-hosted bucket names).
fn env_sets_s3_endpoint() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !ignored && (set("AWS_ENDPOINT_URL_S3") || set("AWS_ENDPOINT_URL"))
}

/// Every client lakegate uses, built from one [`SdkConfig`].
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub glue: aws_sdk_glue::Client,
    pub athena: aws_sdk_athena::Client,
    pub batch: aws_sdk_batch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl AwsClients {
    pub async fn load(settings: &AwsSettings) -> Self {
        let sdk = load_sdk_config(settings).await;
        Self::from_sdk_config(&sdk, settings.endpoint_url.as_deref())
    }

    /// `explicit_endpoint` is set on every service config as well, because a per-service variable
    /// (AWS_ENDPOINT_URL_S3) would otherwise win over an endpoint given to the shared loader.
    pub fn from_sdk_config(sdk: &SdkConfig, explicit_endpoint: Option<&str>) -> Self {
        let path_style =
            explicit_endpoint.is_some() || sdk.endpoint_url().is_some() || env_sets_s3_endpoint();
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(S3_ATTEMPT_TIMEOUT)
                    .build(),
            );
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        let mut glue = aws_sdk_glue::config::Builder::from(sdk);
        let mut athena = aws_sdk_athena::config::Builder::from(sdk);
        let mut batch = aws_sdk_batch::config::Builder::from(sdk);
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(sdk);
        if let Some(url) = explicit_endpoint {
            s3 = s3.endpoint_url(url);
            sqs = sqs.endpoint_url(url);
            glue = glue.endpoint_url(url);
            athena = athena.endpoint_url(url);
            batch = batch.endpoint_url(url);
            logs = logs.endpoint_url(url);
        }
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            glue: aws_sdk_glue::Client::from_conf(glue.build()),
            athena: aws_sdk_athena::Client::from_conf(athena.build()),
            batch: aws_sdk_batch::Client::from_conf(batch.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
        }
    }
}
