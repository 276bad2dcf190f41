//! Contract-typed tables in the Glue Data Catalog: the table created (or brought to the contract's
//! schema) with CreateTable/UpdateTable and the promoted partitions added with
//! BatchCreatePartition, so a file is queryable in Athena seconds after promotion, with no crawler
//! run. Every call is idempotent: an existing table equal to the contract's is left alone, and a
//! partition that already exists is not an error.

use std::collections::BTreeSet;

use aws_sdk_glue::types::{
    Column, PartitionInput, PartitionValueList, SerDeInfo, StorageDescriptor, TableInput,
};
use lakegate_activities::catalog::{ColumnDef, TableFormat, TableSpec, table_change};
use lakegate_activities::ports::{ColumnInfo, CrawlError, TableInfo};
use lakegate_models::TableChange;

use crate::glue::backend;

pub const OPEN_CSV_SERDE: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
pub const JSON_SERDE: &str = "org.openx.data.jsonserde.JsonSerDe";
const INPUT_FORMAT: &str = "org.apache.hadoop.mapred.TextInputFormat";
const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
/// BatchCreatePartition takes at most this many partitions per call.
const PARTITION_BATCH: usize = 100;

pub(crate) async fn register(
    glue: &aws_sdk_glue::Client,
    bucket: &str,
    database: &str,
    spec: &TableSpec,
    partitions: &[Vec<String>],
) -> Result<TableChange, CrawlError> {
    let location = format!("s3://{bucket}/{}", spec.prefix);
    let descriptor = storage_descriptor(spec, &location);
    let input = table_input(spec, &descriptor)?;

    let got = glue
        .get_table()
        .database_name(database)
        .name(&spec.name)
        .send()
        .await;
    let before = match got {
        Ok(out) => out.table().cloned(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_not_found_exception()) =>
        {
            None
        }
        Err(e) => return Err(backend(database, &e)),
    };
    let before_info = before.as_ref().map(|t| TableInfo {
        database: database.to_owned(),
        name: t.name().to_owned(),
        location: String::new(),
        columns: t
            .storage_descriptor()
            .map(|s| columns_info(s.columns()))
            .unwrap_or_default(),
        partition_keys: Vec::new(),
        partitions: Vec::new(),
    });
    match &before {
        None => {
            let created = glue
                .create_table()
                .database_name(database)
                .table_input(input)
                .send()
                .await;
            match created {
                Ok(_) => {}
                // A retry whose first attempt created it: bring it up to date instead.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_already_exists_exception()) =>
                {
                    update(glue, database, spec, &descriptor).await?;
                }
                Err(e) => return Err(backend(database, &e)),
            }
        }
        Some(existing) => {
            let same = existing.storage_descriptor() == Some(&descriptor)
                && existing.parameters() == Some(&table_parameters(spec))
                && existing.partition_keys().len() == spec.partition_keys.len();
            if !same {
                update(glue, database, spec, &descriptor).await?;
            }
        }
    }

    let mut added = Vec::new();
    for chunk in partitions.chunks(PARTITION_BATCH) {
        let inputs = chunk
            .iter()
            .map(|values| {
                let mut sd = descriptor.clone();
                let path: Vec<String> = spec
                    .partition_keys
                    .iter()
                    .zip(values)
                    .map(|(k, v)| format!("{k}={v}/"))
                    .collect();
                sd.location = Some(format!("{location}{}", path.concat()));
                PartitionInput::builder()
                    .set_values(Some(values.clone()))
                    .storage_descriptor(sd)
                    .build()
            })
            .collect();
        // What exists before this call is not "added": asked first, because an
        // AlreadyExistsException from BatchCreatePartition cannot tell a partition that was there
        // from one the SDK's first try created before its answer was lost.
        let before = existing_partitions(glue, database, &spec.name, chunk).await?;
        let out = glue
            .batch_create_partition()
            .database_name(database)
            .table_name(&spec.name)
            .set_partition_input_list(Some(inputs))
            .send()
            .await
            .map_err(|e| backend(database, &e))?;
        for error in out.errors() {
            let code = error
                .error_detail()
                .and_then(|d| d.error_code())
                .unwrap_or_default();
            if code != "AlreadyExistsException" {
                return Err(CrawlError::Backend {
                    crawler: database.to_owned(),
                    message: format!("BatchCreatePartition on {}: {code}", spec.name),
                    // Throttling and internal errors come back per partition too.
                    retryable: !code.contains("Validation") && !code.contains("NotFound"),
                });
            }
        }
        added.extend(chunk.iter().filter(|v| !before.contains(*v)).cloned());
    }
    let after = columns_info(descriptor.columns());
    Ok(table_change(
        before_info.as_ref(),
        &after,
        added,
        &spec.name,
    ))
}

