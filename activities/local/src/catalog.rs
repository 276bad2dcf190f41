//! Contract-typed tables on DuckDB: one view per table that reads every file as text with the
//! contract's reader options (no sniffing of types, no sampling) and turns each column into its
//! declared type with TRY_CAST / try_strptime, so a cell that fails its type is NULL and never
//! breaks a query over the table.

use lakegate_activities::catalog::{ColumnDef, Parse, TableFormat, TableSpec, table_change};
use lakegate_activities::ports::{Catalog, ColumnInfo, CrawlError};
use lakegate_models::TableChange;

use crate::crawler::{Format, LocalCrawler, MARKER, TableMeta, scan_table};
use crate::duckdb::{quote_ident, quote_literal};

pub(crate) async fn register(
    crawler: &LocalCrawler,
    database: &str,
    spec: &TableSpec,
    partitions: &[Vec<String>],
) -> Result<TableChange, CrawlError> {
    let fail = |message: String, retryable: bool| CrawlError::Backend {
        crawler: "catalog".to_owned(),
        message,
        retryable,
    };
    let before = crawler
        .list_tables(database)
        .await?
        .into_iter()
        .find(|t| t.name == spec.name);
    let dir = crawler
        .lake_dir
        .join(spec.prefix.trim_end_matches('/'))
        .to_string_lossy()
        .into_owned();
    let layout = scan_table(std::path::Path::new(&dir)).map_err(|e| fail(e, false))?;
    let view = format!("{}.{}", quote_ident(database), quote_ident(&spec.name));
    let body = match &layout {
        Some(layout) => {
            let globs: Vec<String> = layout
                .extensions
                .iter()
                .map(|ext| quote_literal(&format!("{dir}/**/*{ext}")))
                .collect();
            select_over(spec, &reader(spec, layout.format, &globs.join(", "))?)
        }
        // Every file retracted (or none promoted yet): the table stays, typed and empty.
        None => empty_select(spec),
    };
    let meta = TableMeta {
        marker: MARKER.to_owned(),
        location: format!("{dir}/"),
        format: match spec.format {
            TableFormat::Csv { .. } => "csv",
            TableFormat::Ndjson => "json",
        }
        .to_owned(),
        partition_keys: spec.partition_keys.clone(),
        partitions: layout.map(|l| l.partitions).unwrap_or_default(),
    };
    let meta = serde_json::to_string(&meta).map_err(|e| fail(e.to_string(), false))?;
    let in_partitions = if partitions.is_empty() {
        String::new()
    } else {
        let values: Vec<String> = partitions
            .iter()
            .filter_map(|p| p.first())
            .map(|v| quote_literal(v))
            .collect();
        format!(
            " WHERE {} IN ({})",
            quote_ident(&spec.partition_keys[0]),
            values.join(", ")
        )
    };
    // One transaction: the count reads the files the step added, so a file DuckDB cannot read at
    // all (not a bad cell: a broken quote) fails the step and the previous view stays.
    let sql = format!(
        "BEGIN;\n\
         CREATE SCHEMA IF NOT EXISTS {schema};\n\
         CREATE OR REPLACE VIEW {view} AS {body};\n\
         COMMENT ON VIEW {view} IS {meta};\n\
         SELECT count(*) AS n FROM {view}{in_partitions};\n\
         COMMIT;",
        schema = quote_ident(database),
        meta = quote_literal(&meta),
    );
    let rows = crawler
        .db
        .query(&sql)
        .await
        .map_err(|e| fail(e.to_string(), e.is_retryable()))?;
    let counted = rows
        .rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|n| n.parse().ok());
    let after: Vec<ColumnInfo> = spec
        .columns
        .iter()
        .filter(|c| !spec.partition_keys.contains(&c.name))
        .map(|c| ColumnInfo {
            name: c.name.clone(),
            data_type: c.sql.hive.to_owned(),
        })
        .collect();
    let added = partitions
        .iter()
        .filter(|p| before.as_ref().is_none_or(|b| !b.partitions.contains(p)))
        .cloned()
        .collect();
    let mut change = table_change(before.as_ref(), &after, added, &spec.name);
    change.partition_rows = if partitions.is_empty() { None } else { counted };
    Ok(change)
}

