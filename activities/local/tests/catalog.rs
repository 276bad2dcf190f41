//! Tables registered from their contracts on a real DuckDB CLI: explicit types and reader options,
//! no sampling, bad cells NULL, and each step saying what it changed.

mod common;

use std::path::Path;
use std::time::Duration;

use lakegate_activities::catalog::{CatalogRequest, register_prefixes};
use lakegate_activities::port_suites;
use lakegate_local::{LocalConfig, LocalCrawler, LocalQueryEngine};
use lakegate_models::TableChange;
use lakegate_validate::{Contract, ContractSet};

const WITHIN: Duration = Duration::from_secs(60);

fn contracts(yaml: &str) -> ContractSet {
    ContractSet::from_contracts(vec![Contract::parse(yaml, Path::new("t.yaml")).unwrap()])
}

async fn register(config: &LocalConfig, yaml: &str, prefixes: &[&str]) -> Vec<TableChange> {
    let crawler = LocalCrawler::new(config);
    let step = register_prefixes(
        &crawler,
        &contracts(yaml),
        &CatalogRequest {
            database: "raw".into(),
            prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
        },
    )
    .await
    .expect("register");
    assert_eq!(step.error, None);
    assert!(step.crawl.is_empty(), "{:?}", step.crawl);
    step.changes
}

async fn query(config: &LocalConfig, sql: &str) -> Vec<Vec<Option<String>>> {
    let engine = LocalQueryEngine::new(config);
    port_suites::run_query(&engine, sql, &format!("q{}", sql.len()), WITHIN)
        .await
        .1
}

const CSV_CONTRACT: &str = r#"
dataset: ehr
tables:
  - name: vitals
    keys: ["landing/*/ehr/vitals*.csv"]
    format: { delimiter: ";", null_values: ["NA"] }
    columns:
      - { name: Id, type: integer }
      - { name: WEIGHT, type: decimal }
      - { name: ACTIVE, type: boolean }
      - { name: SEEN, type: date }
      - { name: TAKEN, type: timestamp, format: "%Y-%m-%d %H:%M:%S" }
      - { name: NOTE }
"#;

#[tokio::test]
async fn an_approved_csv_with_type_failures_is_queryable_with_the_bad_cells_null() {
    let (_dir, config) = common::config();
    // Row 2 fails every type: a reviewer approved it from quarantine. Row 3 uses the NA null.
    common::put(
        &config,
        "raw/ehr/vitals/ingest_date=2026-01-01/vitals.csv",
        "Id;WEIGHT;ACTIVE;SEEN;TAKEN;NOTE\n\
         1;70.5;yes;2026-01-01;2026-01-01 10:11:12;\"a;b\"\n\
         x2;heavy;maybe;01/02/2026;noon;NA\n\
         3;NA;F;2026-02-30;2026-01-01 10:11:12.5;ok\n",
    );
    let changes = register(
        &config,
        CSV_CONTRACT,
        &["raw/ehr/vitals/ingest_date=2026-01-01/"],
    )
    .await;
    assert_eq!(changes.len(), 1);
    assert!(changes[0].created, "{changes:?}");
    assert_eq!(changes[0].partitions_added, ["2026-01-01"]);
    assert_eq!(changes[0].partition_rows, Some(3));

    let rows = query(
        &config,
        "SELECT Id, WEIGHT, ACTIVE, SEEN, TAKEN, NOTE, typeof(Id), typeof(TAKEN), ingest_date \
         FROM raw.ehr_vitals ORDER BY NOTE NULLS LAST",
    )
    .await;
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        rows[0],
        [
            text("1"),
            text("70.5"),
            text("true"),
            text("2026-01-01"),
            text("2026-01-01 10:11:12"),
            text("a;b"),
            text("BIGINT"),
            text("TIMESTAMP"),
            text("2026-01-01"),
        ]
    );
    assert_eq!(rows[1][..3], [text("3"), None, text("false")]);
    // 2026-02-30 is no date; a fraction the declared format has no %f for is no timestamp.
    assert_eq!(rows[1][3..6], [None, None, text("ok")]);
    // Every bad cell is NULL (and NA is a null); the row and the table stay readable.
    assert_eq!(rows[2][..6], [None, None, None, None, None, None]);
    let agg = query(
        &config,
        "SELECT count(*), sum(Id), count(SEEN) FROM raw.ehr_vitals",
    )
    .await;
    assert_eq!(agg[0], [text("3"), text("4"), text("1")]);
}

const FHIR_V1: &str = r#"
dataset: fhir
tables:
  - name: observation
    keys: ["landing/*/fhir/Observation*.ndjson"]
    format: { kind: fhir, resource_type: Observation }
    columns:
      - { name: resourceType, required: true }
      - { name: id, required: true }
      - { name: effectiveDateTime, type: timestamp, format: "%Y-%m-%dT%H:%M:%S.%f%z" }
      - { name: valueQuantity.value, type: decimal }
"#;

