//! The local backend: lakegate's ports on this machine, so the same workflows run with no AWS
//! account. The object store is a folder laid out like the bucket; the crawler, catalog and query
//! engine are a DuckDB database; jobs are local processes in the project's virtualenv.

mod store;

pub use store::LocalObjectStore;
