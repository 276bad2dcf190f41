//! Patch ids: one per change to a workflow's command sequence, checked with `ctx.patched(id)` so
//! runs recorded before the change replay down their old path (docs/evolution.md). An id is never
//! reused or renamed; retiring one follows docs/evolution.md.

/// IngestFileWorkflow (December 2026): resolve, validate, promote and notify the crawl in one
/// `validate_and_promote` activity instead of four, so a valid file costs one round trip.
pub const INGEST_ONE_ROUND_TRIP: &str = "ingest-one-round-trip";

/// CrawlWorkflow (December 2026, issue 13): a catalog step registers tables whose contracts
/// declare columns through the catalog (DuckDB views, Glue tables; one `register_catalog`
/// activity) and crawls only the rest. Histories before it crawled every prefix.
pub const CONTRACT_CATALOG: &str = "catalog-from-contract";

/// TransformWorkflow (December 2026, issue 13): a SQL check's query is wrapped in
/// `select count(*)`, so every violating row is counted, not the first result page.
pub const CHECK_COUNTS_EVERY_ROW: &str = "check-counts-every-row";