#[tokio::test]
async fn mixed_precision_fhir_timestamps_past_any_sample_are_all_read() {
    let (_dir, config) = common::config();
    // 40,000 lines with milliseconds, then the precisions a sniffer never saw (the report that
    // motivated this: sampled inference tripped at line 37,866).
    let mut body = String::new();
    for i in 0..40_000 {
        body.push_str(&format!(
            "{{\"resourceType\":\"Observation\",\"id\":\"o{i}\",\"effectiveDateTime\":\"2020-01-01T10:00:00.123Z\",\"valueQuantity\":{{\"value\":{i}.5}}}}\n"
        ));
    }
    body.push_str("{\"resourceType\":\"Observation\",\"id\":\"ns\",\"effectiveDateTime\":\"2020-01-01T10:00:00.123456789+01:00\",\"valueQuantity\":{\"value\":1}}\n");
    body.push_str("{\"resourceType\":\"Observation\",\"id\":\"s1\",\"effectiveDateTime\":\"2020-01-01T10:00:00.1-02:00\"}\n");
    body.push_str("{\"resourceType\":\"Observation\",\"id\":\"bad\",\"effectiveDateTime\":\"2020-01\",\"valueQuantity\":{\"value\":\"n/a\"}}\n");
    common::put(
        &config,
        "raw/fhir/observation/ingest_date=2026-01-01/Observation.ndjson",
        &body,
    );
    let changes = register(
        &config,
        FHIR_V1,
        &["raw/fhir/observation/ingest_date=2026-01-01/"],
    )
    .await;
    assert_eq!(changes[0].partition_rows, Some(40_003));

    let rows = query(
        &config,
        "SELECT id, CAST(effectiveDateTime AS VARCHAR), \"valueQuantity.value\" \
         FROM raw.fhir_observation WHERE id IN ('o39999', 'ns', 's1', 'bad') ORDER BY id",
    )
    .await;
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(rows[0], [text("bad"), None, None]);
    assert_eq!(
        rows[1],
        [text("ns"), text("2020-01-01 09:00:00.123457"), text("1.0")]
    );
    assert_eq!(
        rows[2],
        [
            text("o39999"),
            text("2020-01-01 10:00:00.123"),
            text("39999.5")
        ]
    );
    assert_eq!(rows[3], [text("s1"), text("2020-01-01 12:00:00.1"), None]);
}

#[tokio::test]
async fn a_contract_that_adds_a_column_updates_the_table_and_says_so() {
    let (_dir, config) = common::config();
    common::put(
        &config,
        "raw/fhir/observation/ingest_date=2026-01-01/Observation.ndjson",
        "{\"resourceType\":\"Observation\",\"id\":\"a\",\"status\":\"final\"}\n",
    );
    register(
        &config,
        FHIR_V1,
        &["raw/fhir/observation/ingest_date=2026-01-01/"],
    )
    .await;
    common::put(
        &config,
        "raw/fhir/observation/ingest_date=2026-01-02/Observation.ndjson",
        "{\"resourceType\":\"Observation\",\"id\":\"b\",\"status\":\"amended\"}\n",
    );
    let v2 = format!("{FHIR_V1}      - {{ name: status }}\n");
    let changes = register(
        &config,
        &v2,
        &["raw/fhir/observation/ingest_date=2026-01-02/"],
    )
    .await;
    assert_eq!(
        changes,
        [TableChange {
            table: "fhir_observation".into(),
            created: false,
            columns_added: vec!["status".into()],
            partitions_added: vec!["2026-01-02".into()],
            partition_rows: Some(1),
            ..TableChange::default()
        }]
    );
    let rows = query(
        &config,
        "SELECT id, status FROM raw.fhir_observation ORDER BY id",
    )
    .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1].as_deref(), Some("amended"));

    // The same step again (a retried activity) changes nothing.
    let again = register(
        &config,
        &v2,
        &["raw/fhir/observation/ingest_date=2026-01-02/"],
    )
    .await;
    assert!(!again[0].is_change(), "{again:?}");

    // Every file gone (retracted): the table stays, typed and empty.
    std::fs::remove_dir_all(config.lake_dir.join("raw/fhir/observation")).unwrap();
    let gone = register(
        &config,
        &v2,
        &["raw/fhir/observation/ingest_date=2026-01-02/"],
    )
    .await;
    assert!(!gone[0].created);
    let rows = query(&config, "SELECT count(*) FROM raw.fhir_observation").await;
    assert_eq!(rows[0][0].as_deref(), Some("0"));
}

#[tokio::test]
async fn untyped_tables_and_crawler_tables_are_left_to_the_crawler() {
    let (_dir, config) = common::config();
    let yaml = r#"
dataset: ehr
tables:
  - { name: loose, keys: ["landing/*/ehr/loose*.csv"] }
  - name: sniffed
    keys: ["landing/*/ehr/sniffed*.csv"]
    catalog: crawler
    columns: [{ name: Id, type: integer }]
"#;
    let step = register_prefixes(
        &LocalCrawler::new(&config),
        &contracts(yaml),
        &CatalogRequest {
            database: "raw".into(),
            prefixes: vec![
                "raw/ehr/loose/ingest_date=2026-01-01/".into(),
                "raw/ehr/sniffed/ingest_date=2026-01-01/".into(),
                "raw/other/t/ingest_date=2026-01-01/".into(),
            ],
        },
    )
    .await
    .unwrap();
    assert!(step.changes.is_empty());
    assert_eq!(step.crawl.len(), 3);
}
