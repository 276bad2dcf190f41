//! The crawler and the catalog on AWS Glue.
//!
//! Strategy (docs/aws.md has the long form): one crawler per dataset, created by the deployment
//! with its role, its `TablePrefix` (`<dataset>_`), its table-level grouping and a
//! `SchemaChangePolicy` that logs deletions. Each run points the crawler's S3 targets at exactly
//! the prefixes that received data and crawls everything under just those
//! (`RecrawlPolicy = CRAWL_EVERYTHING`): nothing outside them is listed, so there is no full
//! re-crawl of the lake, and no dependence on the crawler's own bookkeeping of "new folders".
//! The update is skipped when the targets already match, which is also what makes a retried
//! start cheap.
//!
//! A crawler that is already running is joined, never failed: `CrawlerRunningException` from
//! UpdateCrawler or StartCrawler (or a RUNNING/STOPPING state seen first) returns
//! [`CrawlStart::JoinedRunning`]. The usual cause is this very start being retried after its first
//! attempt started the crawler; the CrawlWorkflow, which owns the crawler, keeps prefixes that a
//! joined run did not cover pending for its next run.
//!
//! A retried start must not join its own crawl, though: when StartCrawler's answer is lost and
//! every SDK retry fails, the activity's next attempt finds the crawler RUNNING (or READY again,
//! the crawl over) and, reporting a join, would make the workflow crawl the same prefixes twice.
//! So [`Crawler::start_crawl_since`] is told when the request was first made: a crawl of exactly
//! the wanted targets that started at or after then (ListCrawls' StartTime of the running crawl,
//! GetCrawler's `LastCrawl.StartTime` of a finished one) is this request's crawl, and is
//! `Started`. A crawl that started before is someone else's, and is joined as before. The clocks
//! compared are the Temporal server's and Glue's: skew can only make our own crawl look older
//! (one extra crawl), since a stranger's crawl would have to start between the request and its
//! first attempt's GetCrawler.

use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_glue::primitives::DateTime;
use aws_sdk_glue::types::{
    CrawlerHistoryState, CrawlerState as GlueState, CrawlerTargets, CrawlsFilter, FieldName,
    FilterOperator, RecrawlBehavior, RecrawlPolicy, S3Target,
};
use lakegate_activities::ports::{
    Catalog, ColumnInfo, CrawlError, CrawlRequest, CrawlStart, Crawler, CrawlerState,
    CrawlerStatus, LastCrawl, TableInfo,
};

use crate::error::classify;

#[derive(Debug, Clone)]
pub struct GlueCrawler {
    glue: aws_sdk_glue::Client,
    bucket: String,
}

impl GlueCrawler {
    /// `bucket` is the lake bucket the request's prefixes live in.
    pub fn new(client: aws_sdk_glue::Client, bucket: impl Into<String>) -> Self {
        Self {
            glue: client,
            bucket: bucket.into(),
        }
    }

