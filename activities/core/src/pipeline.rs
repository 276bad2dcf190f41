//! Activities of the crawl and transform workflows, and the one that hands a promoted file to its
//! crawler. Each is a short call: waiting is the workflow's job (durable timers between polls).

use std::collections::BTreeMap;
use std::sync::Arc;

use lakegate_models::names;
use lakegate_models::{CrawlInput, CrawlTiming, NewData, PromotedFile, TransformInput};
use serde::{Deserialize, Serialize};
use temporalio_client::{UntypedSignal, WorkflowStartOptions};
use temporalio_common::UntypedWorkflow;
use temporalio_common::data_converters::{PayloadConverter, RawValue};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

pub use crate::catalog::{CatalogRequest, CatalogStep};
use crate::ingest::port_failure;
use crate::metrics::{Metrics, NoMetrics};
use crate::ports::{
    Catalog, CrawlRequest, CrawlStart, Crawler, CrawlerState, CrawlerStatus, ObjectStore, TableInfo,
};
use crate::toollog::{LogZone, error_class};

mod transform;

pub use transform::{
    DescribeJob, JobLog, QuerySummary, StartQuery, StopQuery, StoreJobLog, TerminateJob,
    TransformActivities, parse_run_results,
};

/// How promoted files become crawls and transforms. The worker's configuration, not workflow
/// state: changing it affects the next crawl workflow started, never a running history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSettings {
    /// Crawler name is this prefix plus the dataset (one crawler per dataset).
    pub crawler_prefix: String,
    pub database: String,
    #[serde(flatten)]
    pub timing: CrawlTiming,
    /// The transform to run after each crawl, by dataset.
    pub transforms: BTreeMap<String, TransformInput>,
    /// Webhooks told when a file is quarantined, a review deadline nears or passes, a check or
    /// a transform fails.
    #[serde(default)]
    pub alerts: crate::alerts::AlertSettings,
}

impl PipelineSettings {
    pub fn crawler_for(&self, dataset: &str) -> String {
        format!("{}{dataset}", self.crawler_prefix)
    }

    pub fn crawl_input(&self, dataset: &str) -> CrawlInput {
        CrawlInput {
            crawler: self.crawler_for(dataset),
            dataset: dataset.to_owned(),
            database: self.database.clone(),
            transform: self.transforms.get(dataset).cloned(),
            timing: self.timing.clone(),
            pending: Vec::new(),
            crawls_done: 0,
            known_tables: BTreeMap::new(),
            failures: 0,
            last_failure: None,
        }
    }
}

/// Hands promoted files to their dataset's crawl workflow.
pub struct NotifyActivities {
    settings: Option<PipelineSettings>,
}

impl NotifyActivities {
    /// `None` turns the pipeline off: files stop at raw/.
    pub fn new(settings: Option<PipelineSettings>) -> Self {
        Self { settings }
    }
}

#[activities]
impl NotifyActivities {
    /// Signal-with-start of the dataset's `CrawlWorkflow`: starts it if it is not running, and
    /// in either case delivers the new prefix. Returns the crawl workflow's id, or `None` when
    /// the pipeline is off. Untyped because the workflow type lives in the crate that depends on
    /// this one.
    #[activity(name = names::NOTIFY_CRAWL_ACTIVITY)]
    pub async fn notify_crawl(
        self: Arc<Self>,
        ctx: ActivityContext,
        file: PromotedFile,
    ) -> Result<Option<String>, ActivityError> {
        match &self.settings {
            Some(settings) => signal_crawl(&ctx, settings, file).await.map(Some),
            None => Ok(None),
        }
    }
}

/// Signal-with-start of `file`'s crawl workflow under `settings`; returns its id.
pub(crate) async fn signal_crawl(
    ctx: &ActivityContext,
    settings: &PipelineSettings,
    file: PromotedFile,
) -> Result<String, ActivityError> {
    let input = settings.crawl_input(&file.dataset);
    let workflow_id = names::crawl_workflow_id(&input.crawler);
    let converter = PayloadConverter::serde_json();
    // Shown in clear in the Web UI: the dataset's name only (used when this call starts the run).
    let summary = format!(
        "Crawl dataset {}: catalog new files, then its transform if any",
        file.dataset
    );
    let options = WorkflowStartOptions::new(ctx.info().task_queue.clone(), workflow_id.clone())
        .static_summary(summary)
        .build();
    ctx.client()
        .signal_with_start_workflow(
            UntypedWorkflow::new(names::CRAWL_WORKFLOW),
            RawValue::from_value(&input, &converter),
            UntypedSignal::new(names::NEW_DATA_SIGNAL),
            RawValue::from_value(
                &NewData {
                    prefixes: vec![file.prefix],
                },
                &converter,
            ),
            options,
        )
        .await
        .map_err(|e| ApplicationFailure::new(format!("signal-with-start {workflow_id}: {e}")))?;
    Ok(workflow_id)
}

pub struct CrawlActivities {
    crawler: Arc<dyn Crawler>,
    catalog: Arc<dyn Catalog>,
    metrics: Arc<dyn Metrics>,
    /// Crawler names are this prefix plus the dataset: how a crawler maps to its metrics label.
    crawler_prefix: String,
    /// The last finished crawl timed per crawler (its start time), so the several polls that can
    /// see one finished crawl (a joined run, a retried poll) time it once in this process.
    timed: std::sync::Mutex<BTreeMap<String, i64>>,
    /// Where the contracts are, read afresh by each catalog step (as the ingest activities do);
    /// `None` leaves every table to the crawler.
    contracts_dir: Option<std::path::PathBuf>,
    logs: LogZone,
}

