//! lakegate's workflows. Code here decides and waits; it never does I/O, reads clocks or draws
//! randomness itself (activities and the SDK's timers and conditions do), so every run replays
//! the same way from its history. The AWS SDK and dbt never enter this crate.

mod alerts;
mod backfill;
mod crawl;
mod ingest;
mod moves;
pub mod options;
pub mod patches;
mod retract;
mod start;
mod sweep;
mod transform;

pub use backfill::OnboardDatasetWorkflow;
pub use crawl::CrawlWorkflow;
pub use ingest::{CHANGED_REASON, IngestFileWorkflow, LANDING_ONLY_RULE, NO_CONTRACT_REASON};
pub use retract::RetractWorkflow;
pub use start::{MALFORMED_INPUT, malformed_input};
pub use sweep::LandingSweepWorkflow;
pub use transform::TransformWorkflow;
