//! The QueryEngine port on the lake's DuckDB database, Athena-shaped: a query starts, runs in the
//! background, and its results are read page by page.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lakegate_activities::ports::{QueryEngine, QueryError, QueryState, ResultPage};
use lakegate_models::short_hash;

use crate::config::LocalConfig;
use crate::duckdb::{DuckDbCli, DuckDbError, Rows};

#[derive(Debug, Clone)]
enum Outcome {
    Running,
    Succeeded(Arc<Rows>),
    Failed(String),
}

/// How many queries (and their results) a worker remembers; the oldest are forgotten first.
const REMEMBERED: usize = 512;

#[derive(Default)]
struct Queries {
    by_token: HashMap<String, String>,
    by_id: HashMap<String, Outcome>,
    /// (token, id) in start order, for forgetting the oldest.
    order: VecDeque<(String, String)>,
    started: u64,
}

/// Runs SQL on the lake's DuckDB database through the CLI.
///
/// Results are held in memory, for the last 512 queries, until the worker stops: the local engine
/// serves a laptop's checks and `lakegate query`, not result sets larger than memory. Request
/// tokens are remembered as long, which covers what they are for (an activity retried inside one
/// worker). After a worker restart a query id is unknown: asking about it is a non-retryable
/// error, and no new query is started.
#[derive(Clone)]
pub struct LocalQueryEngine {
    db: DuckDbCli,
    page_size: usize,
    queries: Arc<Mutex<Queries>>,
}

impl std::fmt::Debug for LocalQueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueryEngine")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl LocalQueryEngine {
    pub fn new(config: &LocalConfig) -> Self {
        let db = DuckDbCli::new(
            config.duckdb_cli(),
            config.duckdb_path.clone(),
            config.lake_dir.clone(),
            config.lock_wait,
        );
        Self {
            db,
            page_size: config.page_size.max(1),
            queries: Default::default(),
        }
    }

    fn queries(&self) -> std::sync::MutexGuard<'_, Queries> {
        self.queries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn outcome(&self, query_id: &str) -> Result<Outcome, QueryError> {
        self.queries()
            .by_id
            .get(query_id)
            .cloned()
            .ok_or_else(|| QueryError::Backend {
                message: format!("query {query_id} is unknown to this worker"),
                retryable: false,
            })
    }
}

#[async_trait]
impl QueryEngine for LocalQueryEngine {
    async fn start_query(&self, sql: &str, request_token: &str) -> Result<String, QueryError> {
        let query_id = {
            let mut queries = self.queries();
            if let Some(id) = queries.by_token.get(request_token) {
                return Ok(id.clone());
            }
            queries.started += 1;
            let id = format!("local-{}-{}", queries.started, short_hash(request_token));
            queries
                .by_token
                .insert(request_token.to_owned(), id.clone());
            queries.by_id.insert(id.clone(), Outcome::Running);
            queries
                .order
                .push_back((request_token.to_owned(), id.clone()));
            while queries.order.len() > REMEMBERED {
                if let Some((token, old)) = queries.order.pop_front() {
                    queries.by_token.remove(&token);
                    queries.by_id.remove(&old);
                }
            }
            id
        };
        let (db, queries, sql, id) = (
            self.db.clone(),
            self.queries.clone(),
            sql.to_owned(),
            query_id.clone(),
        );
        tokio::spawn(async move {
            let outcome = match db.query(&sql).await {
                Ok(rows) => Outcome::Succeeded(Arc::new(rows)),
                // The engine's whole text: the query activity keeps it in the log zone and hands
                // the workflow its error class.
                Err(e) => Outcome::Failed(e.detail()),
            };
            tracing::debug!(query_id = %id, ok = matches!(outcome, Outcome::Succeeded(_)), "query ended");
            let mut queries = queries.lock().unwrap_or_else(|e| e.into_inner());
            // Unless it was forgotten meanwhile (more than REMEMBERED newer starts).
            if let Some(slot) = queries.by_id.get_mut(&id) {
                *slot = outcome;
            }
        });
        Ok(query_id)
    }

    async fn query_state(&self, query_id: &str) -> Result<QueryState, QueryError> {
        Ok(match self.outcome(query_id)? {
            Outcome::Running => QueryState::Running,
            Outcome::Succeeded(_) => QueryState::Succeeded,
            Outcome::Failed(reason) => QueryState::Failed {
                reason,
                log_key: None,
            },
        })
    }

    async fn results(
        &self,
        query_id: &str,
        next_token: Option<&str>,
    ) -> Result<ResultPage, QueryError> {
        let rows = match self.outcome(query_id)? {
            Outcome::Succeeded(rows) => rows,
            Outcome::Failed(reason) => {
                // An error's message can reach an activity failure: the class line, redacted.
                let first = reason.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Err(QueryError::Failed {
                    query_id: query_id.to_owned(),
                    reason: lakegate_activities::ports::redact_line(first, None),
                });
            }
            Outcome::Running => {
                return Err(QueryError::Backend {
                    message: format!("query {query_id} has not finished"),
                    retryable: true,
                });
            }
        };
        let offset = match next_token {
            None => 0,
            Some(token) => token.parse::<usize>().map_err(|_| QueryError::Backend {
                message: format!("invalid page token for query {query_id}"),
                retryable: false,
            })?,
        };
        let end = (offset + self.page_size).min(rows.rows.len());
        let page = rows.rows.get(offset..end).unwrap_or_default().to_vec();
        Ok(ResultPage {
            columns: rows.columns.clone(),
            rows: page,
            next_token: (end < rows.rows.len()).then(|| end.to_string()),
        })
    }
}

impl From<DuckDbError> for QueryError {
    fn from(e: DuckDbError) -> Self {
        QueryError::Backend {
            retryable: e.is_retryable(),
            message: e.to_string(),
        }
    }
}
