//! The ports: what an activity needs from the outside world, as traits the backends implement.
//! `lakegate-local` implements them on a folder, DuckDB and local processes; `lakegate-aws` on S3,
//! Glue, Athena and Batch. One shared test suite per port runs against every backend.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use lakegate_models::short_hash;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

/// A streaming object body.
pub type ByteStream = Pin<Box<dyn AsyncRead + Send>>;

/// Displays an object key as a hash: keys may contain patient names, and errors end up in logs
/// and in workflow histories.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyTag(pub String);

impl fmt::Display for KeyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key#{}", short_hash(&self.0))
    }
}

impl fmt::Debug for KeyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

pub use crate::redact::{redact_line, redact_log};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// S3's ETag, or the content SHA-256 on stores that compute one.
    #[serde(default)]
    pub etag: Option<String>,
    /// S3 version id where versioning is on.
    #[serde(default)]
    pub version: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub last_modified: Option<i64>,
}

/// Keeps the store's method signatures on one line each, in the trait and in every backend.
pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(KeyTag),
    /// The source changed (or vanished) between the reads a move is conditioned on.
    #[error("object {key} changed during {operation}")]
    Conflict {
        key: KeyTag,
        operation: &'static str,
    },
    /// A move's destination already holds a different object; nothing was overwritten.
    #[error("destination {0} already holds a different object")]
    DestinationExists(KeyTag),
    #[error("invalid object key {key}: {reason}")]
    InvalidKey { key: KeyTag, reason: &'static str },
    #[error("{operation} on {key}: {source}")]
    Io {
        key: KeyTag,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A failure reported by the backend's service.
    #[error("{operation} on {key} failed: {message}")]
    Backend {
        key: KeyTag,
        operation: &'static str,
        message: String,
        /// Throttles, timeouts and 5xx: Temporal's activity retry should try again.
        retryable: bool,
    },
}

/// What every port's error tells an activity: whether Temporal's activity retry should try
/// again (throttles, 5xx, timeouts) or the failure is final (bad input, missing objects).
pub trait PortError: std::error::Error + Send + Sync + 'static {
    fn is_retryable(&self) -> bool;
}

impl PortError for StoreError {
    fn is_retryable(&self) -> bool {
        match self {
            StoreError::NotFound(_)
            | StoreError::InvalidKey { .. }
            | StoreError::DestinationExists(_) => false,
            StoreError::Conflict { .. } | StoreError::Io { .. } => true,
            StoreError::Backend { retryable, .. } => *retryable,
        }
    }
}

/// A bucket laid out in zones (landing/, raw/, quarantine/, rejected/).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// The bucket name that goes into workflow ids and inputs.
    fn bucket(&self) -> &str;
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StoreError>;
    async fn get(&self, key: &str) -> Result<ByteStream, StoreError>;
    async fn put(&self, key: &str, body: Bytes) -> Result<ObjectMeta, StoreError>;
    /// Every object under `prefix`, in key order, all pages.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// At most `limit` objects under `prefix` whose keys sort after `after`, in key order: one page
    /// of a listing that a backfill resumes from a cursor. Stores that can start a listing mid-way
    /// (S3's StartAfter) override this, so page N does not cost a listing of pages 1 to N-1.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut page = self.list(prefix).await?;
        page.retain(|o| after.is_none_or(|after| o.key.as_str() > after));
        page.truncate(limit);
        Ok(page)
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Moves `from` to `to` so that a retry after a crash at any point finishes the move and never
    /// loses or duplicates the object. Moving an object that is already at `to` (and gone from
    /// `from`) succeeds and returns the destination's metadata. Never overwrites: a different
    /// object at `to` is [`StoreError::DestinationExists`] and both objects stay where they are.
    async fn move_object(&self, from: &str, to: &str) -> Result<ObjectMeta, StoreError>;
    /// [`ObjectStore::move_object`], but only while `from` still has the ETag `etag` (the bytes a
    /// validation read): a replaced source is [`StoreError::Conflict`] and nothing moves. This
    /// default checks first and moves second; stores that can make the move itself conditional
    /// override it.
    async fn move_object_if(&self, from: &str, to: &str, etag: &str) -> StoreResult<ObjectMeta> {
        if let Some(src) = self.head(from).await?
            && src.etag.as_deref() != Some(etag)
        {
            return Err(StoreError::Conflict {
                key: KeyTag(from.to_owned()),
                operation: "move",
            });
        }
        self.move_object(from, to).await
    }
    /// Whether `key` holds a copy of the object that had the ETag `etag`, as a move leaves it:
    /// the same ETag by default. Stores whose copies can get a new ETag (S3's multipart copies)
    /// override it, or a retry could not recognise its own promotion of a large file.
    async fn holds_copy_of(&self, key: &str, etag: &str) -> StoreResult<bool> {
        Ok(self
            .head(key)
            .await?
            .is_some_and(|meta| meta.etag.as_deref() == Some(etag)))
    }
    /// The version that identifies this object's current content in ingest workflow ids, as an
    /// event for it would carry: S3's version id where versioning is on, else its ETag. Stores
    /// without either override this (the local store hashes the content).
    async fn version_of(&self, key: &str) -> Result<String, StoreError> {
        let meta = self
            .head(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(KeyTag(key.to_owned())))?;
        meta.version.or(meta.etag).ok_or(StoreError::Backend {
            key: KeyTag(key.to_owned()),
            operation: "version",
            message: "the store reports neither a version id nor an ETag".into(),
            retryable: false,
        })
    }
}

