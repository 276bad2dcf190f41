//! The ObjectStore contract, written against the trait only so the same function can run on
//! every backend (the local folder store and S3-on-moto).

use anyhow::{Result, ensure};
use bytes::Bytes;
use lakegate_activities::ports::{ObjectStore, StoreError};
use tokio::io::AsyncReadExt;

pub async fn read_all(store: &dyn ObjectStore, key: &str) -> Result<Vec<u8>> {
    let mut body = store.get(key).await?;
    let mut buf = Vec::new();
    body.read_to_end(&mut buf).await?;
    Ok(buf)
}

pub async fn object_store_contract(store: &dyn ObjectStore) -> Result<()> {
    let key = "landing/emr/ehr/visits 2026-11-26.csv";
    let body = Bytes::from_static(b"id,visit_date\n1,2026-11-26\n");

    ensure!(
        store.head(key).await?.is_none(),
        "head of a missing object must be None"
    );
    ensure!(
        matches!(store.get(key).await, Err(StoreError::NotFound(_))),
        "get of a missing object must be NotFound"
    );

    let put = store.put(key, body.clone()).await?;
    ensure!(
        put.key == key && put.size == body.len() as u64,
        "put returns the key and size: {put:?}"
    );
    let head = store.head(key).await?.expect("present after put");
    ensure!(
        head.size == body.len() as u64 && head.etag.is_some(),
        "head after put: {head:?}"
    );
    ensure!(
        read_all(store, key).await? == body,
        "get returns the bytes put"
    );

    store
        .put("landing/emr/ehr/a.csv", Bytes::from_static(b"a"))
        .await?;
    store
        .put("landing/emr/other/b.csv", Bytes::from_static(b"b"))
        .await?;
    store
        .put("raw/emr/ehr/c.csv", Bytes::from_static(b"c"))
        .await?;
    let listed: Vec<String> = store
        .list("landing/emr/ehr/")
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    ensure!(
        listed == vec!["landing/emr/ehr/a.csv".to_owned(), key.to_owned()],
        "list is prefix-scoped and ordered: {listed:?}"
    );

    let to = "raw/emr/ehr/visits 2026-11-26.csv";
    let moved = store.move_object(key, to).await?;
    ensure!(
        moved.key == to && moved.size == body.len() as u64,
        "move returns the destination: {moved:?}"
    );
    ensure!(
        store.head(key).await?.is_none(),
        "the source is gone after a move"
    );
    ensure!(
        read_all(store, to).await? == body,
        "the destination holds the bytes"
    );
    // A retry of a finished move succeeds and changes nothing.
    let again = store.move_object(key, to).await?;
    ensure!(
        again.key == to && again.size == moved.size,
        "a repeated move reports the destination"
    );
    ensure!(
        matches!(
            store
                .move_object("landing/nothing.csv", "raw/nothing.csv")
                .await,
            Err(StoreError::NotFound(_))
        ),
        "moving what exists nowhere is NotFound"
    );

    store.delete(to).await?;
    ensure!(store.head(to).await?.is_none(), "delete removes");
    store.delete(to).await?;
    Ok(())
}
