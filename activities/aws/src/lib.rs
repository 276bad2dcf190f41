//! lakegate's ports on AWS, built on the official AWS SDK for Rust: the object store on S3, the
//! SQS event router that turns S3 notifications into ingest starts, the crawler and catalog on
//! Glue, the query engine on Athena and the job runner on Batch with CloudWatch Logs.
//!
//! Every client comes from one place ([`config`]) so credentials, region, endpoints, timeouts and
//! retries are decided once. Every SDK error is mapped to the ports' typed errors with a
//! `retryable` flag that Temporal's activity retry policy acts on (see [`error`]). The crate knows
//! nothing about Temporal or workflows: the worker wires these adapters into activities.

pub mod athena;
pub mod batch;
pub mod config;
pub mod error;
pub mod glue;
pub mod glue_tables;
pub mod iam;
pub mod router;
pub mod s3;

pub use athena::AthenaEngine;
pub use batch::BatchRunner;
pub use config::{AwsClients, AwsSettings};
pub use glue::{GlueCatalog, GlueCrawler};
pub use router::{
    FileEvent, ParseError, ParsedMessage, RouterError, parse_message, run_event_router,
};
pub use s3::S3Store;

#[cfg(feature = "testing")]
pub mod testing;
