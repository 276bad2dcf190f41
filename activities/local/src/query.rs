//! The QueryEngine port on the lake's DuckDB database, Athena-shaped: a query starts, runs in the
//! background, and its results are read page by page.
//!
//! As Athena keeps a query's state in the service and its result in S3, this engine keeps each
//! query in a folder of its own, `<queries_dir>/<query id>/`: the request (`query.json`: token and
//! SQL), the engine that runs it (`owner`), its DuckDB process group (`pid`), a stop request
//! (`stop`) and, once it has ended, its outcome (`outcome.json`, rows included). The id is derived from the request token and the SQL,
//! so a retried start finds the same folder, in this worker or in the next. A worker that
//! restarts finds a query with no outcome whose owner is gone, kills what is left of its DuckDB
//! process (which would hold the database file) and runs it again (check queries are read-only,
//! so a second run is the same query); one whose owner still lives is left to it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use lakegate_activities::ports::{QueryEngine, QueryError, QueryState, ResultPage};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::AbortHandle;

use crate::config::LocalConfig;
use crate::duckdb::{DuckDbCli, DuckDbError, kill_cli_group};

const REQUEST: &str = "query.json";
const OWNER: &str = "owner";
const STOP: &str = "stop";
const PID: &str = "pid";
const OUTCOME: &str = "outcome.json";

/// Finished queries kept on disk: the oldest beyond this many, and any older than [`KEEP_FOR`],
/// are removed when a query starts. A result can hold patient rows (`lakegate query`), so none
/// is kept for long; a check reads its one number within seconds.
const REMEMBERED: usize = 512;
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// Outcomes held in memory, so paging through a result does not re-read its file per page.
const CACHED: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    token: String,
    sql: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
enum Outcome {
    Succeeded {
        columns: Vec<String>,
        /// Empty in outcomes recorded before types were, and where DuckDB could not say.
        #[serde(default)]
        types: Vec<String>,
        rows: Vec<Vec<Option<String>>>,
    },
    Failed {
        reason: String,
    },
    Cancelled {
        reason: String,
    },
}

/// Engines alive in this process, by instance number. An owner file naming this process and an
/// instance not in here belongs to an engine that was dropped, as good as a dead worker.
fn live_instances() -> MutexGuard<'static, HashSet<u64>> {
    static LIVE: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Tells this process apart from an earlier one that had the same pid (a container's worker is
/// often pid 1 in every incarnation).
fn process_nonce() -> u128 {
    static NONCE: OnceLock<u128> = OnceLock::new();
    *NONCE.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    })
}

struct Inner {
    db: DuckDbCli,
    dir: PathBuf,
    page_size: usize,
    instance: u64,
    /// Queries this engine is running, to stop them and to know they are alive.
    running: Mutex<HashMap<String, AbortHandle>>,
    cache: Mutex<VecDeque<(String, Arc<Outcome>)>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A dropped engine's queries end with it; the next engine on this folder runs them again.
        let running = self.running.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, task) in running.drain() {
            task.abort();
        }
        live_instances().remove(&self.instance);
    }
}

/// Runs SQL on the lake's DuckDB database through the CLI, one background task per query, with
/// each query's state and result in its folder under [`LocalConfig::queries_dir`].
///
/// Two workers that find the same orphaned query at the same moment may both run it again; each
/// outcome is complete and the first one written is the one every reader sees.
#[derive(Clone)]
pub struct LocalQueryEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalQueryEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueryEngine")
            .field("db", &self.inner.db)
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// The id of the query `sql` started under `token`: the same request gives the same id in every
/// worker, and a token reused for other SQL gives another query, not the first one's result.
pub fn query_id(token: &str, sql: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(token.as_bytes());
    hash.update([0]);
    hash.update(sql.as_bytes());
    format!("local-{}", &hex::encode(hash.finalize())[..24])
}

