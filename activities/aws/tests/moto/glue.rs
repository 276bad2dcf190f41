use lakegate_activities::port_suites;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_glue::config::retry::RetryConfig;
use aws_sdk_glue::types::{
    Column, DatabaseInput, PartitionInput, S3Target, StorageDescriptor, TableInput,
};
use lakegate_activities::ports::PortError;
use lakegate_activities::ports::{
    Catalog, CrawlError, CrawlRequest, CrawlStart, Crawler, CrawlerState,
};
use lakegate_aws::glue::{crawl_everything, s3_targets};
use lakegate_aws::{AwsClients, AwsSettings, GlueCatalog, GlueCrawler};

use crate::harness::{CRAWL_SECONDS, FaultProxy, Moto, ProxyOptions, wait_for};

async fn crawler(glue: &aws_sdk_glue::Client, name: &str, paths: &[&str]) {
    glue.create_database()
        .database_input(DatabaseInput::builder().name("lake").build().unwrap())
        .send()
        .await
        .ok();
    let targets = paths
        .iter()
        .map(|p| S3Target::builder().path(*p).build())
        .collect();
    glue.create_crawler()
        .name(name)
        .role("arn:aws:iam::123456789012:role/crawler")
        .database_name("lake")
        .table_prefix("emr_")
        .targets(s3_targets(targets))
        .recrawl_policy(crawl_everything())
        .send()
        .await
        .unwrap();
}

fn request(prefixes: &[&str]) -> CrawlRequest {
    CrawlRequest {
        crawler: "emr".into(),
        database: "lake".into(),
        prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
    }
}

#[tokio::test]
async fn a_crawl_starts_joins_when_already_running_and_ends_ready() -> Result<()> {
    let moto = Moto::start().await?;
    let glue = moto.clients().await.glue;
    crawler(&glue, "emr", &["s3://lake/raw/emr/visits/dt=2026-11-26/"]).await;
    let adapter = GlueCrawler::new(glue, "lake");
    let req = request(&["raw/emr/visits/dt=2026-11-26/"]);

    // The shared crawler suite (the local backend runs it too): started, RUNNING, and a
    // retried activity or second request while the crawl runs is joined, not failed.
    port_suites::start_while_running_joins(&adapter, &req).await;

    let status = wait_for(
        "the crawler to be READY",
        Duration::from_secs(CRAWL_SECONDS * 10),
        || async {
            let s = adapter.crawler_status("emr").await?;
            Ok((s.state == CrawlerState::Ready).then_some(s))
        },
    )
    .await?;
    let last = status.last_crawl.expect("a finished crawl has LastCrawl");
    // moto gap: GetCrawler's LastCrawl.Status is "COMPLETED" in moto (the crawl-history name),
    // outside LastCrawlInfo's SUCCEEDED | CANCELLED | FAILED. The adapter reads the crawl-history
    // names as the outcomes they stand for, so the workflow sees the success it checks for.
    assert_eq!(last.status, "SUCCEEDED");
    assert_eq!(last.log_group.as_deref(), Some("/aws-glue/crawlers"));
    assert_eq!(last.log_stream.as_deref(), Some("emr"));
    assert!(last.started_at.is_some());
    // Ready again: a new run starts.
    assert_eq!(adapter.start_crawl(&req).await?, CrawlStart::Started);
    Ok(())
}

