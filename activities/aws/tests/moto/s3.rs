use anyhow::Result;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use bytes::Bytes;
use lakegate_activities::ports::{ObjectStore, PortError, StoreError};
use lakegate_aws::s3::{RUN_TAG, S3Store, SOURCE_ETAG_TAG, ZONE_TAG};

use crate::harness::Moto;
use lakegate_activities::port_suites::{object_store_contract, read_all};

async fn bucket(moto: &Moto, name: &str, versioned: bool) -> aws_sdk_s3::Client {
    let s3 = moto.clients().await.s3;
    s3.create_bucket().bucket(name).send().await.unwrap();
    if versioned {
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    s3
}

/// How many versions of `key` exist: a second copy during a retried move would add one.
async fn versions(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .count()
}

#[tokio::test]
async fn s3_store_meets_the_object_store_contract() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", false).await;
    object_store_contract(&S3Store::new(s3, "lake")).await;
    Ok(())
}

#[tokio::test]
async fn list_follows_continuation_tokens() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", false).await;
    let store = S3Store::new(s3, "lake").with_list_page_size(7);
    let mut want = Vec::new();
    for i in 0..30 {
        let key = format!("raw/emr/part-{i:03}.csv");
        store.put(&key, Bytes::from(format!("{i}"))).await?;
        want.push(key);
    }
    store
        .put("raw/other/x.csv", Bytes::from_static(b"x"))
        .await?;
    let got: Vec<String> = store
        .list("raw/emr/")
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        got, want,
        "30 keys over 5 pages of 7, in order, nothing outside the prefix"
    );
    // A page that spans several ListObjectsV2 calls starts at the cursor, not at the top.
    let page: Vec<String> = store
        .list_page("raw/emr/", Some(&want[9]), 12)
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        page,
        want[10..22],
        "12 keys after the 10th, across pages of 7"
    );
    Ok(())
}

#[tokio::test]
async fn copy_keeps_the_source_and_tags_the_copy() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", false).await;
    let store = S3Store::new(s3, "lake").with_run_id("run-42");
    let src = store
        .put("landing/emr/a+b.csv", Bytes::from_static(b"id\n1\n"))
        .await?;
    let copy = store.copy("landing/emr/a+b.csv", "raw/emr/a+b.csv").await?;
    assert_eq!(copy.etag, src.etag);
    assert!(store.head("landing/emr/a+b.csv").await?.is_some());
    assert_eq!(read_all(&store, "raw/emr/a+b.csv").await, b"id\n1\n");
    let tags = store.tags("raw/emr/a+b.csv").await?;
    assert!(tags.contains(&(ZONE_TAG.into(), "raw".into())), "{tags:?}");
    assert!(
        tags.contains(&(RUN_TAG.into(), "run-42".into())),
        "{tags:?}"
    );
    let put_tags = store.tags("landing/emr/a+b.csv").await?;
    assert!(
        put_tags.contains(&(ZONE_TAG.into(), "landing".into())),
        "{put_tags:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_move_retried_after_a_crash_between_copy_and_delete_finishes_without_a_second_copy()
-> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", true).await;
    let store = S3Store::new(s3.clone(), "lake");
    let (from, to) = ("landing/emr/visits.csv", "quarantine/emr/visits.csv");
    let src = store.put(from, Bytes::from_static(b"id\n1\n2\n")).await?;

    // The first attempt: the conditioned copy succeeds, then the worker dies before the delete.
    store
        .copy_conditional(from, to, src.etag.as_deref(), Some("run-1"))
        .await?;
    assert!(store.head(from).await?.is_some() && store.head(to).await?.is_some());
    assert_eq!(versions(&s3, "lake", to).await, 1);

    // The retry finds the copy and only deletes the source.
    let moved = store.move_tagged(from, to, Some("run-1")).await?;
    assert_eq!(moved.etag, src.etag);
    assert!(store.head(from).await?.is_none());
    assert_eq!(
        versions(&s3, "lake", to).await,
        1,
        "the retry must not copy again"
    );
    assert_eq!(read_all(&store, to).await, b"id\n1\n2\n");
    let tags = store.tags(to).await?;
    assert!(
        tags.contains(&(ZONE_TAG.into(), "quarantine".into())),
        "{tags:?}"
    );
    assert!(tags.contains(&(RUN_TAG.into(), "run-1".into())), "{tags:?}");
    Ok(())
}

#[tokio::test]
async fn a_copy_conditioned_on_a_stale_etag_is_a_conflict_and_moves_nothing() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", false).await;
    let store = S3Store::new(s3, "lake");
    let first = store
        .put("landing/a.csv", Bytes::from_static(b"v1"))
        .await?;
    store
        .put("landing/a.csv", Bytes::from_static(b"v2 changed"))
        .await?;
    let err = store
        .copy_conditional("landing/a.csv", "raw/a.csv", first.etag.as_deref(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(store.head("raw/a.csv").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn a_different_object_at_the_destination_is_never_overwritten() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", false).await;
    let store = S3Store::new(s3, "lake");
    store
        .put("raw/a.csv", Bytes::from_static(b"old bytes"))
        .await?;
    store
        .put("landing/a.csv", Bytes::from_static(b"new"))
        .await?;
    let err = store
        .move_object("landing/a.csv", "raw/a.csv")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DestinationExists(_)), "{err}");
    assert_eq!(read_all(&store, "raw/a.csv").await, b"old bytes");
    assert_eq!(read_all(&store, "landing/a.csv").await, b"new");
    Ok(())
}

#[tokio::test]
async fn large_objects_move_by_multipart_copy_and_a_retry_recognises_the_copy() -> Result<()> {
    let moto = Moto::start().await?;
    let s3 = bucket(&moto, "lake", true).await;
    // Thresholds lowered from 5 GiB to 5 MiB so the test moves 11 MiB, not 5 GiB.
    let mib = 1024 * 1024;
    let store = S3Store::new(s3.clone(), "lake").with_multipart_copy(5 * mib, 5 * mib);
    let data: Vec<u8> = (0..11 * mib).map(|i| (i % 251) as u8).collect();
    let (from, to) = ("landing/big.csv", "raw/big.csv");
    let src = store.put(from, Bytes::from(data.clone())).await?;

    store
        .copy_conditional(from, to, src.etag.as_deref(), None)
        .await?;
    let copy = store.head(to).await?.unwrap();
    assert_eq!(copy.size, data.len() as u64);
    assert_ne!(copy.etag, src.etag, "a multipart copy has its own ETag");
    let tags = store.tags(to).await?;
    assert!(
        tags.contains(&(SOURCE_ETAG_TAG.into(), src.etag.clone().unwrap())),
        "{tags:?}"
    );
    // What a retried promotion asks once the landing key is gone: is this our copy?
    assert!(
        store
            .holds_copy_of(to, src.etag.as_deref().unwrap())
            .await?
    );
    assert!(!store.holds_copy_of(to, "another-etag").await?);
    assert!(
        !store
            .holds_copy_of("raw/absent.csv", src.etag.as_deref().unwrap())
            .await?
    );

    // Crash before the delete, then the retry: recognised by the source-ETag tag.
    store.move_object(from, to).await?;
    assert!(store.head(from).await?.is_none());
    assert_eq!(
        versions(&s3, "lake", to).await,
        1,
        "the retry must not copy 11 MiB again"
    );
    assert_eq!(read_all(&store, to).await, data);
    Ok(())
}