impl CrawlActivities {
    pub fn new(crawler: Arc<dyn Crawler>, catalog: Arc<dyn Catalog>) -> Self {
        Self {
            crawler,
            catalog,
            metrics: Arc::new(NoMetrics),
            crawler_prefix: String::new(),
            timed: Default::default(),
            contracts_dir: None,
            logs: LogZone::default(),
        }
    }

    /// Crawler and catalog error text goes to the lake's log zone; without it, only its class
    /// is reported.
    pub fn with_logs(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.logs = LogZone::new(store);
        self
    }

    /// Tables whose contracts declare columns are registered from them, with no crawler run.
    pub fn with_contracts(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.contracts_dir = Some(dir.into());
        self
    }

    /// Times finished crawls, labelled by dataset (the crawler name without `crawler_prefix`).
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>, crawler_prefix: &str) -> Self {
        self.metrics = metrics;
        self.crawler_prefix = crawler_prefix.to_owned();
        self
    }

    /// Records the crawl `status` reports finished, once per crawl. The crawler's clock gives the
    /// start (Glue's LastCrawl.StartTime); the end is this poll, so the figure overstates by at
    /// most one poll gap and has one-second resolution. Crawlers report no end time.
    fn time_finished_crawl(&self, crawler: &str, status: &CrawlerStatus) {
        let (CrawlerState::Ready, Some(started)) = (
            status.state,
            status.last_crawl.as_ref().and_then(|l| l.started_at),
        ) else {
            return;
        };
        let Ok(mut timed) = self.timed.lock() else {
            return;
        };
        if timed.insert(crawler.to_owned(), started) == Some(started) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let took = now.saturating_sub(std::time::Duration::from_secs(started.max(0) as u64));
        let dataset = crawler
            .strip_prefix(&self.crawler_prefix)
            .unwrap_or(crawler);
        self.metrics.crawl_finished(dataset, took);
    }
}

#[activities]
impl CrawlActivities {
    #[activity(name = names::START_CRAWL_ACTIVITY)]
    pub async fn start_crawl(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: CrawlRequest,
    ) -> Result<CrawlStart, ActivityError> {
        // The first attempt's schedule, so a retry recognises the crawl an earlier attempt
        // started (its answer lost) instead of joining it and crawling again.
        match ctx.info().scheduled_time {
            Some(since) => self.crawler.start_crawl_since(&request, since).await,
            None => self.crawler.start_crawl(&request).await,
        }
        .map_err(port_failure)
    }

    /// The last crawl's error message (Glue's or the local crawler's text, which can quote a
    /// file's values) is kept in the log zone once the crawler is ready; the result carries its
    /// key and `crawler <status>` with the engine's error class, never the message.
    #[activity(name = names::CRAWLER_STATUS_ACTIVITY)]
    pub async fn crawler_status(
        self: Arc<Self>,
        ctx: ActivityContext,
        crawler: String,
    ) -> Result<CrawlerStatus, ActivityError> {
        let mut status = self
            .crawler
            .crawler_status(&crawler)
            .await
            .map_err(port_failure)?;
        self.time_finished_crawl(&crawler, &status);
        if let Some(last) = &mut status.last_crawl
            && let Some(message) = last.error_message.take()
        {
            // While a crawl runs the workflow ignores the previous one: its text is not kept
            // again on every poll.
            if status.state == CrawlerState::Ready {
                let started = last.started_at.map_or("last".to_owned(), |s| s.to_string());
                last.log_key = self
                    .logs
                    .keep(&ctx, &format!("crawl-{crawler}-{started}"), &message)
                    .await
                    .map_err(port_failure)?;
            }
            last.error_message = Some(match error_class(&message) {
                Some(class) => format!("crawler {} ({class})", last.status),
                None => format!("crawler {}", last.status),
            });
        }
        Ok(status)
    }

    #[activity(name = names::LIST_TABLES_ACTIVITY)]
    pub async fn list_tables(
        self: Arc<Self>,
        _ctx: ActivityContext,
        database: String,
    ) -> Result<Vec<TableInfo>, ActivityError> {
        self.catalog
            .list_tables(&database)
            .await
            .map_err(port_failure)
    }

    /// The contract-driven half of a catalog step: registers the typed tables under the
    /// request's prefixes and returns the prefixes left to the crawler. A contract that does not
    /// load fails the step (recorded, not retried): guessing the schema instead would hide it.
    #[activity(name = names::REGISTER_CATALOG_ACTIVITY)]
    pub async fn register_catalog(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: CatalogRequest,
    ) -> Result<CatalogStep, ActivityError> {
        let Some(dir) = &self.contracts_dir else {
            return Ok(CatalogStep {
                crawl: request.prefixes,
                ..CatalogStep::default()
            });
        };
        let contracts = match lakegate_validate::ContractSet::load_dir(dir) {
            Ok(contracts) => contracts,
            Err(e) => {
                return Ok(CatalogStep {
                    error: Some(format!("contracts: {e}")),
                    ..CatalogStep::default()
                });
            }
        };
        let mut step =
            crate::catalog::register_prefixes(self.catalog.as_ref(), &contracts, &request)
                .await
                .map_err(port_failure)?;
        if let Some(detail) = step.detail.take() {
            let name = format!("catalog-{}", lakegate_models::short_hash(&detail));
            step.log_key = self
                .logs
                .keep(&ctx, &name, &detail)
                .await
                .map_err(port_failure)?;
        }
        Ok(step)
    }
}
