//! The DuckDB CLI as a subprocess: one short-lived `duckdb` process per call, so no process holds
//! the database file open between calls (dbt-duckdb, a separate process, needs it in between).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use lakegate_activities::ports::redact_line;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What the CLI prints for NULL. DuckDB's CSV output would print NULL and '' alike as nothing or
/// as the text `NULL`, which a cell may also hold; control characters make a collision with real
/// data practically impossible.
const NULL_SENTINEL: &str = "\u{1}NULL\u{2}";

/// The text DuckDB reports when another process holds the database file.
const LOCK_CONFLICT: &str = "Could not set lock on file";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DuckDbError {
    #[error("cannot run the DuckDB CLI {cli}: {source}")]
    Spawn {
        cli: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// DuckDB rejected the statement; the message is sanitized (no paths, no literals). `detail`
    /// is DuckDB's whole error text, for the lake's log zone only (see [`DuckDbError::detail`]).
    #[error("{message}")]
    Sql { message: String, detail: String },
    #[error("the DuckDB database stayed locked by another process for {waited:?}")]
    Locked { waited: Duration },
    #[error("unreadable DuckDB CLI output: {message}")]
    Output { message: String },
}

impl DuckDbError {
    /// DuckDB's own words, unsanitized: they quote the values a statement failed on, so they
    /// belong in the lake's log zone (which the activities write them to), never in a history
    /// or a log line.
    pub fn detail(&self) -> String {
        match self {
            DuckDbError::Sql { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// A locked database or a CLI that could not start may work on a later attempt; a SQL error
    /// will not.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DuckDbError::Locked { .. } | DuckDbError::Spawn { .. })
    }
}

/// A result set as text; NULL is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The process-wide lock for one database file.
///
/// DuckDB lets one process at a time open a database file for writing (and readers are shut out
/// while it does). Every call here starts a new CLI process, so two concurrent activities in the
/// same worker would make one of them fail with a lock error; an async mutex per file queues them
/// instead. Other processes (dbt-duckdb in a job, a second worker) cannot see this mutex: for
/// them [`DuckDbCli`] retries on DuckDB's lock error until `lock_wait` runs out, and the local job
/// runner can hold this same mutex while a job that writes the database runs.
pub fn database_lock(path: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    locks.entry(key).or_default().clone()
}

/// One DuckDB database file, driven through the CLI.
#[derive(Debug, Clone)]
pub struct DuckDbCli {
    cli: PathBuf,
    db: PathBuf,
    lake_dir: PathBuf,
    lock_wait: Duration,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl DuckDbCli {
    /// `lake_dir` is only used to turn file paths in DuckDB's error messages into key tags.
    pub fn new(cli: PathBuf, db: PathBuf, lake_dir: PathBuf, lock_wait: Duration) -> Self {
        let lock = database_lock(&db);
        Self {
            cli,
            db,
            lake_dir,
            lock_wait,
            lock,
        }
    }

    pub fn database(&self) -> &Path {
        &self.db
    }

    /// The CLI this runs.
    pub fn cli(&self) -> &Path {
        &self.cli
    }

    /// Runs `sql` (one or more statements, stopping at the first error) and returns the output of
    /// the last statement that produced rows, as text.
    pub async fn query(&self, sql: &str) -> Result<Rows, DuckDbError> {
        let stdout = self.run(sql, None).await?;
        parse_csv(&stdout)
    }

    /// As [`Self::query`], writing the CLI's process group id to `pid_file` each time it starts
    /// one, so another process can stop the query ([`kill_cli_group`]).
    pub async fn query_recording(&self, sql: &str, pid_file: &Path) -> Result<Rows, DuckDbError> {
        let stdout = self.run(sql, Some(pid_file)).await?;
        parse_csv(&stdout)
    }

    /// The SQL types of the columns the query `sql` returns, as DuckDB names them (`BIGINT`,
    /// `VARCHAR`, ...); `None` where DESCRIBE cannot bind it (several statements, DDL). Binding
    /// only: the query does not run again.
    pub async fn column_types(&self, sql: &str) -> Option<Vec<String>> {
        let sql = sql.trim().trim_end_matches(';');
        let described = self.query(&format!("DESCRIBE {sql}")).await.ok()?;
        let at = described.columns.iter().position(|c| c == "column_type")?;
        described
            .rows
            .iter()
            .map(|row| row.get(at).cloned().flatten())
            .collect()
    }

    /// Runs `sql` for its effect.
    pub async fn execute(&self, sql: &str) -> Result<(), DuckDbError> {
        self.run(sql, None).await.map(drop)
    }

    async fn run(&self, sql: &str, pid_file: Option<&Path>) -> Result<Vec<u8>, DuckDbError> {
        let _guard = self.lock.lock().await;
        if let Some(parent) = self.db.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| DuckDbError::Spawn {
                    cli: self.cli.clone(),
                    source,
                })?;
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            let output = self.run_once(sql, pid_file).await?;
            if output.status.success() {
                return Ok(output.stdout);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains(LOCK_CONFLICT) {
                if started.elapsed() >= self.lock_wait {
                    return Err(DuckDbError::Locked {
                        waited: started.elapsed(),
                    });
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            return Err(DuckDbError::Sql {
                message: sanitize_error(&stderr, &self.lake_dir),
                detail: stderr.into_owned(),
            });
        }
    }

    async fn run_once(
        &self,
        sql: &str,
        pid_file: Option<&Path>,
    ) -> Result<std::process::Output, DuckDbError> {
        let spawn_err = |source| DuckDbError::Spawn {
            cli: self.cli.clone(),
            source,
        };
        let mut child = Command::new(&self.cli)
            .arg(&self.db)
            .args(["-bail", "-csv", "-header", "-nullvalue", NULL_SENTINEL])
            // A user's ~/.duckdbrc must not change output modes under us.
            .args(["-init", "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own group, killed whole when the call is dropped (a stopped query): the CLI on
            // PATH may be a wrapper (PyPI's duckdb-cli is a Python script running the binary
            // as its child), and killing the wrapper alone would leave the query running.
            .process_group(0)
            .spawn()
            .map_err(spawn_err)?;
        let mut group = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
        if let (Some(path), Some(pgid)) = (pid_file, group.0) {
            let tmp = path.with_extension("tmp");
            let _ = std::fs::write(&tmp, format!("{pgid}\n"))
                .and_then(|()| std::fs::rename(&tmp, path));
        }
        // SQL goes through stdin: no argv length limit, and it never shows up in `ps`.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let script = sql.to_owned();
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(script.as_bytes()).await;
            let _ = stdin.write_all(b"\n").await;
        });
        let output = child.wait_with_output().await.map_err(spawn_err)?;
        group.0 = None;
        let _ = writer.await;
        Ok(output)
    }
}

/// Kills a CLI's process group unless disarmed (the CLI ended by itself).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0.and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

/// Kills the DuckDB CLI process group `pgid` (see [`DuckDbCli::query_recording`]) if a process
/// in it is still named like `cli`: a recorded group id can outlive its processes and come back
/// for an unrelated one. True when it killed something.
pub fn kill_cli_group(pgid: i32, cli: &Path) -> bool {
    let Some(name) = cli.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    // The kernel keeps 15 bytes of a command name.
    let name = &name[..name.len().min(15)];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    let member = entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            return false;
        };
        let comm = &stat[open + 1..close];
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && comm == name && !matches!(state, Some("Z") | Some("X"))
    });
    if !member {
        return false;
    }
    rustix::process::Pid::from_raw(pgid).is_some_and(|group| {
        rustix::process::kill_process_group(group, rustix::process::Signal::KILL).is_ok()
    })
}

fn parse_csv(stdout: &[u8]) -> Result<Rows, DuckDbError> {
    let mut rows = Rows::default();
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(rows);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(stdout);
    let mut records = reader.records();
    let bad = |e: csv::Error| DuckDbError::Output {
        message: e.to_string(),
    };
    if let Some(header) = records.next() {
        rows.columns = header.map_err(bad)?.iter().map(str::to_owned).collect();
    }
    for record in records {
        let record = record.map_err(bad)?;
        rows.rows.push(
            record
                .iter()
                .map(|c| (c != NULL_SENTINEL).then(|| c.to_owned()))
                .collect(),
        );
    }
    Ok(rows)
}

/// The first line of a DuckDB error, with file paths replaced by key tags and string literals
/// blanked: DuckDB quotes offending values ("Could not convert string 'Jane' ...") and file
/// names, and either may be PHI.
pub fn sanitize_error(stderr: &str, lake_dir: &Path) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("DuckDB failed");
    let lake = lake_dir.to_string_lossy();
    let mut out = redact_line(line, Some(lake.trim_end_matches('/')));
    if out.len() > 400 {
        let mut cut = 400;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_hides_paths_and_quoted_text_but_keeps_the_error_shape() {
        let lake = Path::new("/data/lake");
        let msg = "Conversion Error: Could not convert string 'Jane Doe' to INT32 in column \"age\" of \"/data/lake/raw/ehr/p/x.csv\"\nOriginal Line: 1,Jane Doe";
        let clean = sanitize_error(msg, lake);
        assert!(!clean.contains("Jane"), "{clean}");
        assert!(!clean.contains("/data/lake"), "{clean}");
        // After an engine's error class DuckDB quotes values and identifiers alike (`invalid date
        // field format: "<a name>"`), so the column name goes too; the error's shape stays.
        assert!(!clean.contains("\"age\""), "{clean}");
        assert!(
            clean.contains("Could not convert string") && clean.contains("in column"),
            "{clean}"
        );
        assert!(clean.contains("key#"), "{clean}");
        assert!(!clean.contains("Original Line"), "{clean}");
    }

    #[test]
    fn csv_output_keeps_null_apart_from_empty() {
        let out = format!("a,b,c\n1,{NULL_SENTINEL},\"\"\n");
        let rows = parse_csv(out.as_bytes()).unwrap();
        assert_eq!(rows.columns, ["a", "b", "c"]);
        assert_eq!(
            rows.rows,
            vec![vec![Some("1".into()), None, Some(String::new())]]
        );
    }
}
