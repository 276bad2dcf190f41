//! Dataset contracts and the streaming validation engine. A contract (one YAML file per dataset)
//! says which landing keys belong to the dataset, which table each file feeds and what a good file
//! looks like; [`validate`] checks a byte stream against it and returns a
//! [`lakegate_models::ValidationReport`] that names rules, columns, counts and row numbers but
//! never a cell value, so the report can be shared without exposing PHI.

mod contract;
mod engine;

pub use contract::{ColumnSpec, Contract, ContractError, ContractSet, TableContract};
pub use engine::{MAX_ROWS_PER_RULE, ValidateError, validate};
