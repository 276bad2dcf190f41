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

/// A line of a tool's output made safe for logs and workflow histories (defence in depth: tool
/// text should not reach them at all). Databases quote the values they choke on, in single or
/// double quotes or not at all ("Could not convert string 'Jane' to INT32", `invalid date field
/// format: "Jane", expected ...`, `Value cannot be cast to date: Jane`), so:
/// - single-quoted literals are blanked, and so are double-quoted ones once an error class
///   (`Conversion Error:`, `INVALID_CAST_ARGUMENT:`) has begun the message; before it, double
///   quotes are identifiers (tables, columns) and kept;
/// - after an error class, whatever follows a further `: ` is blanked (unquoted values come last);
/// - a quote inside a word (O'Brien) neither opens nor closes a literal, and an unclosed literal
///   blanks the rest of the line;
/// - quoted paths become key tags (relative to `lake_root` when under it).
pub fn redact_line(line: &str, lake_root: Option<&str>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut in_error = false;
    loop {
        let quote_at = next_opening_quote(rest);
        let class_end = if in_error {
            None
        } else {
            error_class_end(&rest[..quote_at.unwrap_or(rest.len())])
        };
        let colon_at = if in_error {
            rest[..quote_at.unwrap_or(rest.len())].find(": ")
        } else {
            None
        };
        if let Some(end) = class_end {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            in_error = true;
            continue;
        }
        if let Some(at) = colon_at {
            out.push_str(&rest[..at + 2]);
            out.push('…');
            return out;
        }
        let Some(at) = quote_at else { break };
        let quote = rest.as_bytes()[at] as char;
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = closing_quote(after, quote) else {
            out.push(quote);
            out.push('…');
            return out;
        };
        let inner = &after[..end];
        if let Some(key) = lake_root.and_then(|root| inner.strip_prefix(root)) {
            out.push_str(&KeyTag(key.trim_start_matches('/').to_owned()).to_string());
        } else if inner.contains('/') {
            out.push_str(&KeyTag(inner.to_owned()).to_string());
        } else if quote == '\'' || in_error {
            out.push(quote);
            out.push('…');
            out.push(quote);
        } else {
            out.push('"');
            out.push_str(inner);
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A stored log made safe to print, line by line with [`redact_line`], and more: once a line
/// names an error class, the lines that continue it are blanked too (DuckDB prints the value it
/// choked on alone on the next line, under `strptime`'s caret, after `Original Line:`...), up to
/// the next line dbt starts with its timestamp (`12:00:01  `) or an empty line.
pub fn redact_log<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    lake_root: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_error = false;
    for line in lines {
        let trimmed = line.trim_start();
        let stamped = trimmed.get(..8).is_some_and(|t| {
            t.as_bytes()[2] == b':'
                && t.as_bytes()[5] == b':'
                && t.chars().all(|c| c.is_ascii_digit() || c == ':')
        });
        if stamped || trimmed.is_empty() {
            in_error = false;
        }
        if in_error {
            let indent = &line[..line.len() - trimmed.len()];
            out.push(format!("{indent}…"));
            continue;
        }
        let body = if stamped { &trimmed[8..] } else { trimmed };
        if error_class_end(body.split(['"', '\'']).next().unwrap_or_default()).is_some() {
            in_error = true;
        }
        out.push(redact_line(line, lake_root));
    }
    out
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// A quote that starts a literal: not preceded by a letter or digit (an apostrophe in O'Brien is
/// not one).
fn next_opening_quote(text: &str) -> Option<usize> {
    text.char_indices()
        .find(|&(at, c)| (c == '"' || c == '\'') && !is_word(text[..at].chars().next_back()))
        .map(|(at, _)| at)
}

/// The quote that ends a literal: not followed by a letter or digit ('O'Brien' is one literal).
/// A doubled quote is SQL's escape and stays inside.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != quote {
            continue;
        }
        match chars.peek() {
            Some(&(_, next)) if next == quote => {
                chars.next();
            }
            Some(&(_, next)) if is_word(Some(next)) => {}
            _ => return Some(at),
        }
    }
    None
}

