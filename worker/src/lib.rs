//! The pieces of the `lakegate` binary that tests and other tools reuse: configuration, the
//! Temporal connection, the worker, the dev server and the client calls that start, query and
//! signal lakegate's workflows, and the replay of recorded histories against this build.

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