    /// The S3 include paths for `prefixes`, deduplicated and sorted so that the same request
    /// always produces the same targets.
    pub fn target_paths(&self, prefixes: &[String]) -> Vec<String> {
        let mut paths: Vec<String> = prefixes
            .iter()
            .map(|p| format!("s3://{}/{}", self.bucket, p.trim_start_matches('/')))
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

/// The crawler targets of `paths`, as UpdateCrawler sets them (and a deployment, or a test,
/// creates them).
pub fn s3_targets(targets: Vec<S3Target>) -> CrawlerTargets {
    CrawlerTargets::builder()
        .set_s3_targets(Some(targets))
        .build()
}

/// Every run crawls everything under its targets: see the module doc.
pub fn crawl_everything() -> RecrawlPolicy {
    RecrawlPolicy::builder()
        .recrawl_behavior(RecrawlBehavior::CrawlEverything)
        .build()
}

/// Whether `started` (a Glue timestamp) is at or after `since`, to the millisecond: Glue's
/// timestamps have no finer precision, and a crawl started a fraction of a millisecond after the
/// request must not read as older than it.
fn not_before(started: Option<&DateTime>, since: Option<SystemTime>) -> bool {
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    match (started.and_then(|t| SystemTime::try_from(*t).ok()), since) {
        (Some(started), Some(since)) => millis(started) >= millis(since),
        _ => false,
    }
}

pub(crate) fn backend<E>(
    crawler: &str,
    err: &aws_sdk_glue::error::SdkError<E, aws_sdk_glue::config::http::HttpResponse>,
) -> CrawlError
where
    E: aws_sdk_glue::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let c = classify(err);
    CrawlError::Backend {
        crawler: crawler.to_owned(),
        message: c.message,
        retryable: c.retryable,
    }
}

fn state_of(state: Option<&GlueState>) -> CrawlerState {
    match state {
        Some(GlueState::Running) => CrawlerState::Running,
        Some(GlueState::Stopping) => CrawlerState::Stopping,
        _ => CrawlerState::Ready,
    }
}

/// The port's vocabulary for how a crawl ended: `SUCCEEDED`, `CANCELLED` or `FAILED`, the values
/// of `LastCrawlInfo.Status`. Glue names the same three outcomes differently in its crawl history
/// (`CrawlerHistory.State` of ListCrawls: `COMPLETED`, `STOPPED`, `FAILED`), and a Glue-compatible
/// service may answer GetCrawler in that vocabulary (moto 5.2.5 does): a finished crawl must not
/// read as "not succeeded" for it, or its prefixes would be crawled again forever. Any other value
/// is kept as given, and only `SUCCEEDED` counts as success.
fn last_crawl_status(status: &aws_sdk_glue::types::LastCrawlStatus) -> String {
    use aws_sdk_glue::types::LastCrawlStatus;
    match status {
        LastCrawlStatus::Succeeded | LastCrawlStatus::Cancelled | LastCrawlStatus::Failed => {
            status.as_str().to_owned()
        }
        other => match CrawlerHistoryState::from(other.as_str()) {
            CrawlerHistoryState::Completed => LastCrawlStatus::Succeeded.as_str().to_owned(),
            CrawlerHistoryState::Stopped => LastCrawlStatus::Cancelled.as_str().to_owned(),
            CrawlerHistoryState::Failed => LastCrawlStatus::Failed.as_str().to_owned(),
            _ => other.as_str().to_owned(),
        },
    }
}

impl GlueCrawler {
    async fn get(&self, name: &str) -> Result<aws_sdk_glue::types::Crawler, CrawlError> {
        let out = self
            .glue
            .get_crawler()
            .name(name)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception())
                {
                    CrawlError::NoSuchCrawler(name.to_owned())
                } else {
                    backend(name, &e)
                }
            })?;
        out.crawler
            .ok_or_else(|| CrawlError::NoSuchCrawler(name.to_owned()))
    }

    /// When the crawler's running crawl started, from its crawl history: `None` when Glue lists
    /// no running crawl (yet), or the history cannot be read (a policy without glue:ListCrawls),
    /// which reads as someone else's crawl, the cautious side.
    async fn running_since(&self, name: &str) -> Result<Option<DateTime>, CrawlError> {
        let listed = self
            .glue
            .list_crawls()
            .crawler_name(name)
            .filters(
                CrawlsFilter::builder()
                    .field_name(FieldName::State)
                    .filter_operator(FilterOperator::Eq)
                    .field_value(CrawlerHistoryState::Running.as_str())
                    .build(),
            )
            .send()
            .await;
        match listed {
            Ok(out) => Ok(out
                .crawls()
                .iter()
                .filter(|c| c.state() == Some(&CrawlerHistoryState::Running))
                .filter_map(|c| c.start_time().copied())
                .max_by_key(|t| (t.secs(), t.subsec_nanos()))),
            Err(e) => {
                let failure = backend(name, &e);
                if lakegate_activities::ports::PortError::is_retryable(&failure) {
                    return Err(failure);
                }
                tracing::warn!(crawler = name, "the crawl history is not readable");
                Ok(None)
            }
        }
    }

    async fn start(
        &self,
        request: &CrawlRequest,
        since: Option<SystemTime>,
    ) -> Result<CrawlStart, CrawlError> {
        let name = request.crawler.as_str();
        if request.prefixes.is_empty() {
            // Empty targets would make UpdateCrawler fail, or worse, leave the old targets to be
            // crawled again: a request without prefixes is a caller bug, not a reason to crawl.
            return Err(CrawlError::Backend {
                crawler: name.to_owned(),
                message: "no prefixes to crawl".into(),
                retryable: false,
            });
        }
        let crawler = self.get(name).await?;
        let wanted = self.target_paths(&request.prefixes);
        let existing: Vec<&S3Target> = crawler
            .targets()
            .map(|t| t.s3_targets().iter().collect())
            .unwrap_or_default();
        let mut have: Vec<String> = existing
            .iter()
            .filter_map(|t| t.path().map(str::to_owned))
            .collect();
        have.sort();
        let everything = crawler
            .recrawl_policy()
            .and_then(|p| p.recrawl_behavior())
            .is_none_or(|b| *b == RecrawlBehavior::CrawlEverything);
        let same_db = crawler.database_name() == Some(request.database.as_str());
        let covers = have == wanted && everything && same_db;
        match state_of(crawler.state()) {
            // A running crawler's targets cannot change (UpdateCrawler refuses), so the running
            // crawl is of these targets.
            CrawlerState::Running
                if covers
                    && since.is_some()
                    && not_before(self.running_since(name).await?.as_ref(), since) =>
            {
                tracing::info!(crawler = name, "the running crawl started for this request");
                return Ok(CrawlStart::Started);
            }
            CrawlerState::Running | CrawlerState::Stopping => {
                tracing::info!(crawler = name, "crawler already running: joining that run");
                return Ok(CrawlStart::JoinedRunning);
            }
            // Over already (a real crawl takes a minute or more, so rarely): its outcome, read by
            // the caller's wait, is this request's, whether it succeeded or not.
            CrawlerState::Ready
                if covers
                    && not_before(crawler.last_crawl().and_then(|l| l.start_time()), since) =>
            {
                tracing::info!(crawler = name, "the last crawl ran for this request");
                return Ok(CrawlStart::Started);
            }
            CrawlerState::Ready => {}
        }
        if !covers {
            // Keep what the deployment configured on the targets (exclusions, sampling,
            // connection) and change only the paths.
            let template = existing.first();
            let targets: Vec<S3Target> = wanted
                .iter()
                .map(|path| {
                    S3Target::builder()
                        .path(path)
                        .set_exclusions(
                            template
                                .map(|t| t.exclusions().to_vec())
                                .filter(|e| !e.is_empty()),
                        )
                        .set_connection_name(
                            template
                                .and_then(|t| t.connection_name())
                                .map(str::to_owned),
                        )
                        .set_sample_size(template.and_then(|t| t.sample_size()))
                        .build()
                })
                .collect();
            let update = self
                .glue
                .update_crawler()
                .name(name)
                .database_name(&request.database)
                .targets(s3_targets(targets))
                .recrawl_policy(crawl_everything())
                .send()
                .await;
            match update {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_crawler_running_exception()) =>
                {
                    tracing::info!(
                        crawler = name,
                        "crawler started by someone else meanwhile: joining that run"
                    );
                    return Ok(CrawlStart::JoinedRunning);
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_not_found_exception()) =>
                {
                    return Err(CrawlError::NoSuchCrawler(name.to_owned()));
                }
                Err(e) => return Err(backend(name, &e)),
            }
        }

        match self.glue.start_crawler().name(name).send().await {
            Ok(_) => {
                tracing::info!(crawler = name, targets = wanted.len(), "crawler started");
                Ok(CrawlStart::Started)
            }
            // The crawler was READY a moment ago and its targets are now exactly the wanted
            // ones (a running crawler refuses UpdateCrawler, so nobody can have started it on
            // other targets since): the run that is going covers these prefixes. Usually it is
            // this very StartCrawler, retried by the SDK after Glue started the crawl but the
            // answer was lost. Reporting it joined would make the workflow wait for it and
            // then crawl the same prefixes a second time.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_crawler_running_exception()) =>
            {
                tracing::info!(
                    crawler = name,
                    "crawler already running on these targets: that run is this crawl"
                );
                Ok(CrawlStart::Started)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_not_found_exception()) =>
            {
                Err(CrawlError::NoSuchCrawler(name.to_owned()))
            }
            Err(e) => Err(backend(name, &e)),
        }
    }
}

