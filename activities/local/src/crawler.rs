//! The Crawler and Catalog ports on DuckDB: a crawl sniffs the files under `raw/<dataset>/<table>/`
//! with DuckDB's CSV/JSON sniffer and (re)creates one view per table in a schema named after the
//! catalog database; the catalog reads those views back and reports them as Glue would.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use lakegate_activities::ports::{
    Catalog, ColumnInfo, CrawlError, CrawlRequest, CrawlStart, Crawler, CrawlerState,
    CrawlerStatus, LastCrawl, TableInfo,
};
use serde::{Deserialize, Serialize};

use crate::config::LocalConfig;
use crate::duckdb::{DuckDbCli, quote_ident, quote_literal};

mod hive_types;
mod layout;

pub use hive_types::glue_type;
use layout::tables_under;
pub(crate) use layout::{Format, scan_table};

/// Marks the views a crawl made (the view's comment), so the catalog ignores anything else a user
/// or dbt put into the schema.
pub(crate) const MARKER: &str = "lakegate-crawler";

/// What a crawler remembers across a worker restart, in `<crawlers_dir>/<name>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    /// The worker process that is running a crawl, if one is.
    #[serde(default)]
    running_in: Option<u32>,
    #[serde(default)]
    last_crawl: Option<LastCrawl>,
}

/// The view comment: what Glue keeps in the table's StorageDescriptor and partitions.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TableMeta {
    pub(crate) marker: String,
    pub(crate) location: String,
    pub(crate) format: String,
    pub(crate) partition_keys: Vec<String>,
    pub(crate) partitions: Vec<Vec<String>>,
}

/// Crawler and catalog over the lake folder and its DuckDB database. Cheap to clone; clones share
/// the running-crawl bookkeeping.
#[derive(Clone)]
pub struct LocalCrawler {
    pub(crate) lake_dir: PathBuf,
    state_dir: PathBuf,
    pub(crate) db: DuckDbCli,
    running: Arc<Mutex<HashSet<String>>>,
}

impl std::fmt::Debug for LocalCrawler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCrawler")
            .field("lake_dir", &self.lake_dir)
            .finish_non_exhaustive()
    }
}

impl LocalCrawler {
    pub fn new(config: &LocalConfig) -> Self {
        Self {
            lake_dir: config.lake_dir.clone(),
            state_dir: config.crawlers_dir.clone(),
            db: DuckDbCli::new(
                config.duckdb_cli(),
                config.duckdb_path.clone(),
                config.lake_dir.clone(),
                config.lock_wait,
            ),
            running: Default::default(),
        }
    }

    fn state_path(&self, crawler: &str) -> PathBuf {
        self.state_dir.join(format!("{crawler}.json"))
    }

    fn read_state(&self, crawler: &str) -> Result<Persisted, CrawlError> {
        match std::fs::read(self.state_path(crawler)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| backend(crawler, e, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Persisted::default()),
            Err(e) => Err(backend(crawler, e, true)),
        }
    }