/// The end of an error class at the start of a message: `<Words> Error:` / `Exception:` or an
/// upper-case code with an underscore (`INVALID_CAST_ARGUMENT:`), colon included.
fn error_class_end(text: &str) -> Option<usize> {
    text.match_indices(':').map(|(at, _)| at).find_map(|at| {
        let word_start = text[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &text[word_start..at];
        let lower = word.to_ascii_lowercase();
        let code = word.len() >= 4
            && word.contains('_')
            && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        (lower.ends_with("error") || lower.ends_with("exception") || code).then_some(at + 1)
    })
}

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
    async fn move_object_if(
        &self,
        from: &str,
        to: &str,
        etag: &str,
    ) -> Result<ObjectMeta, StoreError> {
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
    /// SUCCEEDED, CANCELLED or FAILED (moto may report other strings: kept as given).
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

#[cfg(test)]
mod redact_tests {
    use super::{redact_line, redact_log};

    const NAME: &str = "ZZSENT";

    #[test]
    fn engine_errors_lose_the_value_however_it_is_quoted() {
        for line in [
            r#"Conversion Error: invalid date field format: "ZZSENT Moore", expected format is (YYYY-MM-DD)"#,
            "Conversion Error: Could not convert string 'ZZSENT Moore' to INT32",
            "INVALID_CAST_ARGUMENT: Value cannot be cast to date: ZZSENT Moore",
            "Conversion Error: invalid date field format: ZZSENT, expected format is (YYYY-MM-DD)",
            "Conversion Error: Could not convert string 'O'ZZSENT' to DATE",
            r#"Conversion Error: invalid date field format: "O'ZZSENT", expected format"#,
            "Binder Error: value 'it''s ZZSENT' is not a date",
            "Invalid Input Error: unterminated 'ZZSENT",
        ] {
            let redacted = redact_line(line, None);
            assert!(!redacted.contains(NAME), "{line}\n-> {redacted}");
            assert!(
                redacted.contains("Error:") || redacted.contains("ARGUMENT:"),
                "{redacted}"
            );
        }
        assert_eq!(
            redact_line(
                r#"Conversion Error: invalid date field format: "x", expected"#,
                None
            ),
            "Conversion Error: invalid date field format: …"
        );
    }

    #[test]
    fn a_log_loses_the_lines_that_continue_an_error() {
        let log = "12:00:01    Runtime Error in model bad (models/bad.sql)\n  \
                   Invalid Input Error: Could not parse string \"ZZSENT\" according to format\n  \
                   ZZSENT-1\n  ^\n\n  \
                   Conversion Error: CSV Error on Line: 3\nOriginal Line: p2,O'ZZSENT\n\
                   12:00:02  Done. PASS=1 ERROR=2";
        let out = redact_log(log.lines(), None);
        let text = out.join("\n");
        assert!(!text.contains(NAME), "{text}");
        assert!(text.contains("Runtime Error in model bad"), "{text}");
        assert!(
            text.contains("Invalid Input Error: Could not parse string"),
            "{text}"
        );
        assert!(
            text.contains("Conversion Error: CSV Error on Line: …"),
            "{text}"
        );
        assert_eq!(
            out.last().map(String::as_str),
            Some("12:00:02  Done. PASS=1 ERROR=2")
        );
        assert_eq!(out.len(), log.lines().count());
    }

    #[test]
    fn progress_lines_keep_identifiers_and_apostrophes_in_words() {
        for line in [
            "1 of 5 OK created sql view model main.stg_patients ... [OK in 0.05s]",
            r#"Failure in test not_null_stg_patients_id ("main"."stg_patients")"#,
            "Runtime Error in model stg_patients (models/staging/stg_patients.sql)",
            "Don't panic: this is dbt's progress line",
        ] {
            assert_eq!(redact_line(line, None), line);
        }
        assert_eq!(
            redact_line("could not read '/lake/raw/x/ZZSENT.csv'", Some("/lake")),
            format!(
                "could not read {}",
                super::KeyTag("raw/x/ZZSENT.csv".into())
            )
        );
    }
}