fn valid_id(id: &str) -> bool {
    id.len() <= 64
        && id.starts_with("local-")
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn io_error(query_id: &str) -> impl Fn(std::io::Error) -> QueryError + '_ {
    move |e| QueryError::Backend {
        message: format!("query {query_id}: {e}"),
        retryable: true,
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Writes a private file (results may hold patient rows) through a temporary name.
fn write_private(path: &Path, body: &[u8]) -> std::io::Result<PathBuf> {
    static TMP: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        TMP.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(body)?;
    file.sync_all()?;
    Ok(tmp)
}

fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = write_private(path, body)?;
    std::fs::rename(tmp, path)
}

/// Records how a query ended unless an outcome is there already: the first writer wins (a hard
/// link fails on an existing name), so a stop and a finishing run cannot both be seen.
fn record_outcome(dir: &Path, outcome: &Outcome) -> std::io::Result<()> {
    let body = serde_json::to_vec(outcome).map_err(std::io::Error::other)?;
    let path = dir.join(OUTCOME);
    let tmp = write_private(&path, &body)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn read_outcome(dir: &Path) -> Option<Outcome> {
    let bytes = std::fs::read(dir.join(OUTCOME)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl LocalQueryEngine {
    pub fn new(config: &LocalConfig) -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        live_instances().insert(instance);
        let db = DuckDbCli::new(
            config.duckdb_cli(),
            config.duckdb_path.clone(),
            config.lake_dir.clone(),
            config.lock_wait,
        );
        Self {
            inner: Arc::new(Inner {
                db,
                dir: config.queries_dir.clone(),
                page_size: config.page_size.max(1),
                instance,
                running: Default::default(),
                cache: Default::default(),
            }),
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn owner_line(&self) -> String {
        format!(
            "{} {} {}\n",
            std::process::id(),
            process_nonce(),
            self.inner.instance
        )
    }

    /// The folder of a query some engine started; unknown ids are a non-retryable error.
    fn existing(&self, query_id: &str) -> Result<PathBuf, QueryError> {
        let dir = self.inner.dir.join(query_id);
        if valid_id(query_id) && dir.join(REQUEST).is_file() {
            Ok(dir)
        } else {
            Err(QueryError::Backend {
                message: format!("query {query_id} is unknown to this engine"),
                retryable: false,
            })
        }
    }

    /// Whether the engine named in the query's owner file is still running it.
    fn owner_alive(&self, query_id: &str, dir: &Path) -> bool {
        let Some(owner) = read_trimmed(&dir.join(OWNER)) else {
            return false;
        };
        let mut fields = owner.split_whitespace();
        let (Some(pid), Some(nonce), Some(instance)) = (
            fields.next().and_then(|f| f.parse::<u32>().ok()),
            fields.next().and_then(|f| f.parse::<u128>().ok()),
            fields.next().and_then(|f| f.parse::<u64>().ok()),
        ) else {
            return false;
        };
        if pid != std::process::id() {
            return rustix::process::Pid::from_raw(pid as i32)
                .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
        }
        if nonce != process_nonce() {
            // An earlier process that had this pid.
            return false;
        }
        if instance == self.inner.instance {
            return self.running().contains_key(query_id);
        }
        live_instances().contains(&instance)
    }

    /// Runs the query in the background; its outcome goes to its folder.
    fn spawn(&self, query_id: &str, dir: PathBuf, sql: String) {
        let mut running = self.running();
        if running.contains_key(query_id) {
            return;
        }
        let db = self.inner.db.clone();
        let engine: Weak<Inner> = Arc::downgrade(&self.inner);
        let id = query_id.to_owned();
        let task = tokio::spawn(async move {
            let result = db.query_recording(&sql, &dir.join(PID)).await;
            // Only for typed output (`lakegate query --output json`), so a query whose types
            // cannot be had still succeeds.
            let types = match &result {
                Ok(rows) if !rows.columns.is_empty() => {
                    db.column_types(&sql).await.unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let outcome = match (read_trimmed(&dir.join(STOP)), result) {
                (Some(reason), _) => Outcome::Cancelled { reason },
                (None, Ok(rows)) => Outcome::Succeeded {
                    columns: rows.columns,
                    types,
                    rows: rows.rows,
                },
                // The engine's whole text: the query activity keeps it in the log zone and hands
                // the workflow its error class.
                (None, Err(e)) => Outcome::Failed { reason: e.detail() },
            };
            let ok = matches!(outcome, Outcome::Succeeded { .. });
            if let Err(e) = record_outcome(&dir, &outcome) {
                // The next poll finds no outcome and no live owner, and runs the query again.
                tracing::error!(query_id = %id, error = %e, "cannot record a query's outcome");
            }
            tracing::debug!(query_id = %id, ok, "query ended");
            // After the outcome is on disk, so a poll never sees neither.
            if let Some(engine) = engine.upgrade() {
                engine
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
            }
        });
        running.insert(query_id.to_owned(), task.abort_handle());
    }

    /// Kills the query's DuckDB process group if one is left (its owner is gone, or a stop
    /// reaches a query another worker runs).
    fn kill_process(&self, dir: &Path) {
        if let Some(pgid) = read_trimmed(&dir.join(PID)).and_then(|p| p.parse().ok())
            && kill_cli_group(pgid, self.inner.db.cli())
        {
            tracing::info!(pgid, "killed a query's DuckDB process");
        }
    }

    /// The query's outcome, or `None` while it runs. A query whose owner is gone (a worker that
    /// was killed or restarted) is taken over and run again, unless it was stopped.
    fn poll(&self, query_id: &str) -> Result<Option<Arc<Outcome>>, QueryError> {
        if let Some(cached) = self.cached(query_id) {
            return Ok(Some(cached));
        }
        let dir = self.existing(query_id)?;
        if self.running().contains_key(query_id) {
            return Ok(None);
        }
        if let Some(outcome) = read_outcome(&dir) {
            return Ok(Some(self.remember(query_id, outcome)));
        }
        if self.owner_alive(query_id, &dir) {
            return Ok(None);
        }
        let io = io_error(query_id);
        self.kill_process(&dir);
        if let Some(reason) = read_trimmed(&dir.join(STOP)) {
            record_outcome(&dir, &Outcome::Cancelled { reason }).map_err(&io)?;
            return Ok(read_outcome(&dir).map(|o| self.remember(query_id, o)));
        }
        let request: Request = std::fs::read(dir.join(REQUEST))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| QueryError::Backend {
                message: format!("query {query_id}: unreadable request"),
                retryable: false,
            })?;
        tracing::info!(query_id, "running again a query whose worker is gone");
        write_atomic(&dir.join(OWNER), self.owner_line().as_bytes()).map_err(&io)?;
        self.spawn(query_id, dir, request.sql);
        Ok(None)
    }

    fn cached(&self, query_id: &str) -> Option<Arc<Outcome>> {
        let cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .iter()
            .find(|(id, _)| id == query_id)
            .map(|(_, o)| o.clone())
    }

    fn remember(&self, query_id: &str, outcome: Outcome) -> Arc<Outcome> {
        let outcome = Arc::new(outcome);
        let mut cache = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.push_back((query_id.to_owned(), outcome.clone()));
        while cache.len() > CACHED {
            cache.pop_front();
        }
        outcome
    }

    /// Removes finished queries past [`KEEP_FOR`] and beyond the newest [`REMEMBERED`].
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.inner.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut finished: Vec<(SystemTime, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ended) = std::fs::metadata(path.join(OUTCOME)).and_then(|m| m.modified()) else {
                continue;
            };
            if now.duration_since(ended).unwrap_or_default() > KEEP_FOR {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                finished.push((ended, path));
            }
        }
        if finished.len() > REMEMBERED {
            finished.sort();
            for (_, path) in &finished[..finished.len() - REMEMBERED] {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

#[async_trait]
impl QueryEngine for LocalQueryEngine {
    async fn start_query(&self, sql: &str, request_token: &str) -> Result<String, QueryError> {
        let id = query_id(request_token, sql);
        let dir = self.inner.dir.join(&id);
        if dir.join(REQUEST).is_file() {
            // A retried start, perhaps in a later worker: `query_state` takes it over if needed.
            return Ok(id);
        }
        let name = id.clone();
        let io = io_error(&name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.inner.dir)
            .map_err(&io)?;
        self.prune();
        // Written in a private folder that is renamed into place: of two racing starts exactly
        // one rename succeeds, and only it runs the query.
        static STAGING: AtomicU64 = AtomicU64::new(0);
        let staging = self.inner.dir.join(format!(
            ".staging-{id}-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(&io)?;
        let request = Request {
            token: request_token.to_owned(),
            sql: sql.to_owned(),
        };
        let body = serde_json::to_vec(&request).map_err(|e| io(std::io::Error::other(e)))?;
        write_atomic(&staging.join(REQUEST), &body).map_err(&io)?;
        write_atomic(&staging.join(OWNER), self.owner_line().as_bytes()).map_err(&io)?;
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
            if dir.join(REQUEST).is_file() {
                return Ok(id);
            }
            return Err(io(std::io::Error::other("cannot create the query folder")));
        }
        self.spawn(&id, dir, request.sql);
        Ok(id)
    }

    async fn query_state(&self, query_id: &str) -> Result<QueryState, QueryError> {
        Ok(match self.poll(query_id)?.as_deref() {
            None => QueryState::Running,
            Some(Outcome::Succeeded { .. }) => QueryState::Succeeded,
            Some(Outcome::Failed { reason }) => QueryState::Failed {
                reason: reason.clone(),
                log_key: None,
            },
            Some(Outcome::Cancelled { reason }) => QueryState::Cancelled {
                reason: reason.clone(),
                log_key: None,
            },
        })
    }

    async fn results(
        &self,
        query_id: &str,
        next_token: Option<&str>,
    ) -> Result<ResultPage, QueryError> {
        let outcome = self.poll(query_id)?.ok_or_else(|| QueryError::Backend {
            message: format!("query {query_id} has not finished"),
            retryable: true,
        })?;
        let (columns, types, rows) = match outcome.as_ref() {
            Outcome::Succeeded {
                columns,
                types,
                rows,
            } => (columns, types, rows),
            Outcome::Failed { reason } => {
                // An error's message can reach an activity failure: the class line, redacted.
                let first = reason.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Err(QueryError::Failed {
                    query_id: query_id.to_owned(),
                    reason: lakegate_activities::ports::redact_line(first, None),
                });
            }
            Outcome::Cancelled { reason } => {
                return Err(QueryError::Cancelled {
                    query_id: query_id.to_owned(),
                    reason: reason.clone(),
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
        let end = (offset + self.inner.page_size).min(rows.len());
        let page = rows.get(offset..end).unwrap_or_default().to_vec();
        Ok(ResultPage {
            columns: columns.clone(),
            types: types.clone(),
            rows: page,
            next_token: (end < rows.len()).then(|| end.to_string()),
        })
    }

    /// Kills the DuckDB process group of the query (through the task, whose CLI call kills its
    /// group when dropped, or by the recorded group id). A query another live worker runs is
    /// marked too: that worker reports it CANCELLED when its CLI call ends.
    async fn stop_query(&self, query_id: &str, reason: &str) -> Result<(), QueryError> {
        let dir = self.existing(query_id)?;
        if dir.join(OUTCOME).exists() {
            return Ok(());
        }
        let io = io_error(query_id);
        write_atomic(&dir.join(STOP), format!("{reason}\n").as_bytes()).map_err(&io)?;
        let task = self.running().remove(query_id);
        let stopped_here = task.is_some();
        if let Some(task) = task {
            task.abort();
        }
        if !stopped_here {
            // Another worker's query, or one left by a worker that is gone.
            self.kill_process(&dir);
        }
        if stopped_here || !self.owner_alive(query_id, &dir) {
            record_outcome(
                &dir,
                &Outcome::Cancelled {
                    reason: reason.to_owned(),
                },
            )
            .map_err(&io)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_request_and_the_sql() {
        let a = query_id("wf-1-check-0", "select 1");
        assert_eq!(a, query_id("wf-1-check-0", "select 1"));
        assert_ne!(a, query_id("wf-1-check-1", "select 1"));
        assert_ne!(a, query_id("wf-1-check-0", "select 2"));
        assert!(valid_id(&a), "{a}");
        assert!(!valid_id("local-../../etc"));
        assert!(!valid_id("local-3-abc/def"));
    }

    #[test]
    fn the_first_outcome_recorded_stands() {
        let dir = tempfile::tempdir().unwrap();
        let cancelled = Outcome::Cancelled {
            reason: "stopped".into(),
        };
        record_outcome(dir.path(), &cancelled).unwrap();
        record_outcome(
            dir.path(),
            &Outcome::Succeeded {
                columns: vec!["n".into()],
                types: vec!["INTEGER".into()],
                rows: vec![vec![Some("1".into())]],
            },
        )
        .unwrap();
        assert!(matches!(
            read_outcome(dir.path()),
            Some(Outcome::Cancelled { reason }) if reason == "stopped"
        ));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, [OUTCOME]);
    }
}