/// State of one crawler, as Glue reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CrawlerState {
    Ready,
    Running,
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCrawl {
    /// SUCCEEDED, CANCELLED or FAILED; adapters translate their service's other names for these
    /// outcomes, and keep any other value as given (never success).
    pub status: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub log_group: Option<String>,
    #[serde(default)]
    pub log_stream: Option<String>,
    #[serde(default)]
    pub started_at: Option<i64>,
    /// Where the crawl activity kept `error_message`'s original text (the log zone); set by the
    /// activity, never by a crawler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlerStatus {
    pub state: CrawlerState,
    #[serde(default)]
    pub last_crawl: Option<LastCrawl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrawlStart {
    Started,
    /// The crawler was already running; the caller waits for that run instead.
    JoinedRunning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrawlRequest {
    pub crawler: String,
    /// Catalog database the tables land in.
    pub database: String,
    /// Key prefixes (under raw/) with new data.
    pub prefixes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlError {
    #[error("crawler {0} does not exist")]
    NoSuchCrawler(String),
    #[error("crawler {crawler}: {message}")]
    Backend {
        crawler: String,
        message: String,
        retryable: bool,
    },
}

impl PortError for CrawlError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            CrawlError::Backend {
                retryable: true,
                ..
            }
        )
    }
}

#[async_trait]
pub trait Crawler: Send + Sync + 'static {
    async fn start_crawl(&self, request: &CrawlRequest) -> Result<CrawlStart, CrawlError>;
    /// [`Crawler::start_crawl`] for a request first made at `since` (its activity's first
    /// schedule). A crawl of exactly the request's prefixes that started at or after `since`
    /// already answers it, whoever started it — usually an earlier attempt whose answer was lost:
    /// it is `Started` (running or finished, the caller reads its outcome), never started again
    /// and never "joined" (which would make the caller crawl the same prefixes a second time).
    /// Backends whose retries cannot meet their own crawl keep the default.
    async fn start_crawl_since(
        &self,
        request: &CrawlRequest,
        since: std::time::SystemTime,
    ) -> Result<CrawlStart, CrawlError> {
        let _ = since;
        self.start_crawl(request).await
    }
    async fn crawler_status(&self, crawler: &str) -> Result<CrawlerStatus, CrawlError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    /// The catalog's type name (Glue/Hive types: string, bigint, double, date, ...).
    pub data_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    pub database: String,
    pub name: String,
    pub location: String,
    pub columns: Vec<ColumnInfo>,
    pub partition_keys: Vec<ColumnInfo>,
    /// Partition values, one list per partition, in partition-key order.
    pub partitions: Vec<Vec<String>>,
}