/// The reader over the table's files, every value as text.
fn reader(spec: &TableSpec, found: Format, globs: &str) -> Result<String, CrawlError> {
    let hive = "hive_partitioning = true, hive_types_autocast = false";
    let mismatch = || CrawlError::Backend {
        crawler: "catalog".to_owned(),
        message: format!(
            "table {}: its files are {} but the contract declares another format",
            spec.name,
            found.name()
        ),
        retryable: false,
    };
    Ok(match &spec.format {
        TableFormat::Csv {
            delimiter,
            quote,
            header,
            encoding,
            null_values,
        } => {
            if found == Format::Json {
                return Err(mismatch());
            }
            let mut nulls = vec![quote_literal("")];
            nulls.extend(null_values.iter().map(|v| quote_literal(v)));
            let columns = if *header {
                // By name, so files whose columns come in another order line up; every column text.
                "header = true, all_varchar = true, union_by_name = true".to_owned()
            } else {
                let cols: Vec<String> = spec
                    .columns
                    .iter()
                    .map(|c| format!("{}: 'VARCHAR'", quote_literal(&c.name)))
                    .collect();
                format!(
                    "header = false, auto_detect = false, columns = {{{}}}",
                    cols.join(", ")
                )
            };
            format!(
                "read_csv([{globs}], delim = {d}, quote = {q}, escape = {q}, {columns}, \
                 encoding = {enc}, nullstr = [{nulls}], null_padding = true, strict_mode = false, \
                 {hive})",
                d = quote_literal(&delimiter.to_string()),
                q = quote_literal(&quote.to_string()),
                enc = quote_literal(encoding),
                nulls = nulls.join(", "),
            )
        }
        TableFormat::Ndjson => {
            if found != Format::Json {
                return Err(mismatch());
            }
            format!("read_ndjson_objects([{globs}], {hive})")
        }
    })
}

fn select_over(spec: &TableSpec, reader: &str) -> String {
    let mut exprs: Vec<String> = data_columns(spec)
        .map(|c| {
            let text = match spec.format {
                TableFormat::Csv { .. } => quote_ident(&c.name),
                TableFormat::Ndjson => {
                    let path: Vec<String> = c
                        .path
                        .iter()
                        .map(|seg| format!("\"{}\"", seg.replace('"', "\\\"")))
                        .collect();
                    format!(
                        "json_extract_string(json, {})",
                        quote_literal(&format!("$.{}", path.join(".")))
                    )
                }
            };
            format!("{} AS {}", typed(c, &text), quote_ident(&c.name))
        })
        .collect();
    exprs.extend(spec.partition_keys.iter().map(|k| quote_ident(k)));
    format!("SELECT {} FROM {reader}", exprs.join(", "))
}

fn empty_select(spec: &TableSpec) -> String {
    let mut exprs: Vec<String> = data_columns(spec)
        .map(|c| format!("CAST(NULL AS {}) AS {}", c.sql.duckdb, quote_ident(&c.name)))
        .collect();
    exprs.extend(
        spec.partition_keys
            .iter()
            .map(|k| format!("CAST(NULL AS VARCHAR) AS {}", quote_ident(k))),
    );
    format!("SELECT {} WHERE false", exprs.join(", "))
}

fn data_columns(spec: &TableSpec) -> impl Iterator<Item = &ColumnDef> {
    spec.columns
        .iter()
        .filter(|c| !spec.partition_keys.contains(&c.name))
}

/// `text` as the column's type, NULL where it is not a value of that type.
fn typed(column: &ColumnDef, text: &str) -> String {
    let trimmed = format!("trim({text})");
    match column.sql.parse {
        Parse::Text => text.to_owned(),
        Parse::Cast => format!("TRY_CAST({trimmed} AS {})", column.sql.duckdb),
        Parse::Boolean => format!(
            "CASE WHEN lower({trimmed}) IN ('true', 't', 'yes', 'y', '1') THEN true \
             WHEN lower({trimmed}) IN ('false', 'f', 'no', 'n', '0') THEN false END"
        ),
        Parse::Date | Parse::Timestamp => {
            let parsed: Vec<String> = column
                .formats
                .iter()
                .map(|f| strptime(f, &trimmed, column.sql.duckdb))
                .collect();
            match parsed.len() {
                0 => format!("TRY_CAST({trimmed} AS {})", column.sql.duckdb),
                1 => parsed[0].clone(),
                _ => format!("coalesce({})", parsed.join(", ")),
            }
        }
    }
}

/// One validator format as DuckDB's try_strptime. The validator's `%f` takes 1 to 9 digits,
/// DuckDB's at most 6 (its `%n` takes 9), so both are tried; its `%z` takes `Z`, DuckDB's does
/// not, so `Z` becomes `+00:00`. Values with an offset are stored in UTC.
fn strptime(format: &str, text: &str, target: &str) -> String {
    let mut formats = vec![quote_literal(format)];
    if format.contains("%f") {
        formats.push(quote_literal(&format.replace("%f", "%n")));
    }
    let formats = formats.join(", ");
    if format.contains("%z") {
        format!(
            "CAST(timezone('UTC', try_strptime(regexp_replace({text}, 'Z$', '+00:00'), [{formats}])) AS {target})"
        )
    } else {
        format!("CAST(try_strptime({text}, [{formats}]) AS {target})")
    }
}
