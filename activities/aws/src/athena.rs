//! The query engine on Athena.
//!
//! `start_query` sends the caller's request token as Athena's `ClientRequestToken`: Athena
//! answers a second StartQueryExecution with the same token (within its idempotency window) with
//! the first query's id instead of running the SQL again, so a retried activity reconnects to its
//! query. Waiting is the workflow's job (a durable timer between `query_state` calls); nothing
//! here sleeps. A query the workflow gives up on (its deadline, a cancelled transform) is stopped
//! with StopQueryExecution, so it stops scanning (and costing) at once.

use async_trait::async_trait;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use lakegate_activities::ports::{QueryEngine, QueryError, QueryState, ResultPage};
use sha2::{Digest, Sha256};

use crate::error::Classified;

/// Athena's bounds on ClientRequestToken length.
const TOKEN_MIN: usize = 32;
const TOKEN_MAX: usize = 128;

#[derive(Debug, Clone)]
pub struct AthenaEngine {
    athena: aws_sdk_athena::Client,
    workgroup: String,
    output_location: Option<String>,
    database: Option<String>,
    page_size: Option<i32>,
}

impl AthenaEngine {
    /// `workgroup` is usually `primary` or a workgroup the deployment created with its own
    /// output location and limits.
    pub fn new(client: aws_sdk_athena::Client, workgroup: impl Into<String>) -> Self {
        Self {
            athena: client,
            workgroup: workgroup.into(),
            output_location: None,
            database: None,
            page_size: None,
        }
    }

    /// `s3://bucket/prefix/` for results, when the workgroup does not enforce its own.
    pub fn with_output_location(mut self, location: impl Into<String>) -> Self {
        self.output_location = Some(location.into());
        self
    }

    /// Default database for unqualified table names.
    pub fn with_database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// Rows per GetQueryResults page (Athena's maximum and default is 1,000).
    pub fn with_page_size(mut self, rows: i32) -> Self {
        self.page_size = Some(rows);
        self
    }
}

/// The ClientRequestToken for a caller's request token: used as is when Athena accepts it (32 to
/// 128 printable ASCII characters), else its SHA-256 in hex, so any stable token the workflow
/// derives maps to the same Athena token on every retry.
pub fn athena_token(request_token: &str) -> String {
    let printable = request_token.bytes().all(|b| (0x21..0x7f).contains(&b));
    if printable && (TOKEN_MIN..=TOKEN_MAX).contains(&request_token.len()) {
        request_token.to_owned()
    } else {
        hex::encode(Sha256::digest(request_token.as_bytes()))
    }
}

fn backend(err: impl Into<Classified>) -> QueryError {
    let c = err.into();
    QueryError::Backend {
        message: c.message,
        retryable: c.retryable,
    }
}

/// Athena's reason for a FAILED or CANCELLED query: the error type and message when it gave one,
/// else the state-change reason.
fn reason_of(status: &aws_sdk_athena::types::QueryExecutionStatus) -> String {
    let mut parts = Vec::new();
    if let Some(err) = status.athena_error() {
        if let Some(t) = err.error_type() {
            parts.push(format!("error type {t}"));
        }
        if let Some(m) = err.error_message() {
            parts.push(m.to_owned());
        }
    }
    if parts.is_empty()
        && let Some(r) = status.state_change_reason()
    {
        parts.push(r.to_owned());
    }
    if parts.is_empty() {
        "no reason given".into()
    } else {
        parts.join(": ")
    }
}

#[async_trait]
impl QueryEngine for AthenaEngine {
    async fn start_query(&self, sql: &str, request_token: &str) -> Result<String, QueryError> {
        let out = self
            .athena
            .start_query_execution()
            .query_string(sql)
            .client_request_token(athena_token(request_token))
            .work_group(&self.workgroup)
            .set_result_configuration(
                self.output_location
                    .as_ref()
                    .map(|l| ResultConfiguration::builder().output_location(l).build()),
            )
            .set_query_execution_context(
                self.database
                    .as_ref()
                    .map(|d| QueryExecutionContext::builder().database(d).build()),
            )
            .send()
            .await
            .map_err(|e| backend(&e))?;
        out.query_execution_id()
            .map(str::to_owned)
            .ok_or_else(|| QueryError::Backend {
                message: "StartQueryExecution returned no query id".into(),
                retryable: true,
            })
    }

