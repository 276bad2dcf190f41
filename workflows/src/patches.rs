//! Patch ids: one per change to a workflow's command sequence, checked with `ctx.patched(id)` so
//! runs recorded before the change replay down their old path (docs/evolution.md). An id is never
//! reused or renamed; retiring one follows docs/evolution.md.

/// IngestFileWorkflow (December 2026): resolve, validate, promote and notify the crawl in one
/// `validate_and_promote` activity instead of four, so a valid file costs one round trip.
pub const INGEST_ONE_ROUND_TRIP: &str = "ingest-one-round-trip";
