//! The crawler and catalog on a real DuckDB CLI over real hive-partitioned files.

mod common;

use std::time::Duration;

use lakegate_activities::port_suites::{self, column};
use lakegate_activities::ports::{Catalog, CrawlRequest, Crawler, CrawlerState, TableInfo};
use lakegate_local::{LocalCrawler, LocalQueryEngine};

const WITHIN: Duration = Duration::from_secs(60);

fn request(crawler: &str, prefixes: &[&str]) -> CrawlRequest {
    CrawlRequest {
        crawler: crawler.into(),
        database: "raw".into(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn patients_files(config: &lakegate_local::LocalConfig) {
    common::put(
        config,
        "raw/ehr/patients/ingest_date=2026-01-01/patients.csv",
        "Id,BIRTHDATE,WEIGHT,ACTIVE,NAME\n1,1980-02-03,70.5,true,Ann\n2,1975-11-30,81.0,false,\n",
    );
    common::put(
        config,
        "raw/ehr/patients/ingest_date=2026-01-02/patients.csv",
        "Id,BIRTHDATE,WEIGHT,ACTIVE,NAME\n3,2001-07-14,55.25,true,Bo\n",
    );
}

#[tokio::test]
async fn crawl_makes_a_view_with_glue_columns_and_partitions() {
    let (_dir, config) = common::config();
    patients_files(&config);
    let crawler = LocalCrawler::new(&config);
    let expected = TableInfo {
        database: "raw".into(),
        name: "ehr_patients".into(),
        location: String::new(),
        columns: vec![
            column("Id", "bigint"),
            column("BIRTHDATE", "date"),
            column("WEIGHT", "double"),
            column("ACTIVE", "boolean"),
            column("NAME", "string"),
        ],
        partition_keys: vec![column("ingest_date", "string")],
        partitions: vec![vec!["2026-01-01".into()], vec!["2026-01-02".into()]],
    };
    let table = port_suites::crawl_creates_table(
        &crawler,
        &crawler,
        &request("lake-raw", &["raw/ehr/patients/ingest_date=2026-01-02/"]),
        &expected,
        WITHIN,
    )
    .await;
    assert!(
        table.location.ends_with("/raw/ehr/patients/"),
        "{}",
        table.location
    );

    // The view is queryable, NULLs and partition values included.
    let engine = LocalQueryEngine::new(&config);
    let (columns, rows, _) = port_suites::run_query(
        &engine,
        "SELECT Id, NAME, ingest_date FROM raw.ehr_patients ORDER BY Id",
        "t1",
        WITHIN,
    )
    .await;
    assert_eq!(columns, ["Id", "NAME", "ingest_date"]);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[1],
        vec![Some("2".into()), None, Some("2026-01-01".into())]
    );
    assert_eq!(rows[2][2].as_deref(), Some("2026-01-02"));
}

#[tokio::test]
async fn a_dataset_prefix_crawls_every_table_and_ndjson_too() {
    let (_dir, config) = common::config();
    patients_files(&config);
    common::put(
        &config,
        "raw/ehr/fhir_patient/ingest_date=2026-01-01/Patient.ndjson",
        "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"X\",\"given\":[\"Y\"]}]}\n\
         {\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"Z\",\"given\":[\"W\"]}]}\n",
    );
    let crawler = LocalCrawler::new(&config);
    let since = 0;
    crawler
        .start_crawl(&request("c", &["raw/ehr/"]))
        .await
        .unwrap();
    let last = port_suites::wait_for_crawl(&crawler, "c", since, WITHIN).await;
    assert_eq!(last.status, "SUCCEEDED", "{:?}", last.error_message);
    let tables = crawler.list_tables("raw").await.unwrap();
    let names: Vec<_> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ehr_fhir_patient", "ehr_patients"]);
    assert_eq!(
        tables[0].columns,
        vec![
            column("resourceType", "string"),
            column("id", "string"),
            column("name", "array<struct<family:string,given:array<string>>>"),
        ]
    );
}

#[tokio::test]
async fn a_broken_file_fails_the_crawl_with_a_reason_and_no_cell_values() {
    let (_dir, config) = common::config();
    common::put(
        &config,
        "raw/ehr/encounters/ingest_date=2026-01-01/encounters.csv",
        "Id,PATIENT,START\n1,p1,2026-01-01\n2,p2,2026-01-02,Jane Secret,extra\n3,p3,2026-01-03\n",
    );
    let crawler = LocalCrawler::new(&config);
    let reason = port_suites::crawl_of_broken_data_fails(
        &crawler,
        &request("broken", &["raw/ehr/encounters/"]),
        WITHIN,
    )
    .await;
    // The port's reason is DuckDB's own text, bound for the lake's log zone: the crawl activity
    // stores it there and hands the workflow only its class (tests/tests/phi_failures.rs checks
    // that none of it reaches Temporal, the logs or the CLI).
    assert!(reason.contains("ehr_encounters"), "{reason}");
    assert!(reason.contains("Invalid Input Error"), "{reason}");
    // The failed crawl left no table behind.
    assert!(crawler.list_tables("raw").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_start_during_a_crawl_joins_it() {
    let (_dir, config) = common::config();
    patients_files(&config);
    let crawler = LocalCrawler::new(&config);
    // Holding the database keeps the crawl running for as long as the test needs.
    let held = lakegate_local::duckdb::database_lock(&config.duckdb_path)
        .lock_owned()
        .await;
    let req = request("busy", &["raw/ehr/patients/"]);
    port_suites::start_while_running_joins(&crawler, &req).await;
    drop(held);
    let last = port_suites::wait_for_crawl(&crawler, "busy", 0, WITHIN).await;
    assert_eq!(last.status, "SUCCEEDED", "{:?}", last.error_message);

    // A second backend instance (a restarted worker) sees the finished crawl.
    let after_restart = LocalCrawler::new(&config);
    let status = after_restart.crawler_status("busy").await.unwrap();
    assert_eq!(status.state, CrawlerState::Ready);
    assert_eq!(status.last_crawl.unwrap().status, "SUCCEEDED");
    assert_eq!(after_restart.list_tables("raw").await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_fhir_sample_crawls_into_nested_tables() {
    let (_dir, config) = common::config();
    let sample = common::repo_root().join("examples/ehr/sample");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sample.join("manifest.json")).unwrap()).unwrap();
    for resource in ["Patient", "Encounter", "Condition"] {
        let body =
            std::fs::read_to_string(sample.join(format!("ehr_fhir/{resource}.ndjson"))).unwrap();
        let table = resource.to_lowercase();
        common::put(
            &config,
            &format!("raw/ehr_fhir/{table}/ingest_date=2026-01-01/{resource}.ndjson"),
            &body,
        );
    }
    let crawler = LocalCrawler::new(&config);
    crawler
        .start_crawl(&request("fhir", &["raw/ehr_fhir/"]))
        .await
        .unwrap();
    let last = port_suites::wait_for_crawl(&crawler, "fhir", 0, WITHIN).await;
    assert_eq!(last.status, "SUCCEEDED", "{:?}", last.error_message);
    let tables = crawler.list_tables("raw").await.unwrap();
    let patient = tables
        .iter()
        .find(|t| t.name == "ehr_fhir_patient")
        .expect("patient table");
    let types: std::collections::BTreeMap<_, _> = patient
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.as_str()))
        .collect();
    assert_eq!(types["birthDate"], "date");
    assert_eq!(
        types["identifier"],
        "array<struct<system:string,value:string>>"
    );
    // deceasedDateTime is in a few resources only: the sniffer still found it.
    assert!(types.contains_key("deceasedDateTime"), "{types:?}");

    let engine = LocalQueryEngine::new(&config);
    for resource in ["Patient", "Encounter", "Condition"] {
        let sql = format!(
            "SELECT count(*) FROM raw.ehr_fhir_{}",
            resource.to_lowercase()
        );
        let (_, rows, _) = port_suites::run_query(&engine, &sql, resource, WITHIN).await;
        assert_eq!(
            rows[0][0].as_deref(),
            Some(manifest["fhir"][resource].to_string().as_str())
        );
    }
}

#[tokio::test]
async fn a_crawl_of_an_empty_prefix_succeeds_with_no_tables_and_foreign_prefixes_fail() {
    let (_dir, config) = common::config();
    let crawler = LocalCrawler::new(&config);
    crawler
        .start_crawl(&request("empty", &["raw/ehr/nothing_here/"]))
        .await
        .unwrap();
    let last = port_suites::wait_for_crawl(&crawler, "empty", 0, WITHIN).await;
    assert_eq!(last.status, "SUCCEEDED", "{:?}", last.error_message);
    assert!(crawler.list_tables("raw").await.unwrap().is_empty());

    let reason = port_suites::crawl_of_broken_data_fails(
        &crawler,
        &request("outside", &["quarantine/ehr/patients/"]),
        WITHIN,
    )
    .await;
    assert!(reason.contains("not under raw/"), "{reason}");
}

/// Every file of a crawled table retracted (moved out of raw/): the next crawl keeps the table
/// with its columns, empty, as a Glue table whose files are gone reads, instead of leaving a view
/// that fails every query.
#[tokio::test]
async fn a_crawled_table_whose_files_were_all_retracted_stays_empty_and_queryable() {
    let (_dir, config) = common::config();
    patients_files(&config);
    let crawler = LocalCrawler::new(&config);
    crawler
        .start_crawl(&request("r", &["raw/ehr/patients/"]))
        .await
        .unwrap();
    let first = port_suites::wait_for_crawl(&crawler, "r", 0, WITHIN).await;
    assert_eq!(first.status, "SUCCEEDED", "{:?}", first.error_message);
    let before = crawler.list_tables("raw").await.unwrap();

    std::fs::remove_dir_all(config.lake_dir.join("raw/ehr/patients")).unwrap();
    std::fs::create_dir_all(config.lake_dir.join("raw/ehr/patients")).unwrap();
    crawler
        .start_crawl(&request("r", &["raw/ehr/patients/ingest_date=2026-01-01/"]))
        .await
        .unwrap();
    let since = first.started_at.unwrap_or_default();
    let second = port_suites::wait_for_crawl(&crawler, "r", since, WITHIN).await;
    assert_eq!(second.status, "SUCCEEDED", "{:?}", second.error_message);
    let after = crawler.list_tables("raw").await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].columns, before[0].columns);
    assert!(after[0].partitions.is_empty(), "{:?}", after[0].partitions);
    let engine = LocalQueryEngine::new(&config);
    let (_, rows, _) = port_suites::run_query(
        &engine,
        "SELECT count(*), count(ingest_date) FROM raw.ehr_patients",
        "empty",
        WITHIN,
    )
    .await;
    assert_eq!(rows[0], vec![Some("0".into()), Some("0".into())]);
}