/// StartCrawler's answer lost (Glue started the crawl; the client got a 500) and every SDK retry
/// gone: the activity's next attempt meets the crawl its first attempt started. Told when the
/// request was first made, the adapter takes that crawl, running or finished, as this request's
/// and starts no second one; a crawl that started before the request is still joined.
#[tokio::test]
async fn a_retried_start_takes_the_crawl_its_lost_answer_started_as_its_own() -> Result<()> {
    let moto = Moto::start().await?;
    let direct = moto.clients().await.glue;
    crawler(&direct, "emr", &["s3://lake/raw/emr/visits/dt=2026-11-26/"]).await;
    let proxy = FaultProxy::start_with(
        moto.port,
        ProxyOptions {
            lose_first: vec![("glue".into(), "StartCrawler".into())],
            ..ProxyOptions::default()
        },
    )
    .await?;
    let glue = AwsClients::load(&AwsSettings::emulator(&proxy.endpoint))
        .await
        .glue;
    // No SDK retries: the lost answer reaches the adapter, as when all of them fail.
    let glue = aws_sdk_glue::Client::from_conf(
        glue.config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let adapter = GlueCrawler::new(glue, "lake");
    let req = request(&["raw/emr/visits/dt=2026-11-26/"]);
    let crawls = || async {
        let out = direct.list_crawls().crawler_name("emr").send().await?;
        anyhow::Ok(out.crawls().len())
    };

    let scheduled = SystemTime::now();
    let lost = adapter
        .start_crawl_since(&req, scheduled)
        .await
        .unwrap_err();
    assert!(lost.is_retryable(), "{lost:?}");
    assert_eq!(crawls().await?, 1, "Glue started the crawl all the same");

    // The retry, while that crawl runs: ours, not a join.
    assert_eq!(
        adapter.start_crawl_since(&req, scheduled).await?,
        CrawlStart::Started
    );
    // A request made after the crawl started (the workflow's next, after a join) does join it,
    // and so does a start that says nothing about when it was asked.
    let later = SystemTime::now();
    assert_eq!(
        adapter.start_crawl_since(&req, later).await?,
        CrawlStart::JoinedRunning
    );
    assert_eq!(adapter.start_crawl(&req).await?, CrawlStart::JoinedRunning);

    wait_for(
        "the crawl to end",
        Duration::from_secs(CRAWL_SECONDS * 10),
        || async {
            Ok((adapter.crawler_status("emr").await?.state == CrawlerState::Ready).then_some(()))
        },
    )
    .await?;
    // A retry that comes after the crawl ended: still ours, left to be read, not crawled again.
    assert_eq!(
        adapter.start_crawl_since(&req, scheduled).await?,
        CrawlStart::Started
    );
    assert_eq!(crawls().await?, 1, "no second crawl for the same request");
    // A new request crawls again.
    assert_eq!(
        adapter.start_crawl_since(&req, SystemTime::now()).await?,
        CrawlStart::Started
    );
    assert_eq!(crawls().await?, 2);
    assert_eq!(proxy.totals().faults, 1);
    Ok(())
}

#[tokio::test]
async fn an_unknown_crawler_is_a_typed_error() -> Result<()> {
    let moto = Moto::start().await?;
    let adapter = GlueCrawler::new(moto.clients().await.glue, "lake");
    let err = adapter
        .start_crawl(&request(&["raw/x/"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CrawlError::NoSuchCrawler(ref n) if n == "emr"),
        "{err:?}"
    );
    assert!(matches!(
        adapter.crawler_status("emr").await,
        Err(CrawlError::NoSuchCrawler(_))
    ));
    Ok(())
}

#[tokio::test]
async fn new_prefixes_need_update_crawler_which_moto_does_not_implement() -> Result<()> {
    let moto = Moto::start().await?;
    let glue = moto.clients().await.glue;
    crawler(&glue, "emr", &["s3://lake/raw/emr/visits/dt=2026-11-25/"]).await;
    let adapter = GlueCrawler::new(glue.clone(), "lake");
    // moto gap: UpdateCrawler is not implemented in moto 5.2.5. On AWS this call points the
    // crawler at exactly the new prefix and starts it; on moto the update is refused, and the
    // adapter must surface that as an error rather than start a crawl of the old targets.
    let err = adapter
        .start_crawl(&request(&["raw/emr/visits/dt=2026-11-26/"]))
        .await
        .unwrap_err();
    assert!(matches!(err, CrawlError::Backend { .. }), "{err:?}");
    let state = glue
        .get_crawler()
        .name("emr")
        .send()
        .await?
        .crawler()
        .unwrap()
        .state()
        .cloned();
    assert_eq!(
        state,
        Some(aws_sdk_glue::types::CrawlerState::Ready),
        "no crawl of the old targets was started"
    );
    Ok(())
}

#[tokio::test]
async fn the_catalog_lists_tables_columns_and_partitions() -> Result<()> {
    let moto = Moto::start().await?;
    let glue = moto.clients().await.glue;
    glue.create_database()
        .database_input(DatabaseInput::builder().name("lake").build()?)
        .send()
        .await?;
    // moto's crawler reads no S3, so the tables a crawl would create are created here directly.
    let col = |n: &str, t: &str| Column::builder().name(n).r#type(t).build().unwrap();
    for (name, partitioned) in [("emr_visits", true), ("emr_patients", false)] {
        let mut table = TableInput::builder().name(name).storage_descriptor(
            StorageDescriptor::builder()
                .location(format!("s3://lake/raw/emr/{name}/"))
                .columns(col("id", "bigint"))
                .columns(col("visit_date", "date"))
                .build(),
        );
        if partitioned {
            table = table.partition_keys(col("dt", "string"));
        }
        glue.create_table()
            .database_name("lake")
            .table_input(table.build()?)
            .send()
            .await?;
    }
    for dt in ["2026-11-26", "2026-11-25"] {
        glue.create_partition()
            .database_name("lake")
            .table_name("emr_visits")
            .partition_input(PartitionInput::builder().values(dt).build())
            .send()
            .await?;
    }
    let tables = GlueCatalog::new(glue).list_tables("lake").await?;
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["emr_patients", "emr_visits"]);
    let visits = &tables[1];
    assert_eq!(visits.location, "s3://lake/raw/emr/emr_visits/");
    assert_eq!(
        visits
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.data_type.as_str()))
            .collect::<Vec<_>>(),
        [("id", "bigint"), ("visit_date", "date")]
    );
    assert_eq!(visits.partition_keys.len(), 1);
    assert_eq!(
        visits.partitions,
        vec![vec!["2026-11-25".to_owned()], vec!["2026-11-26".to_owned()]]
    );
    assert!(tables[0].partitions.is_empty());
    Ok(())
}
