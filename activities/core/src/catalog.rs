//! The catalog from the contract: a table whose contract declares its columns is registered with
//! exactly those names, types and reader options, by the backend's catalog (DuckDB views, Glue
//! tables), with no crawler and no sampling. Contracts without columns (or with
//! `catalog: crawler`) keep the crawler.

use lakegate_models::TableChange;
use lakegate_validate::{ColumnType, Contract, Encoding, FormatKind, TableContract};
use serde::{Deserialize, Serialize};

use crate::ports::{ColumnInfo, TableInfo};

/// A column's catalog type, for each backend, and how its text becomes that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlType {
    /// Glue/Hive type name (what Athena reads with).
    pub hive: &'static str,
    /// The Glue type of a CSV column. Athena's OpenCSVSerDe reads dates and timestamps only as
    /// UNIX numbers, so those stay text there (the contract's type goes in the column comment).
    pub csv_hive: &'static str,
    /// DuckDB type name of the view's column.
    pub duckdb: &'static str,
    pub parse: Parse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The text as it is.
    Text,
    /// A cast that yields NULL where the text is not a value of the type.
    Cast,
    /// The validator's truth words (true/false, t/f, yes/no, y/n, 1/0, any case).
    Boolean,
    /// strptime with the column's declared formats.
    Date,
    Timestamp,
}

/// The one place a contract type meets the catalog: a new contract type is one line here.
pub fn sql_type(kind: ColumnType) -> SqlType {
    let t = |hive, csv_hive, duckdb, parse| SqlType {
        hive,
        csv_hive,
        duckdb,
        parse,
    };
    match kind {
        ColumnType::String => t("string", "string", "VARCHAR", Parse::Text),
        ColumnType::Integer => t("bigint", "bigint", "BIGINT", Parse::Cast),
        ColumnType::Decimal => t("double", "double", "DOUBLE", Parse::Cast),
        ColumnType::Boolean => t("boolean", "boolean", "BOOLEAN", Parse::Boolean),
        ColumnType::Date => t("date", "string", "DATE", Parse::Date),
        ColumnType::Timestamp => t("timestamp", "string", "TIMESTAMP", Parse::Timestamp),
        // FHIR's partial precisions (`2025`, `2025-06`) are no SQL date: kept as written, so
        // nothing valid reads as NULL; models cast what they need.
        ColumnType::FhirDate | ColumnType::FhirDateTime => {
            t("string", "string", "VARCHAR", Parse::Text)
        }
    }
}

/// The validator's default formats, which a column without a `format` is checked against.
const DEFAULT_DATE: &str = "%Y-%m-%d";
const DEFAULT_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    /// The catalog column: the CSV header name, or the NDJSON path with its dots.
    pub name: String,
    /// NDJSON: the path's segments; CSV: the header name alone.
    pub path: Vec<String>,
    pub sql: SqlType,
    /// strftime formats (the validator's subset) for dates and timestamps, tried in order.
    pub formats: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableFormat {
    Csv {
        delimiter: char,
        quote: char,
        header: bool,
        /// `utf-8` or `latin-1`.
        encoding: String,
        /// Cell texts that mean NULL besides the empty string.
        null_values: Vec<String>,
    },
    Ndjson,
}

/// One catalog table as its contract says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The catalog table name, `<dataset>_<table>` (what the crawler would name it).
    pub name: String,
    pub dataset: String,
    pub table: String,
    /// `raw/<dataset>/<table>/`
    pub prefix: String,
    pub format: TableFormat,
    pub columns: Vec<ColumnDef>,
    /// Hive partition keys of the promoted layout (`ingest_date`), typed string as a crawler does.
    pub partition_keys: Vec<String>,
}

/// The partition keys every promoted file is under (`raw/<dataset>/<table>/ingest_date=.../`).
pub const PARTITION_KEYS: [&str; 1] = ["ingest_date"];

/// Whether a table's catalog comes from its contract or from the crawler.
pub fn uses_contract(contract: &Contract, table: &TableContract) -> bool {
    use lakegate_validate::CatalogSource;
    let source = table.catalog.or(contract.catalog).unwrap_or_default();
    !table.columns.is_empty() && source == CatalogSource::Contract
}

