//! The pieces of the `lakegate` binary that tests and other tools reuse: configuration, the
//! Temporal connection, the worker, the dev server and the client calls that start, query and
//! signal lakegate's workflows, and the replay of recorded histories against this build.

/// Registers every lakegate workflow on a worker's or a replayer's options builder (`?` on each
/// registration): one list, so a new workflow cannot run without also replaying, or the reverse.
macro_rules! register_all_workflows {
    ($options:expr) => {
        $options
            .register_workflow::<lakegate_workflows::IngestFileWorkflow>()?
            .register_workflow::<lakegate_workflows::CrawlWorkflow>()?
            .register_workflow::<lakegate_workflows::TransformWorkflow>()?
            .register_workflow::<lakegate_workflows::LandingSweepWorkflow>()?
            .register_workflow::<lakegate_workflows::OnboardDatasetWorkflow>()?
            .register_workflow::<lakegate_workflows::RetractWorkflow>()?
    };
}

#[cfg(feature = "aws")]
mod aws_backend;
pub mod client;
pub mod codec;
pub mod codec_server;
pub mod config;
pub mod console;
pub mod dev_server;
pub mod landing;
pub mod progress;
pub mod replay;
pub mod schedules;
pub mod telemetry;
pub mod watch;
pub mod webhook;
pub mod worker;

pub use config::LakeConfig;