/// Which of `chunk`'s partitions the table has.
async fn existing_partitions(
    glue: &aws_sdk_glue::Client,
    database: &str,
    table: &str,
    chunk: &[Vec<String>],
) -> Result<BTreeSet<Vec<String>>, CrawlError> {
    let wanted = chunk
        .iter()
        .map(|values| {
            PartitionValueList::builder()
                .set_values(Some(values.clone()))
                .build()
                .map_err(build_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = glue
        .batch_get_partition()
        .database_name(database)
        .table_name(table)
        .set_partitions_to_get(Some(wanted))
        .send()
        .await
        .map_err(|e| backend(database, &e))?;
    if !out.unprocessed_keys().is_empty() {
        return Err(CrawlError::Backend {
            crawler: database.to_owned(),
            message: format!("BatchGetPartition on {table}: unprocessed partitions"),
            retryable: true,
        });
    }
    Ok(out
        .partitions()
        .iter()
        .map(|p| p.values().to_vec())
        .collect())
}

async fn update(
    glue: &aws_sdk_glue::Client,
    database: &str,
    spec: &TableSpec,
    descriptor: &StorageDescriptor,
) -> Result<(), CrawlError> {
    let input = table_input(spec, descriptor)?;
    glue.update_table()
        .database_name(database)
        .table_input(input)
        .send()
        .await
        .map(drop)
        .map_err(|e| backend(database, &e))
}

fn table_input(spec: &TableSpec, descriptor: &StorageDescriptor) -> Result<TableInput, CrawlError> {
    TableInput::builder()
        .name(&spec.name)
        .table_type("EXTERNAL_TABLE")
        .set_parameters(Some(table_parameters(spec)))
        .set_partition_keys(Some(
            spec.partition_keys
                .iter()
                .map(|k| Column::builder().name(k).r#type("string").build())
                .collect::<Result<_, _>>()
                .map_err(build_error)?,
        ))
        .storage_descriptor(descriptor.clone())
        .build()
        .map_err(build_error)
}

fn build_error(e: aws_sdk_glue::error::BuildError) -> CrawlError {
    CrawlError::Backend {
        crawler: "catalog".to_owned(),
        message: e.to_string(),
        retryable: false,
    }
}

fn columns_info(cols: &[Column]) -> Vec<ColumnInfo> {
    cols.iter()
        .map(|c| ColumnInfo {
            name: c.name().to_owned(),
            data_type: c.r#type().unwrap_or_default().to_owned(),
        })
        .collect()
}

fn table_parameters(spec: &TableSpec) -> std::collections::HashMap<String, String> {
    let mut p = std::collections::HashMap::new();
    p.insert("lakegate.catalog".into(), "contract".into());
    p.insert("EXTERNAL".into(), "TRUE".into());
    match &spec.format {
        TableFormat::Csv { header, .. } => {
            p.insert("classification".into(), "csv".into());
            if *header {
                p.insert("skip.header.line.count".into(), "1".into());
            }
            // Athena: a cell that does not parse as its column's type reads as NULL.
            p.insert("use.null.for.invalid.data".into(), "TRUE".into());
        }
        TableFormat::Ndjson => {
            p.insert("classification".into(), "json".into());
        }
    }
    p
}

fn storage_descriptor(spec: &TableSpec, location: &str) -> StorageDescriptor {
    let (library, params): (&str, Vec<(&str, String)>) = match &spec.format {
        TableFormat::Csv {
            delimiter,
            quote,
            encoding,
            ..
        } => {
            let mut params = vec![
                ("separatorChar", delimiter.to_string()),
                ("quoteChar", quote.to_string()),
            ];
            if encoding == "latin-1" {
                params.push(("serialization.encoding", "ISO-8859-1".into()));
            }
            (OPEN_CSV_SERDE, params)
        }
        // Malformed lines read as NULL rows instead of failing the query.
        TableFormat::Ndjson => (JSON_SERDE, vec![("ignore.malformed.json", "TRUE".into())]),
    };
    StorageDescriptor::builder()
        .location(location)
        .input_format(INPUT_FORMAT)
        .output_format(OUTPUT_FORMAT)
        .set_columns(Some(glue_columns(spec)))
        .serde_info(
            SerDeInfo::builder()
                .serialization_library(library)
                .set_parameters(Some(
                    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                ))
                .build(),
        )
        .build()
}

/// The contract's columns as Glue columns. CSV: one column per declared column, named in lower
/// case (as Athena names them). NDJSON: a dotted path becomes a struct field of its top-level
/// column (`code.text` -> `code struct<text:...>`), which is how the JSON SerDe reads nested
/// objects; Athena queries it as `code.text`.
pub fn glue_columns(spec: &TableSpec) -> Vec<Column> {
    let data = spec
        .columns
        .iter()
        .filter(|c| !spec.partition_keys.contains(&c.name));
    match spec.format {
        TableFormat::Csv { .. } => data
            .map(|c| {
                let comment = (c.sql.csv_hive != c.sql.hive).then(|| {
                    format!(
                        "contract type {} ({}); cast in queries",
                        c.sql.hive,
                        c.formats.join(" | ")
                    )
                });
                Column::builder()
                    .name(c.name.to_ascii_lowercase())
                    .r#type(c.sql.csv_hive)
                    .set_comment(comment)
                    .build()
                    .expect("name and type are set")
            })
            .collect(),
        TableFormat::Ndjson => {
            let mut roots: Vec<(String, Node)> = Vec::new();
            for c in data {
                let root = c.path[0].to_ascii_lowercase();
                let at = match roots.iter().position(|(n, _)| *n == root) {
                    Some(at) => at,
                    None => {
                        roots.push((root, Node::Fields(Vec::new())));
                        roots.len() - 1
                    }
                };
                roots[at].1.insert(&c.path[1..], c);
            }
            roots
                .into_iter()
                .map(|(name, node)| {
                    Column::builder()
                        .name(name)
                        .r#type(node.hive())
                        .build()
                        .expect("name and type are set")
                })
                .collect()
        }
    }
}

enum Node {
    Leaf(&'static str),
    Fields(Vec<(String, Node)>),
}

impl Node {
    fn insert(&mut self, rest: &[String], column: &ColumnDef) {
        let Some((first, tail)) = rest.split_first() else {
            // The whole element is declared: its declared type wins over any nested paths.
            *self = Node::Leaf(column.sql.hive);
            return;
        };
        let Node::Fields(fields) = self else {
            return;
        };
        let key = first.to_ascii_lowercase();
        let at = match fields.iter().position(|(n, _)| *n == key) {
            Some(at) => at,
            None => {
                fields.push((key, Node::Fields(Vec::new())));
                fields.len() - 1
            }
        };
        fields[at].1.insert(tail, column);
    }

    fn hive(&self) -> String {
        match self {
            Node::Leaf(t) => (*t).to_owned(),
            Node::Fields(fields) => format!(
                "struct<{}>",
                fields
                    .iter()
                    .map(|(n, f)| format!("{n}:{}", f.hive()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}