/// The catalog table for a contract table, or `None` when the crawler catalogues it.
pub fn table_spec(contract: &Contract, table: &TableContract) -> Option<TableSpec> {
    if !uses_contract(contract, table) {
        return None;
    }
    let f = &table.format;
    let format = match f.kind {
        FormatKind::Csv => TableFormat::Csv {
            delimiter: f.delimiter,
            quote: f.quote,
            header: f.header,
            encoding: match f.encoding {
                Encoding::Utf8 => "utf-8",
                Encoding::Latin1 => "latin-1",
            }
            .to_owned(),
            null_values: f.null_values.clone(),
        },
        FormatKind::Ndjson | FormatKind::Fhir => TableFormat::Ndjson,
    };
    let ndjson = matches!(format, TableFormat::Ndjson);
    let columns = table
        .columns
        .iter()
        .map(|c| {
            let sql = sql_type(c.kind);
            let default = match sql.parse {
                Parse::Date => Some(DEFAULT_DATE),
                Parse::Timestamp => Some(DEFAULT_TIMESTAMP),
                _ => None,
            };
            ColumnDef {
                name: c.name.clone(),
                path: if ndjson {
                    c.name.split('.').map(str::to_owned).collect()
                } else {
                    vec![c.name.clone()]
                },
                sql,
                formats: default
                    .map(|d| vec![c.format.clone().unwrap_or_else(|| d.to_owned())])
                    .unwrap_or_default(),
            }
        })
        .collect();
    Some(TableSpec {
        name: table_name(&contract.dataset, &table.name),
        dataset: contract.dataset.clone(),
        table: table.name.clone(),
        prefix: format!("raw/{}/{}/", contract.dataset, table.name),
        format,
        columns,
        partition_keys: PARTITION_KEYS.iter().map(|k| (*k).to_owned()).collect(),
    })
}

/// The catalog table name; the Glue crawler gets TablePrefix `<dataset>_` so both agree.
pub fn table_name(dataset: &str, table: &str) -> String {
    format!("{dataset}_{table}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A raw prefix split into its table and the partition it names, if any:
/// `raw/ehr/patients/ingest_date=2026-11-26/` -> (`ehr`, `patients`, `["2026-11-26"]`).
pub fn split_prefix(prefix: &str) -> Option<(String, String, Vec<String>)> {
    let parts: Vec<&str> = prefix.split('/').filter(|p| !p.is_empty()).collect();
    let (["raw", dataset, table], rest) = parts.split_at_checked(3)? else {
        return None;
    };
    let mut values = Vec::new();
    for (part, key) in rest.iter().zip(PARTITION_KEYS) {
        values.push(part.strip_prefix(key)?.strip_prefix('=')?.to_owned());
    }
    if rest.len() > PARTITION_KEYS.len() || (!rest.is_empty() && values.len() != rest.len()) {
        return None;
    }
    Some(((*dataset).to_owned(), (*table).to_owned(), values))
}

/// What registering a table changed: compares the table before (if it existed) with after.
pub fn table_change(
    before: Option<&TableInfo>,
    after: &[ColumnInfo],
    partitions_added: Vec<Vec<String>>,
    name: &str,
) -> TableChange {
    let mut change = TableChange {
        table: name.to_owned(),
        created: before.is_none(),
        partitions_added: partitions_added.into_iter().map(|v| v.join("/")).collect(),
        ..TableChange::default()
    };
    let Some(before) = before else {
        return change;
    };
    let key = |c: &ColumnInfo| c.name.to_ascii_lowercase();
    for column in after {
        match before.columns.iter().find(|b| key(b) == key(column)) {
            None => change.columns_added.push(column.name.clone()),
            Some(old) if !old.data_type.eq_ignore_ascii_case(&column.data_type) => {
                change.columns_retyped.push(format!(
                    "{} {} -> {}",
                    column.name, old.data_type, column.data_type
                ))
            }
            Some(_) => {}
        }
    }
    for old in &before.columns {
        if !after.iter().any(|c| key(c) == key(old)) {
            change.columns_removed.push(old.name.clone());
        }
    }
    change
}

/// The catalog step's input: the prefixes with new (or retracted) data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogRequest {
    pub database: String,
    pub prefixes: Vec<String>,
}

/// What the contract-driven part of a catalog step did, and what it left to the crawler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStep {
    pub changes: Vec<TableChange>,
    /// Prefixes of tables without declared columns (or with `catalog: crawler`): the crawler's.
    pub crawl: Vec<String>,
    /// Tables that could not be registered, each with the error class of why; the step failed.
    pub error: Option<String>,
    /// Where the catalog's error text is kept (the log zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// The catalog's error text, for the activity to keep in the log zone; never in a payload.
    #[serde(skip)]
    pub detail: Option<String>,
}