#[async_trait]
impl Crawler for GlueCrawler {
    async fn start_crawl(&self, request: &CrawlRequest) -> Result<CrawlStart, CrawlError> {
        self.start(request, None).await
    }

    async fn start_crawl_since(
        &self,
        request: &CrawlRequest,
        since: SystemTime,
    ) -> Result<CrawlStart, CrawlError> {
        self.start(request, Some(since)).await
    }

    async fn crawler_status(&self, crawler: &str) -> Result<CrawlerStatus, CrawlError> {
        let c = self.get(crawler).await?;
        Ok(CrawlerStatus {
            state: state_of(c.state()),
            last_crawl: c.last_crawl().map(|l| LastCrawl {
                status: l.status().map(last_crawl_status).unwrap_or_default(),
                error_message: l.error_message().map(str::to_owned),
                log_key: None,
                log_group: l.log_group().map(str::to_owned),
                log_stream: l.log_stream().map(str::to_owned),
                started_at: l.start_time().map(|t| t.secs()),
            }),
        })
    }
}

/// The Glue Data Catalog, read back after a crawl.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    glue: aws_sdk_glue::Client,
    /// The lake bucket the contract-typed tables' locations are in.
    bucket: Option<String>,
}

impl GlueCatalog {
    pub fn new(client: aws_sdk_glue::Client) -> Self {
        Self {
            glue: client,
            bucket: None,
        }
    }