    async fn query_state(&self, query_id: &str) -> Result<QueryState, QueryError> {
        let out = self
            .athena
            .get_query_execution()
            .query_execution_id(query_id)
            .send()
            .await
            .map_err(|e| backend(&e))?;
        let Some(status) = out.query_execution().and_then(|q| q.status()) else {
            return Err(QueryError::Backend {
                message: format!("query {query_id} has no status"),
                retryable: true,
            });
        };
        Ok(match status.state() {
            Some(QueryExecutionState::Queued) | None => QueryState::Queued,
            Some(QueryExecutionState::Running) => QueryState::Running,
            Some(QueryExecutionState::Succeeded) => QueryState::Succeeded,
            Some(QueryExecutionState::Failed) => QueryState::Failed {
                reason: reason_of(status),
                log_key: None,
            },
            Some(QueryExecutionState::Cancelled) => QueryState::Cancelled {
                reason: reason_of(status),
                log_key: None,
            },
            Some(other) => {
                return Err(QueryError::Backend {
                    message: format!("query {query_id} is in unknown state {}", other.as_str()),
                    retryable: true,
                });
            }
        })
    }

    async fn results(
        &self,
        query_id: &str,
        next_token: Option<&str>,
    ) -> Result<ResultPage, QueryError> {
        let sent = self
            .athena
            .get_query_results()
            .query_execution_id(query_id)
            .set_next_token(next_token.map(str::to_owned))
            .set_max_results(self.page_size)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                // Results of a query that did not succeed are refused with InvalidRequest; say why
                // the query failed instead of echoing that.
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception())
                {
                    match self.query_state(query_id).await {
                        Ok(QueryState::Failed { reason, .. }) => {
                            return Err(QueryError::Failed {
                                query_id: query_id.to_owned(),
                                reason,
                            });
                        }
                        Ok(QueryState::Cancelled { reason, .. }) => {
                            return Err(QueryError::Cancelled {
                                query_id: query_id.to_owned(),
                                reason,
                            });
                        }
                        _ => {}
                    }
                }
                return Err(backend(&e));
            }
        };
        let info = out
            .result_set()
            .and_then(|r| r.result_set_metadata())
            .map(|m| m.column_info())
            .unwrap_or_default();
        let columns: Vec<String> = info.iter().map(|c| c.name().to_owned()).collect();
        let types = info.iter().map(|c| c.r#type().to_owned()).collect();
        let mut rows: Vec<Vec<Option<String>>> = out
            .result_set()
            .map(|r| {
                r.rows()
                    .iter()
                    .map(|row| {
                        row.data()
                            .iter()
                            .map(|d| d.var_char_value().map(str::to_owned))
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        // For SELECTs Athena repeats the column names as the first row of the first page.
        if next_token.is_none()
            && !columns.is_empty()
            && rows.first().is_some_and(|r| {
                r.iter()
                    .map(|c| c.as_deref())
                    .eq(columns.iter().map(|c| Some(c.as_str())))
            })
        {
            rows.remove(0);
        }
        Ok(ResultPage {
            columns,
            types,
            rows,
            next_token: out
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    /// StopQueryExecution. Athena takes no reason (the query's state change reason becomes
    /// "Query cancelled by user"); the workflow's failure carries ours. Stopping a query that
    /// already finished succeeds and leaves its state alone, so a retried stop is harmless.
    async fn stop_query(&self, query_id: &str, _reason: &str) -> Result<(), QueryError> {
        self.athena
            .stop_query_execution()
            .query_execution_id(query_id)
            .send()
            .await
            .map_err(|e| backend(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_athena::types::{AthenaError, QueryExecutionStatus};

    #[test]
    fn failure_reasons_prefer_athenas_error_over_the_state_change_reason() {
        let failed = QueryExecutionStatus::builder()
            .state(QueryExecutionState::Failed)
            .state_change_reason("SYNTAX_ERROR: line 1:8: Column 'x' cannot be resolved")
            .athena_error(
                AthenaError::builder()
                    .error_type(1006)
                    .error_message("Column 'x' cannot be resolved")
                    .build(),
            )
            .build();
        assert_eq!(
            reason_of(&failed),
            "error type 1006: Column 'x' cannot be resolved"
        );
        let cancelled = QueryExecutionStatus::builder()
            .state(QueryExecutionState::Cancelled)
            .state_change_reason("Query cancelled by user")
            .build();
        assert_eq!(reason_of(&cancelled), "Query cancelled by user");
        let bare = QueryExecutionStatus::builder()
            .state(QueryExecutionState::Failed)
            .build();
        assert_eq!(reason_of(&bare), "no reason given");
    }

    #[test]
    fn tokens_athena_accepts_pass_through_others_are_hashed_stably() {
        let ok = "wf-ingest-0123456789abcdef/act-7/attempt";
        assert_eq!(athena_token(ok), ok);
        let short = "wf-1/act-2";
        let hashed = athena_token(short);
        assert_eq!(hashed.len(), 64);
        assert_eq!(hashed, athena_token(short));
        assert_ne!(hashed, athena_token("wf-1/act-3"));
        assert_eq!(athena_token(&"x".repeat(200)).len(), 64);
        assert_eq!(
            athena_token("has a space in it, which Athena refuses ....").len(),
            64
        );
    }
}
