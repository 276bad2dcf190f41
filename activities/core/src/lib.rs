//! lakegate's Temporal activities and the port traits they call.
//!
//! Activities do the I/O that workflows decide on; they reach the outside world only through the
//! ports in [`ports`], so the same activity code runs on the local backend (a folder, DuckDB,
//! local processes) and on AWS. Nothing in this crate depends on a cloud SDK, which keeps the
//! workflows crate (which depends on this one for activity signatures) free of them too.

pub mod alerts;
pub mod catalog;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
#[cfg(feature = "testing")]
pub mod port_suites;
pub mod promotion;
/// Support for the tests of this workspace: the HTTP client they share, the pipeline file of
/// those that run a transform.
#[cfg(feature = "testing")]
pub mod testing {
    pub mod http;
    pub mod pipeline;
}
pub mod ports;
pub mod redact;
pub mod retract;
pub mod start;
pub mod sweep;
pub mod toollog;

pub use alerts::{
    AlertActivities, AlertSettings, PostOutcome, Webhook, WebhookFormat, WebhookPoster,
};
pub use ingest::{
    FirstPass, IngestActivities, MoveRequest, MoveResult, ValidateAndPromoteRequest,
    ValidateRequest,
};
pub use pipeline::{
    CatalogRequest, CatalogStep, CrawlActivities, DescribeJob, JobLog, NotifyActivities,
    PipelineSettings, QuerySummary, StartQuery, StopQuery, StoreJobLog, TerminateJob,
    TransformActivities,
};
pub use retract::{RetractActivities, RetractStart, start_retract};
pub use sweep::{PageRequest, SettledIngest, StartRequest, Started, SweepActivities};
