//! How a workflow refuses a start input that does not decode (see
//! [`lakegate_models::WorkflowInput`]): at once, non-retryably, before any command, with the field
//! and the expected shape but no value from the payload. The well-formed path is untouched, so
//! histories recorded before replay unchanged.

use temporalio_common::error::ApplicationFailure;

/// The failure type of a refused start input, for clients that tell failures apart by type.
pub const MALFORMED_INPUT: &str = "MalformedInput";

/// The non-retryable failure that ends a run whose start input did not decode.
pub fn malformed_input(workflow_type: &str, why: &str) -> ApplicationFailure {
    ApplicationFailure::builder(format!(
        "{workflow_type}: the start input does not decode: {why}"
    ))
    .type_name(MALFORMED_INPUT.to_owned())
    .non_retryable(true)
    .build()
}