    /// Needed to register tables from contracts (their S3 locations are in this bucket).
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    async fn partitions(
        &self,
        database: &str,
        table: &str,
    ) -> Result<Vec<Vec<String>>, CrawlError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .glue
                .get_partitions()
                .database_name(database)
                .table_name(table)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| backend(database, &e))?;
            all.extend(out.partitions().iter().map(|p| p.values().to_vec()));
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        all.sort();
        Ok(all)
    }
}

fn columns(cols: &[aws_sdk_glue::types::Column]) -> Vec<ColumnInfo> {
    cols.iter()
        .map(|c| ColumnInfo {
            name: c.name().to_owned(),
            data_type: c.r#type().unwrap_or_default().to_owned(),
        })
        .collect()
}

#[async_trait]
impl Catalog for GlueCatalog {
    async fn list_tables(&self, database: &str) -> Result<Vec<TableInfo>, CrawlError> {
        let mut tables = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .glue
                .get_tables()
                .database_name(database)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| backend(database, &e))?;
            for t in out.table_list() {
                let sd = t.storage_descriptor();
                let partition_keys = columns(t.partition_keys());
                let partitions = if partition_keys.is_empty() {
                    Vec::new()
                } else {
                    self.partitions(database, t.name()).await?
                };
                tables.push(TableInfo {
                    database: database.to_owned(),
                    name: t.name().to_owned(),
                    location: sd.and_then(|s| s.location()).unwrap_or_default().to_owned(),
                    columns: sd.map(|s| columns(s.columns())).unwrap_or_default(),
                    partition_keys,
                    partitions,
                });
            }
            match out.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }

    async fn register_table(
        &self,
        database: &str,
        spec: &lakegate_activities::catalog::TableSpec,
        partitions: &[Vec<String>],
    ) -> Result<lakegate_models::TableChange, CrawlError> {
        let bucket = self.bucket.as_deref().ok_or_else(|| CrawlError::Backend {
            crawler: database.to_owned(),
            message: "the Glue catalog was built without the lake bucket".into(),
            retryable: false,
        })?;
        crate::glue_tables::register(&self.glue, bucket, database, spec, partitions).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter() -> GlueCrawler {
        let conf = aws_sdk_glue::Config::builder()
            .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
            .region(aws_sdk_glue::config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        GlueCrawler::new(aws_sdk_glue::Client::from_conf(conf), "lake")
    }

    #[test]
    fn targets_are_the_prefixes_in_the_bucket_sorted_and_unique() {
        let prefixes = ["raw/emr/b/", "/raw/emr/a/", "raw/emr/b/"].map(String::from);
        assert_eq!(
            adapter().target_paths(&prefixes),
            ["s3://lake/raw/emr/a/", "s3://lake/raw/emr/b/"]
        );
    }

    #[test]
    fn crawl_history_states_read_as_the_last_crawl_outcome_they_name() {
        use aws_sdk_glue::types::LastCrawlStatus;
        let read = |s: &str| last_crawl_status(&LastCrawlStatus::from(s));
        for (given, read_as) in [
            ("SUCCEEDED", "SUCCEEDED"),
            ("CANCELLED", "CANCELLED"),
            ("FAILED", "FAILED"),
            ("COMPLETED", "SUCCEEDED"),
            ("STOPPED", "CANCELLED"),
            // Still running is no outcome: kept, so it is never taken for success.
            ("RUNNING", "RUNNING"),
            ("SOMETHING_NEW", "SOMETHING_NEW"),
        ] {
            assert_eq!(read(given), read_as, "{given}");
        }
    }

    #[test]
    fn a_crawl_is_the_requests_from_the_millisecond_it_was_asked_for() {
        use std::time::Duration;
        let since = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let at = |millis: i64| DateTime::from_millis(millis);
        // Glue's millisecond of the request's own nanosecond counts as after it.
        assert!(not_before(Some(&at(1_700_000_000_123)), Some(since)));
        assert!(not_before(Some(&at(1_700_000_000_124)), Some(since)));
        assert!(!not_before(Some(&at(1_700_000_000_122)), Some(since)));
        // Without either time nothing is ours.
        assert!(!not_before(None, Some(since)));
        assert!(!not_before(Some(&at(1_700_000_000_124)), None));
    }

    #[tokio::test]
    async fn a_request_without_prefixes_is_refused_before_any_call() {
        let req = CrawlRequest {
            crawler: "emr".into(),
            database: "lake".into(),
            prefixes: vec![],
        };
        match adapter().start_crawl(&req).await {
            Err(CrawlError::Backend {
                retryable: false,
                message,
                ..
            }) => assert_eq!(message, "no prefixes to crawl"),
            other => panic!("{other:?}"),
        }
    }
}
