//! Patch ids: one per change to a workflow's command sequence, checked with `ctx.patched(id)` so
//! runs recorded before the change replay down their old path (docs/evolution.md). An id is never
//! reused or renamed; retiring one follows docs/evolution.md.

/// IngestFileWorkflow (December 2026): resolve, validate, promote and notify the crawl in one
/// `validate_and_promote` activity instead of four, so a valid file costs one round trip.
pub const INGEST_ONE_ROUND_TRIP: &str = "ingest-one-round-trip";

/// IngestFileWorkflow (December 2026): one review deadline for the whole wait in quarantine. The
/// old loop started a fresh `review_timeout_secs` timer on every iteration, so each approval of a
/// file no contract claims extended the deadline; the new loop waits on the one timer it started.
pub const INGEST_ONE_REVIEW_DEADLINE: &str = "ingest-one-review-deadline";

/// IngestFileWorkflow (December 2026): a start whose key is not under landing/ fails at once,
/// non-retryably, before any activity (a client of the namespace must not pull a file out of
/// raw/, quarantine/ or rejected/). Checked only on that branch, so a run for a landing key
/// records no marker and its command sequence is unchanged.
pub const INGEST_LANDING_ONLY: &str = "ingest-landing-only";
