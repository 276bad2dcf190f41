use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use serde::Deserialize;

/// One dataset's contract, as written in `<dataset>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub dataset: String,
    #[serde(default)]
    pub description: String,
    pub tables: Vec<TableContract>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableContract {
    pub name: String,
    /// Globs over the whole landing key, e.g. `landing/*/ehr/patients*.csv`.
    pub keys: Vec<String>,
    pub columns: Vec<ColumnSpec>,
    #[serde(skip)]
    matchers: Vec<GlobMatcher>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    /// Not null and not empty in every row.
    #[serde(default)]
    pub required: bool,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl ContractSet {
    /// Loads every `*.yaml` / `*.yml` file in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Self, ContractError> {
        let read_err = |source| ContractError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        let contracts = paths
            .iter()
            .map(|p| Contract::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { contracts })
    }

    pub fn contracts(&self) -> &[Contract] {
        &self.contracts
    }

    /// The first table, in file then contract order, whose key globs match `key`.
    pub fn resolve(&self, key: &str) -> Option<(&Contract, &TableContract)> {
        self.contracts.iter().find_map(|c| {
            c.tables
                .iter()
                .find(|t| t.matchers.iter().any(|m| m.is_match(key)))
                .map(|t| (c, t))
        })
    }

    pub fn table(&self, dataset: &str, table: &str) -> Option<(&Contract, &TableContract)> {
        let contract = self.contracts.iter().find(|c| c.dataset == dataset)?;
        contract
            .tables
            .iter()
            .find(|t| t.name == table)
            .map(|t| (contract, t))
    }
}

/// Every contract in a directory.
#[derive(Debug, Clone, Default)]
pub struct ContractSet {
    contracts: Vec<Contract>,
}

impl Contract {
    pub fn load(path: &Path) -> Result<Self, ContractError> {
        let text = std::fs::read_to_string(path).map_err(|source| ContractError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ContractError> {
        let invalid = |line: usize, reason: String| ContractError::Invalid {
            path: path.to_owned(),
            line,
            reason,
        };
        let mut contract: Contract = serde_yaml::from_str(text)
            .map_err(|e| invalid(e.location().map_or(0, |l| l.line()), e.to_string()))?;
        for table in &mut contract.tables {
            for pattern in &table.keys {
                let glob = Glob::new(pattern)
                    .map_err(|e| invalid(line_of(text, pattern), e.to_string()))?;
                table.matchers.push(glob.compile_matcher());
            }
        }
        Ok(contract)
    }
}

/// 1-based line of the first occurrence of `needle`, for error messages.
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map_or(0, |at| text[..at].lines().count().max(1))
}
