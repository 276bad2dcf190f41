//! Patch ids of workflow changes (docs/evolution.md): one constant per change, never reused.

/// CrawlWorkflow: a catalog step registers tables whose contracts declare columns through the
/// catalog (DuckDB views, Glue tables; one `register_catalog` activity) and crawls only the rest.
/// Histories before it crawled every prefix. (issue 13, December 2026)
pub const CONTRACT_CATALOG: &str = "catalog-from-contract";

/// TransformWorkflow: a SQL check's query is wrapped in `select count(*)`, so every violating
/// row is counted, not the first result page. (issue 13, December 2026)
pub const CHECK_COUNTS_EVERY_ROW: &str = "check-counts-every-row";
