//! Tables registered from their contracts in moto's Glue: the table, its columns, its SerDe and
//! its partitions exactly as the contract says, idempotent on retry, and never a crawler call.

use std::path::Path;

use anyhow::Result;
use aws_sdk_glue::types::{Column, DatabaseInput, Table};
use lakegate_activities::catalog::{CatalogRequest, register_prefixes};
use lakegate_aws::GlueCatalog;
use lakegate_aws::glue_tables::{JSON_SERDE, OPEN_CSV_SERDE};
use lakegate_validate::{Contract, ContractSet};

use crate::harness::Moto;

const CONTRACT: &str = r#"
dataset: ehr
tables:
  - name: vitals
    keys: ["landing/*/ehr/vitals*.csv"]
    format: { delimiter: ";", encoding: latin-1 }
    columns:
      - { name: Id, type: integer }
      - { name: WEIGHT, type: decimal }
      - { name: SEEN, type: date }
  - name: observation
    keys: ["landing/*/ehr/Observation*.ndjson"]
    format: { kind: fhir, resource_type: Observation }
    columns:
      - { name: id }
      - { name: effectiveDateTime, type: timestamp, format: "%Y-%m-%dT%H:%M:%S%z" }
      - { name: code.text }
      - { name: valueQuantity.value, type: decimal }
      - { name: valueQuantity.unit }
"#;

async fn glue_with_database(moto: &Moto) -> aws_sdk_glue::Client {
    let glue = moto.clients().await.glue;
    glue.create_database()
        .database_input(DatabaseInput::builder().name("lake").build().unwrap())
        .send()
        .await
        .unwrap();
    glue
}

fn request(prefixes: &[&str]) -> CatalogRequest {
    CatalogRequest {
        database: "lake".into(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
    }
}

/// The table `name` of the database `lake`.
async fn table(glue: &aws_sdk_glue::Client, name: &str) -> Table {
    let out = glue
        .get_table()
        .database_name("lake")
        .name(name)
        .send()
        .await
        .unwrap();
    out.table().unwrap().clone()
}

/// Each column's name and Glue type.
fn typed(columns: &[Column]) -> Vec<(&str, &str)> {
    columns
        .iter()
        .map(|c| (c.name(), c.r#type().unwrap_or_default()))
        .collect()
}

fn contracts(yaml: &str) -> ContractSet {
    ContractSet::from_contracts(vec![Contract::parse(yaml, Path::new("ehr.yaml")).unwrap()])
}

#[tokio::test]
async fn the_glue_table_columns_serde_and_partitions_are_the_contracts() -> Result<()> {
    let moto = Moto::start().await?;
    let glue = glue_with_database(&moto).await;
    let catalog = GlueCatalog::new(glue.clone()).with_bucket("lake-bucket");
    let step = register_prefixes(
        &catalog,
        &contracts(CONTRACT),
        &request(&[
            "raw/ehr/vitals/ingest_date=2026-01-01/",
            "raw/ehr/vitals/ingest_date=2026-01-02/",
            "raw/ehr/observation/ingest_date=2026-01-02/",
        ]),
    )
    .await?;
    assert_eq!(step.error, None);
    assert!(step.crawl.is_empty());
    assert_eq!(step.changes.len(), 2);
    assert!(step.changes.iter().all(|c| c.created), "{:?}", step.changes);

    let vitals = table(&glue, "ehr_vitals").await;
    let sd = vitals.storage_descriptor().unwrap();
    assert_eq!(sd.location(), Some("s3://lake-bucket/raw/ehr/vitals/"));
    // OpenCSVSerDe reads dates only as day numbers: the date stays text, its type in the comment.
    assert_eq!(
        typed(sd.columns()),
        [("id", "bigint"), ("weight", "double"), ("seen", "string")]
    );
    assert!(
        sd.columns()[2]
            .comment()
            .is_some_and(|c| c.contains("date") && c.contains("%Y-%m-%d"))
    );
    let serde = sd.serde_info().unwrap();
    assert_eq!(serde.serialization_library(), Some(OPEN_CSV_SERDE));
    let params = serde.parameters().unwrap();
    assert_eq!(params.get("separatorChar").map(String::as_str), Some(";"));
    assert_eq!(params.get("quoteChar").map(String::as_str), Some("\""));
    assert_eq!(
        params.get("serialization.encoding").map(String::as_str),
        Some("ISO-8859-1")
    );
    let table_params = vitals.parameters().unwrap();
    assert_eq!(
        table_params
            .get("skip.header.line.count")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        table_params
            .get("use.null.for.invalid.data")
            .map(String::as_str),
        Some("TRUE")
    );
    assert_eq!(typed(vitals.partition_keys()), [("ingest_date", "string")]);
    let parts = glue
        .get_partitions()
        .database_name("lake")
        .table_name("ehr_vitals")
        .send()
        .await?;
    let mut found: Vec<(Vec<String>, String)> = parts
        .partitions()
        .iter()
        .map(|p| {
            (
                p.values().to_vec(),
                p.storage_descriptor()
                    .and_then(|s| s.location())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                vec!["2026-01-01".to_owned()],
                "s3://lake-bucket/raw/ehr/vitals/ingest_date=2026-01-01/".to_owned()
            ),
            (
                vec!["2026-01-02".to_owned()],
                "s3://lake-bucket/raw/ehr/vitals/ingest_date=2026-01-02/".to_owned()
            ),
        ]
    );

    let obs = table(&glue, "ehr_observation").await;
    let sd = obs.storage_descriptor().unwrap();
    assert_eq!(
        typed(sd.columns()),
        [
            ("id", "string"),
            ("effectivedatetime", "timestamp"),
            ("code", "struct<text:string>"),
            ("valuequantity", "struct<value:double,unit:string>"),
        ]
    );
    assert_eq!(
        sd.serde_info().unwrap().serialization_library(),
        Some(JSON_SERDE)
    );

    // A retry of the same step: nothing new, nothing failed.
    let again = register_prefixes(
        &catalog,
        &contracts(CONTRACT),
        &request(&["raw/ehr/vitals/ingest_date=2026-01-02/"]),
    )
    .await?;
    assert_eq!(again.error, None);
    assert!(!again.changes[0].is_change(), "{:?}", again.changes);

    // The contract gains a column: the table is updated and the step says so.
    let v2 = CONTRACT.replace(
        "      - { name: SEEN, type: date }\n",
        "      - { name: SEEN, type: date }\n      - { name: NOTE }\n",
    );
    let changed = register_prefixes(
        &catalog,
        &contracts(&v2),
        &request(&["raw/ehr/vitals/ingest_date=2026-01-03/"]),
    )
    .await?;
    assert_eq!(changed.changes[0].columns_added, ["note"]);
    assert_eq!(changed.changes[0].partitions_added, ["2026-01-03"]);
    let vitals = table(&glue, "ehr_vitals").await;
    assert_eq!(vitals.storage_descriptor().unwrap().columns().len(), 4);
    Ok(())
}
