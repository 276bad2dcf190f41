//! Dataset contracts and the streaming validation engine. A contract (one YAML file per dataset,
//! see docs/contracts.md) says which landing keys belong to the dataset, which table each file
//! feeds and what a good file looks like; [`validate_with`] checks a byte stream against it in
//! one pass and constant memory and returns a [`lakegate_models::ValidationReport`] that names
//! rules, columns, counts and row numbers but never a cell value, so the report can be shared
//! without exposing PHI. [`run_offline`] is the same engine behind `lakegate validate`.

mod contract;
#[cfg(feature = "testing")]
pub mod corpus;
mod datetime;
mod draft;
mod engine;
pub mod history;
mod offline;
mod phi;
mod swar;

pub use contract::{
    CaseRule, CatalogSource, ColumnSpec, ColumnType, CompareOp, Compression, Contract,
    ContractError, ContractSet, Encoding, FormatKind, FormatSpec, HeaderMode, Level, PhiDetector,
    PhiPolicy, Reference, RuleSpec, TableContract, UnseenPaths, When,
};
pub use draft::{DraftError, DraftOptions, MAX_PATHS, draft};
pub use engine::{
    CollectedKeys, DEFAULT_MAX_DISTINCT, Limits, MAX_INDEXED_KEYS, MAX_RECORD_BYTES,
    MAX_ROWS_PER_RULE, ReferenceProbe, ValidateError, ValidateOptions, Validated, key_hash,
    set_outcome, validate, validate_full, validate_with,
};
pub use offline::{render_table, run_offline};
