//! lakegate's local backend: the ports on the local machine, so the whole pipeline runs on a
//! laptop with no AWS account. A folder laid out like the bucket is the lake; DuckDB (its CLI, run
//! from the project's virtualenv) is the crawler, the catalog and the query engine; local process
//! groups running the virtualenv's dbt-duckdb are the batch jobs.

mod catalog;
pub mod config;
pub mod crawler;
pub mod duckdb;
pub mod jobs;
pub mod query;
mod store;

pub use config::LocalConfig;
pub use crawler::LocalCrawler;
pub use jobs::LocalJobRunner;
pub use query::LocalQueryEngine;
pub use store::{LocalObjectStore, content_sha256};