#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    async fn list_tables(&self, database: &str) -> Result<Vec<TableInfo>, CrawlError>;
    /// Creates `spec`'s table or brings an existing one to exactly the contract's schema, and
    /// adds `partitions` (values in partition-key order) that are not there yet; no crawler, no
    /// sampling. Idempotent: a retry after a crash at any point ends in the same table.
    async fn register_table(
        &self,
        database: &str,
        spec: &crate::catalog::TableSpec,
        partitions: &[Vec<String>],
    ) -> Result<lakegate_models::TableChange, CrawlError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueryState {
    Queued,
    Running,
    Succeeded,
    /// `reason` is the engine's text from a port, and only its error class once an activity
    /// returns it (the text is then in the log zone at `log_key`).
    Failed {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_key: Option<String>,
    },
    Cancelled {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_key: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultPage {
    pub columns: Vec<String>,
    /// Each column's SQL type as the engine names it (`bigint`, `DOUBLE`, `varchar`, ...), for
    /// typed output; empty where the engine did not say.
    #[serde(default)]
    pub types: Vec<String>,
    /// Cells as text; NULL is None.
    pub rows: Vec<Vec<Option<String>>>,
    #[serde(default)]
    pub next_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("query {query_id} failed: {reason}")]
    Failed { query_id: String, reason: String },
    #[error("query {query_id} was cancelled: {reason}")]
    Cancelled { query_id: String, reason: String },
    #[error("query engine: {message}")]
    Backend { message: String, retryable: bool },
}

impl PortError for QueryError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            QueryError::Backend {
                retryable: true,
                ..
            }
        )
    }
}

#[async_trait]
pub trait QueryEngine: Send + Sync + 'static {
    /// Starts `sql`. A second start with the same `request_token` returns the first query's id
    /// (Athena's ClientRequestToken), so a retried activity reconnects instead of re-running.
    async fn start_query(&self, sql: &str, request_token: &str) -> Result<String, QueryError>;
    async fn query_state(&self, query_id: &str) -> Result<QueryState, QueryError>;
    async fn results(
        &self,
        query_id: &str,
        next_token: Option<&str>,
    ) -> Result<ResultPage, QueryError>;
    /// Stops a query that has not finished (Athena StopQueryExecution; the local engine kills
    /// its DuckDB process), so a check past its deadline or in a cancelled transform stops
    /// costing. A finished query is left as it is; a stopped one reports CANCELLED afterwards.
    async fn stop_query(&self, query_id: &str, reason: &str) -> Result<(), QueryError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Unique per logical job: a retried submit with the same name finds the job already started.
    pub name: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// A previous job (by name) whose outputs this job continues from: the runner makes that
    /// job's artifacts (dbt's target/) available to this one, so `dbt retry` can resume.
    #[serde(default)]
    pub resume_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Submitted,
    Running,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: String,
    pub state: JobState,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    #[error("job {0} not found")]
    NotFound(String),
    #[error("job runner: {message}")]
    Backend { message: String, retryable: bool },
}

impl PortError for JobError {
    fn is_retryable(&self) -> bool {
        matches!(
            self,
            JobError::Backend {
                retryable: true,
                ..
            }
        )
    }
}

#[async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Submits the job, or returns the id of the job already submitted under `spec.name`.
    async fn submit(&self, spec: &JobSpec) -> Result<String, JobError>;
    async fn describe(&self, job_id: &str) -> Result<JobStatus, JobError>;
    async fn terminate(&self, job_id: &str, reason: &str) -> Result<(), JobError>;
    /// The last `lines` lines of the job's log.
    async fn log_tail(&self, job_id: &str, lines: usize) -> Result<Vec<String>, JobError>;
    /// A file the job left behind, by its path relative to the job's output (for dbt,
    /// `target/run_results.json`); `None` if the job wrote no such file. The default suits
    /// backends whose jobs keep no artifacts.
    async fn artifact(&self, job_id: &str, name: &str) -> Result<Option<Bytes>, JobError> {
        let _ = (job_id, name);
        Ok(None)
    }
}

/// How an event source (the SQS router, a directory watch, the landing sweep) asks for a file to
/// be onboarded. The worker implements it with the Temporal client; the caller never needs to
/// know about Temporal.
#[async_trait]
pub trait IngestStarter: Send + Sync + 'static {
    /// Starts the file's `IngestFileWorkflow`, or recognises that this file version already has
    /// one (a repeated event): both are success.
    async fn start_ingest(
        &self,
        input: lakegate_models::IngestInput,
    ) -> Result<StartOutcome, StartError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOutcome {
    Started { workflow_id: String },
    Duplicate { workflow_id: String },
}

#[derive(Debug, thiserror::Error)]
#[error("starting the ingest workflow failed: {message}")]
pub struct StartError {
    pub message: String,
}
