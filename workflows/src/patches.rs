//! Patch ids: one per change to a workflow's command sequence, checked with `ctx.patched(id)` so
//! runs recorded before the change replay down their old path (docs/evolution.md). An id is never
//! reused or renamed; retiring one follows docs/evolution.md.

/// IngestFileWorkflow (December 2026): resolve, validate, promote and notify the crawl in one
/// `validate_and_promote` activity instead of four, so a valid file costs one round trip.
pub const INGEST_ONE_ROUND_TRIP: &str = "ingest-one-round-trip";

/// TransformWorkflow (December 2026): a stage's job has a deadline (`job_deadline_secs`, counted
/// from its submission); past it, or when the workflow is cancelled, the job is terminated
/// (`terminate_job`) and the stage fails saying which job and after how long. The poll timer is
/// shortened to end at the deadline and raced against the workflow's cancellation.
pub const TRANSFORM_JOB_DEADLINE: &str = "transform-job-deadline";

/// CrawlWorkflow (December 2026): prefixes stay pending until a crawl that covered them
/// succeeded; a failed or timed-out crawl, or a failed activity, keeps them and waits out a
/// doubling backoff instead of ending the workflow; the run continues as new on the server's
/// suggestion or at `HISTORY_BOUND` events also while coalescing a stream of signals.
pub const CRAWL_KEEP_PENDING: &str = "crawl-keep-pending";
/// CrawlWorkflow (December 2026, issue 13): a catalog step registers tables whose contracts
/// declare columns through the catalog (DuckDB views, Glue tables; one `register_catalog`
/// activity) and crawls only the rest. Histories before it crawled every prefix.
pub const CONTRACT_CATALOG: &str = "catalog-from-contract";

/// TransformWorkflow (December 2026, issue 13): a SQL check's query is wrapped in
/// `select count(*)`, so every violating row is counted, not the first result page.
pub const CHECK_COUNTS_EVERY_ROW: &str = "check-counts-every-row";
/// TransformWorkflow (December 2026, issue 14): a check's query has a deadline
/// (`query_deadline_secs`, counted from its start); past it, or when the workflow is cancelled,
/// the query is stopped (`stop_query`: Athena StopQueryExecution, the local DuckDB process
/// killed) and the check fails saying which query and after how long. The start and polls get a
/// cancellation token of their own, and the poll timer is raced against the cancellation.
pub const CHECK_QUERY_DEADLINE: &str = "check-query-deadline";
/// IngestFileWorkflow (December 2026): one review deadline for the whole wait in quarantine. The
/// old loop started a fresh `review_timeout_secs` timer on every iteration, so each approval of a
/// file no contract claims extended the deadline; the new loop waits on the one timer it started.
pub const INGEST_ONE_REVIEW_DEADLINE: &str = "ingest-one-review-deadline";

/// IngestFileWorkflow (December 2026): a start whose key is not under landing/ fails at once,
/// non-retryably, before any activity (a client of the namespace must not pull a file out of
/// raw/, quarantine/ or rejected/). Checked only on that branch, so a run for a landing key
/// records no marker and its command sequence is unchanged.
pub const INGEST_LANDING_ONLY: &str = "ingest-landing-only";

/// IngestFileWorkflow (December 2026, issue 12): a `review` signal that arrives before the file is
/// in quarantine (while it resolves or validates) is ignored and listed in the status's
/// `ignored_reviews`, instead of being applied once the file reaches quarantine (an approval sent
/// before any report existed pre-approved the file). Checked only when such a signal is held, so
/// runs without one record no marker.
pub const INGEST_REVIEW_IN_QUARANTINE_ONLY: &str = "ingest-review-in-quarantine-only";

/// TransformWorkflow (December 2026, issue 15): a failed stage sends `transform_failed` and failed
/// checks send `check_failed` through the `send_alert` activity. Checked on the failing branches
/// only, so a successful run's history is unchanged.
pub const TRANSFORM_ALERTS: &str = "transform-alerts";

/// IngestFileWorkflow (December 2026, issue 15): a quarantined file sends `file_quarantined`
/// through the `send_alert` activity, `review_deadline_near` on a timer the receipt asks for, and
/// `review_timed_out` at the deadline. The wait's timers count from the quarantine. Checked once
/// the file is in quarantine, so a promoted file's history is unchanged.
pub const INGEST_ALERTS: &str = "ingest-alerts";

/// TransformWorkflow (December 2026, issue 12): a failed job's log is kept in the lake's log zone
/// by `store_job_log`, and the stage records its key and error class; before, `job_log_tail`
/// brought 40 redacted lines of dbt's output into the history.
pub const TRANSFORM_LOGS_IN_LAKE: &str = "transform-logs-in-lake";
