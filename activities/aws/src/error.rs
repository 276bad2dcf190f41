//! Turning SDK errors into the ports' typed errors.
//!
//! The one decision made here is `retryable`: throttles, 5xx, timeouts and transport failures
//! are worth another Temporal activity attempt (the SDK already retried them a few times, see
//! [`crate::config`]); a 4xx that is not a throttle will fail the same way again. Messages carry
//! the service's error code and message, never a request or an object key: S3 error messages do
//! not echo keys, and callers add a [`lakegate_activities::ports::KeyTag`] where they need one.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services use for throttling (the SDK's own list, plus S3's SlowDown).
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Codes that mean "try again later" without being a throttle.
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerException",
    "InternalServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServerException",
    "OperationTimeoutException",
];

/// What an SDK failure means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The service's error code (`NoSuchKey`, `ThrottlingException`, ...), when it sent one.
    pub code: Option<String>,
    /// HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// `code: message`, or a description of the transport failure.
    pub message: String,
    pub retryable: bool,
}

/// Lets each port's error helper take any SDK crate's error without repeating `classify`'s
/// bounds: `fn backend(err: impl Into<Classified>)`.
impl<E> From<&SdkError<E, HttpResponse>> for Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(err: &SdkError<E, HttpResponse>) -> Self {
        classify(err)
    }
}

/// Whether an error code (and HTTP status) is worth retrying.
pub fn is_retryable(code: Option<&str>, status: Option<u16>) -> bool {
    if let Some(code) = code
        && (THROTTLE_CODES.contains(&code) || TRANSIENT_CODES.contains(&code))
    {
        return true;
    }
    matches!(status, Some(s) if s == 429 || s >= 500)
}

/// Classifies any SDK error (every AWS SDK crate shares these types).
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().map(str::to_owned);
            let status = ctx.raw().status().as_u16();
            let message = match (ctx.err().code(), ctx.err().message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                (None, Some(m)) => m.to_owned(),
                (None, None) => format!("HTTP {status}"),
            };
            let retryable = is_retryable(code.as_deref(), Some(status));
            Classified {
                code,
                status: Some(status),
                message,
                retryable,
            }
        }
        SdkError::TimeoutError(_) => Classified {
            code: None,
            status: None,
            message: "request timed out".into(),
            retryable: true,
        },
        SdkError::DispatchFailure(f) => Classified {
            code: None,
            status: None,
            message: format!(
                "request could not be sent: {}",
                if f.is_timeout() {
                    "timeout"
                } else if f.is_io() {
                    "connection error"
                } else if f.is_user() {
                    "client configuration error"
                } else {
                    "transport error"
                }
            ),
            // A request that never left (bad endpoint configuration, say) is not retryable; a
            // dropped connection or an I/O timeout is.
            retryable: f.is_io() || f.is_timeout() || f.is_other(),
        },
        SdkError::ResponseError(ctx) => Classified {
            code: None,
            status: Some(ctx.raw().status().as_u16()),
            message: "the response could not be read".into(),
            retryable: true,
        },
        SdkError::ConstructionFailure(_) => Classified {
            code: None,
            status: None,
            message: "the request could not be built".into(),
            retryable: false,
        },
        other => Classified {
            code: None,
            status: None,
            message: format!("{}", aws_sdk_s3::error::DisplayErrorContext(other)),
            retryable: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_5xx_retry_other_4xx_do_not() {
        assert!(is_retryable(Some("ThrottlingException"), Some(400)));
        assert!(is_retryable(Some("SlowDown"), Some(503)));
        assert!(is_retryable(None, Some(500)));
        assert!(is_retryable(None, Some(429)));
        assert!(is_retryable(Some("InternalServerException"), Some(400)));
        assert!(!is_retryable(Some("AccessDenied"), Some(403)));
        assert!(!is_retryable(Some("NoSuchKey"), Some(404)));
        assert!(!is_retryable(Some("InvalidRequestException"), Some(400)));
        assert!(!is_retryable(None, None));
    }
}