    fn write_state(&self, crawler: &str, state: &Persisted) -> Result<(), CrawlError> {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.state_dir)?;
            let tmp = self.state_dir.join(format!(".{crawler}.json.tmp"));
            std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
            std::fs::rename(tmp, self.state_path(crawler))
        };
        write().map_err(|e| backend(crawler, e, true))
    }

    fn is_running_here(&self, crawler: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(crawler)
    }

    /// Crawls every table under the request's prefixes; one table's failure does not stop the
    /// others, as with Glue, but fails the crawl.
    async fn crawl(&self, request: &CrawlRequest) -> Result<(), String> {
        let tables = tables_under(&self.lake_dir, &request.prefixes)?;
        let mut errors = Vec::new();
        for (dataset, table) in &tables {
            if let Err(e) = self.crawl_table(&request.database, dataset, table).await {
                errors.push(format!("table {}: {e}", view_name(dataset, table)));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn crawl_table(&self, schema: &str, dataset: &str, table: &str) -> Result<(), String> {
        let dir = self.lake_dir.join("raw").join(dataset).join(table);
        let layout = scan_table(&dir)?;
        let Some(layout) = layout else {
            return self.empty_table(schema, dataset, table, &dir).await;
        };
        let globs: Vec<String> = layout
            .extensions
            .iter()
            .map(|ext| quote_literal(&format!("{}/**/*{ext}", dir.display())))
            .collect();
        // Partition values stay strings, as a Glue crawler types them, so the two backends give
        // dbt the same column types.
        let options = "hive_partitioning = true, hive_types_autocast = false, union_by_name = true";
        let reader = match layout.format {
            // A fixed delimiter and header: left free, the sniffer "reads" a file whose rows
            // disagree on their column count as one text column, and the crawl would bless it.
            Format::Csv => {
                format!(
                    "read_csv([{}], delim = ',', header = true, {options})",
                    globs.join(", ")
                )
            }
            Format::Tsv => {
                format!(
                    "read_csv([{}], delim = '\t', header = true, {options})",
                    globs.join(", ")
                )
            }
            Format::Json => format!(
                "read_json([{}], format = 'newline_delimited', {options})",
                globs.join(", ")
            ),
        };
        let meta = TableMeta {
            marker: MARKER.to_owned(),
            location: format!("{}/", dir.display()),
            format: layout.format.name().to_owned(),
            partition_keys: layout.partition_keys,
            partitions: layout.partitions,
        };
        let meta = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
        let view = format!(
            "{}.{}",
            quote_ident(schema),
            quote_ident(&view_name(dataset, table))
        );
        // The aggregate over every column reads every value: DuckDB's sniffer only samples the
        // first rows, and a crawl that blesses a file the first query then chokes on is worse
        // than a failed crawl. The transaction keeps the previous view if anything fails.
        let sql = format!(
            "BEGIN;\n\
             CREATE SCHEMA IF NOT EXISTS {schema_q};\n\
             CREATE OR REPLACE VIEW {view} AS SELECT * FROM {reader};\n\
             COMMENT ON VIEW {view} IS {meta_q};\n\
             SELECT count(*) AS n, max(hash(COLUMNS(*))) FROM {view};\n\
             COMMIT;",
            schema_q = quote_ident(schema),
            meta_q = quote_literal(&meta),
        );
        // DuckDB's whole text (a CSV error quotes the offending line): the crawl activity keeps
        // it in the log zone and hands the workflow its error class.
        self.db.query(&sql).await.map(drop).map_err(|e| e.detail())
    }
}

impl LocalCrawler {
    /// A crawled table whose every file was retracted keeps the columns it had and reads as
    /// empty, as a Glue table whose files are gone does: its view over the now empty folder
    /// would fail every query ("No files found"). No table yet: nothing to keep.
    async fn empty_table(
        &self,
        schema: &str,
        dataset: &str,
        table: &str,
        dir: &Path,
    ) -> Result<(), String> {
        let name = view_name(dataset, table);
        let known = self
            .db
            .query(&format!(
                "SELECT c.column_name, c.data_type, v.comment \
                 FROM duckdb_views() v JOIN information_schema.columns c \
                   ON c.table_schema = v.schema_name AND c.table_name = v.view_name \
                 WHERE v.schema_name = {} AND v.view_name = {} \
                   AND v.database_name = current_database() \
                 ORDER BY c.ordinal_position;",
                quote_literal(schema),
                quote_literal(&name)
            ))
            .await
            .map_err(|e| e.to_string())?;
        let mut meta = None;
        let mut exprs = Vec::new();
        for row in &known.rows {
            let [Some(column), Some(data_type), Some(comment)] = &row[..] else {
                continue;
            };
            meta = meta.or_else(|| serde_json::from_str::<TableMeta>(comment).ok());
            exprs.push(format!(
                "CAST(NULL AS {data_type}) AS {}",
                quote_ident(column)
            ));
        }
        // Only a view this crawler made, whose columns it knows.
        let Some(mut meta) = meta.filter(|m| m.marker == MARKER && !exprs.is_empty()) else {
            return Ok(());
        };
        meta.location = format!("{}/", dir.display());
        meta.partitions.clear();
        let meta = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
        let view = format!("{}.{}", quote_ident(schema), quote_ident(&name));
        let sql = format!(
            "BEGIN;\n\
             CREATE OR REPLACE VIEW {view} AS SELECT {} WHERE false;\n\
             COMMENT ON VIEW {view} IS {};\n\
             COMMIT;",
            exprs.join(", "),
            quote_literal(&meta)
        );
        self.db
            .query(&sql)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Crawler for LocalCrawler {
    async fn start_crawl(&self, request: &CrawlRequest) -> Result<CrawlStart, CrawlError> {
        let name = request.crawler.as_str();
        check_name(name)?;
        {
            let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
            if running.contains(name) {
                return Ok(CrawlStart::JoinedRunning);
            }
            running.insert(name.to_owned());
        }
        let mut state = match self.read_state(name) {
            Ok(state) => state,
            Err(e) => {
                self.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(name);
                return Err(e);
            }
        };
        if let Some(pid) = state.running_in.filter(|pid| *pid != std::process::id())
            && process_alive(pid)
        {
            // Another worker on this machine is crawling the same lake.
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Ok(CrawlStart::JoinedRunning);
        }
        state.running_in = Some(std::process::id());
        if let Err(e) = self.write_state(name, &state) {
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Err(e);
        }
        let (this, request) = (self.clone(), request.clone());
        tokio::spawn(async move {
            let started_at = now_secs();
            let outcome = this.crawl(&request).await;
            let name = request.crawler.as_str();
            tracing::info!(crawler = name, ok = outcome.is_ok(), "local crawl ended");
            let (status, error_message) = match outcome {
                Ok(()) => ("SUCCEEDED", None),
                Err(message) => ("FAILED", Some(message)),
            };
            let state = Persisted {
                running_in: None,
                last_crawl: Some(LastCrawl {
                    status: status.to_owned(),
                    error_message,
                    log_group: None,
                    log_stream: None,
                    started_at: Some(started_at),
                    log_key: None,
                }),
            };
            if let Err(e) = this.write_state(name, &state) {
                tracing::error!(crawler = name, error = %e, "cannot record the crawl's outcome");
            }
            this.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
        });
        Ok(CrawlStart::Started)
    }

    async fn crawler_status(&self, crawler: &str) -> Result<CrawlerStatus, CrawlError> {
        check_name(crawler)?;
        // Checked before reading the file: the crawl task writes the outcome, then leaves the set.
        let running_here = self.is_running_here(crawler);
        let state = self.read_state(crawler)?;
        if running_here {
            return Ok(CrawlerStatus {
                state: CrawlerState::Running,
                last_crawl: state.last_crawl,
            });
        }
        match state.running_in {
            None => Ok(CrawlerStatus {
                state: CrawlerState::Ready,
                last_crawl: state.last_crawl,
            }),
            Some(pid) if pid != std::process::id() && process_alive(pid) => Ok(CrawlerStatus {
                state: CrawlerState::Running,
                last_crawl: state.last_crawl,
            }),
            Some(_) => Ok(CrawlerStatus {
                state: CrawlerState::Ready,
                last_crawl: Some(LastCrawl {
                    status: "FAILED".to_owned(),
                    error_message: Some(
                        "the worker running this crawl stopped before it ended".into(),
                    ),
                    log_group: None,
                    log_stream: None,
                    started_at: None,
                    log_key: None,
                }),
            }),
        }
    }
}

#[async_trait]
impl Catalog for LocalCrawler {
    async fn list_tables(&self, database: &str) -> Result<Vec<TableInfo>, CrawlError> {
        let sql = format!(
            "SELECT v.view_name, v.comment, c.column_name, c.data_type \
             FROM duckdb_views() v JOIN information_schema.columns c \
               ON c.table_schema = v.schema_name AND c.table_name = v.view_name \
             WHERE v.schema_name = {} AND v.database_name = current_database() \
             ORDER BY v.view_name, c.ordinal_position;",
            quote_literal(database)
        );
        let rows = self.db.query(&sql).await.map_err(|e| CrawlError::Backend {
            crawler: "catalog".to_owned(),
            retryable: e.is_retryable(),
            message: e.to_string(),
        })?;
        let mut tables: BTreeMap<String, TableInfo> = BTreeMap::new();
        for row in rows.rows {
            let [Some(view), Some(comment), Some(column), Some(data_type)] = &row[..] else {
                continue;
            };
            let Ok(meta) = serde_json::from_str::<TableMeta>(comment) else {
                continue;
            };
            if meta.marker != MARKER {
                continue;
            }
            let table = tables.entry(view.clone()).or_insert_with(|| TableInfo {
                database: database.to_owned(),
                name: view.clone(),
                location: meta.location.clone(),
                columns: Vec::new(),
                partition_keys: meta
                    .partition_keys
                    .iter()
                    .map(|k| ColumnInfo {
                        name: k.clone(),
                        data_type: "string".into(),
                    })
                    .collect(),
                partitions: meta.partitions.clone(),
            });
            if !meta.partition_keys.contains(column) {
                table.columns.push(ColumnInfo {
                    name: column.clone(),
                    data_type: glue_type(data_type),
                });
            }
        }
        Ok(tables.into_values().collect())
    }

    async fn register_table(
        &self,
        database: &str,
        spec: &lakegate_activities::catalog::TableSpec,
        partitions: &[Vec<String>],
    ) -> Result<lakegate_models::TableChange, CrawlError> {
        crate::catalog::register(self, database, spec, partitions).await
    }
}

/// The catalog table name; the Glue crawler gets TablePrefix `<dataset>_` so both agree.
pub fn view_name(dataset: &str, table: &str) -> String {
    lakegate_activities::catalog::table_name(dataset, table)
}

fn check_name(crawler: &str) -> Result<(), CrawlError> {
    let ok = !crawler.is_empty()
        && crawler.len() <= 255
        && crawler
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !crawler.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(CrawlError::NoSuchCrawler(crawler.to_owned()))
    }
}

fn backend(crawler: &str, e: impl std::fmt::Display, retryable: bool) -> CrawlError {
    CrawlError::Backend {
        crawler: crawler.to_owned(),
        message: e.to_string(),
        retryable,
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn process_alive(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    rustix::process::test_kill_process(pid).is_ok()
}
