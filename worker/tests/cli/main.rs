//! The `lakegate` binary as a user runs it: the README's dev loop (detach, ingest, review,
//! status, stop), a worker's graceful shutdown, logs, metrics and traces, replay, and payload
//! encryption, against real Temporal dev servers.

#[path = "../common/mod.rs"]
mod common;

mod codec;
mod dev;
mod replay;
mod summaries;
mod worker;