/// Registers every contract-typed table under `request`'s prefixes with the partitions the
/// prefixes name. A table's non-retryable failure is recorded and the others still registered;
/// a retryable one is returned, so the activity is retried (registering is idempotent).
pub async fn register_prefixes(
    catalog: &dyn crate::ports::Catalog,
    contracts: &lakegate_validate::ContractSet,
    request: &CatalogRequest,
) -> Result<CatalogStep, crate::ports::CrawlError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut step = CatalogStep::default();
    /// A table's spec and the partitions the step's prefixes name.
    type Touched = (TableSpec, BTreeSet<Vec<String>>);
    let mut tables: BTreeMap<(String, String), Touched> = BTreeMap::new();
    for prefix in &request.prefixes {
        let spec = split_prefix(prefix).and_then(|(dataset, table, values)| {
            let (c, t) = contracts.table(&dataset, &table)?;
            Some((table_spec(c, t)?, values))
        });
        let Some((spec, values)) = spec else {
            step.crawl.push(prefix.clone());
            continue;
        };
        let entry = tables
            .entry((spec.dataset.clone(), spec.table.clone()))
            .or_insert_with(|| (spec, BTreeSet::new()));
        if !values.is_empty() {
            entry.1.insert(values);
        }
    }
    let mut errors = Vec::new();
    let mut detail = Vec::new();
    for (spec, partitions) in tables.into_values() {
        let partitions: Vec<Vec<String>> = partitions.into_iter().collect();
        match catalog
            .register_table(&request.database, &spec, &partitions)
            .await
        {
            Ok(change) => step.changes.push(change),
            Err(e) if crate::ports::PortError::is_retryable(&e) => return Err(e),
            Err(e) => {
                let text = e.to_string();
                let class = crate::toollog::error_class(&text);
                errors.push(format!(
                    "table {}: {}",
                    spec.name,
                    class.as_deref().unwrap_or("not registered")
                ));
                detail.push(format!("table {}: {text}", spec.name));
            }
        }
    }
    step.error = (!errors.is_empty()).then(|| errors.join("; "));
    step.detail = (!detail.is_empty()).then(|| detail.join("\n"));
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_their_table_and_partition() {
        assert_eq!(
            split_prefix("raw/ehr/patients/ingest_date=2026-11-26/"),
            Some(("ehr".into(), "patients".into(), vec!["2026-11-26".into()]))
        );
        assert_eq!(
            split_prefix("raw/ehr/patients/"),
            Some(("ehr".into(), "patients".into(), vec![]))
        );
        assert_eq!(split_prefix("raw/ehr/"), None);
        assert_eq!(split_prefix("raw/ehr/patients/other=1/"), None);
        assert_eq!(split_prefix("quarantine/ehr/patients/"), None);
    }

    #[test]
    fn changes_name_added_removed_and_retyped_columns() {
        let col = |n: &str, t: &str| ColumnInfo {
            name: n.into(),
            data_type: t.into(),
        };
        let before = TableInfo {
            database: "raw".into(),
            name: "ehr_p".into(),
            location: String::new(),
            columns: vec![
                col("id", "string"),
                col("age", "string"),
                col("gone", "string"),
            ],
            partition_keys: vec![],
            partitions: vec![],
        };
        let change = table_change(
            Some(&before),
            &[
                col("id", "string"),
                col("age", "bigint"),
                col("new", "date"),
            ],
            vec![vec!["2026-01-01".into()]],
            "ehr_p",
        );
        assert!(!change.created);
        assert_eq!(change.columns_added, ["new"]);
        assert_eq!(change.columns_removed, ["gone"]);
        assert_eq!(change.columns_retyped, ["age string -> bigint"]);
        assert_eq!(change.partitions_added, ["2026-01-01"]);
        assert!(table_change(None, &[], vec![], "t").created);
    }
}
