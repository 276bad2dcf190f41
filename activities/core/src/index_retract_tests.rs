//! Retraction by name, on entries as this version writes them and as the first index layout
//! wrote them (no marker name, checksum entries without their twins), which lakes still hold.

use bytes::Bytes;
use lakegate_validate::CollectedKeys;

use super::*;
use crate::index::mem_store::MemStore;
use crate::index::{history, record};

const TABLE_ROOT: &str = "index/omop/person/";

fn entry(name: &str, sha: char) -> FileEntry {
    FileEntry {
        key: format!("raw/omop/person/ingest_date=d/{name}.csv"),
        sha256: sha.to_string().repeat(64),
        rows: 10,
        key_columns: vec!["person_id".into()],
        ..FileEntry::default()
    }
}

fn run(hashes: &[u64]) -> [CollectedKeys; 1] {
    [CollectedKeys {
        column: "person_id".into(),
        hashes: hashes.to_vec(),
        truncated: false,
    }]
}

async fn recorded(store: &MemStore, e: &FileEntry, hashes: &[u64], now: u64) {
    record(store, "omop", "person", e, &run(hashes), now)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_retraction_finds_its_entries_by_name_without_listing() {
    let store = MemStore::default();
    let (gone, kept) = (entry("gone", 'a'), entry("kept", 'b'));
    recorded(&store, &gone, &[1, 2], 1).await;
    recorded(&store, &kept, &[3], 2).await;
    assert_eq!(store.keys(&format!("{TABLE_ROOT}order/")).len(), 2);
    remove_file(&store, "omop", "person", &gone.key)
        .await
        .unwrap();
    assert_eq!(store.listed(), Vec::<String>::new(), "a listing was made");
    let id = file_id(&kept.key);
    let left = store.keys("index/omop/");
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(
        left.iter().all(|k| k.contains(&id) || k.contains("bbbb")),
        "{left:?}"
    );

    // Twins: the approved copy's retraction hands the checksum back, still without a listing.
    let (first, twin) = (entry("first", 'c'), entry("twin", 'c'));
    recorded(&store, &first, &[4], 3).await;
    recorded(&store, &twin, &[4], 4).await;
    remove_file(&store, "omop", "person", &twin.key)
        .await
        .unwrap();
    assert_eq!(store.listed(), Vec::<String>::new(), "a listing was made");
    let sha = first.sha256.clone();
    let h = history(&store, "omop", "person", &sha, &[], 1)
        .await
        .unwrap();
    assert!(h.duplicate, "the first copy still holds the bytes");
    remove_file(&store, "omop", "person", &first.key)
        .await
        .unwrap();
    let h = history(&store, "omop", "person", &sha, &[], 1)
        .await
        .unwrap();
    assert!(!h.duplicate);
}

#[tokio::test]
async fn an_entry_of_the_first_layout_is_retracted_too() {
    let store = MemStore::default();
    let (old, kept) = (entry("old", 'a'), entry("kept", 'b'));
    recorded(&store, &kept, &[3], 2).await;
    // As the first layout wrote a promotion: the run, a checksum entry naming only the file,
    // the marker, and an entry that does not name its marker.
    let id = file_id(&old.key);
    let objects = [
        (run_key("omop", "person", "person_id", &id), vec![0; 8]),
        (
            checksum_key("omop", &old.sha256),
            format!(r#"{{"key":"{}","table":"person"}}"#, old.key).into_bytes(),
        ),
        (
            format!("{}0000000000001-{id}", order_prefix("omop", "person")),
            Vec::new(),
        ),
        (
            entry_key("omop", "person", &id),
            serde_json::to_vec(&old).unwrap(),
        ),
    ];
    assert!(!String::from_utf8_lossy(&objects[3].1).contains("order"));
    for (key, body) in objects {
        store.put(&key, Bytes::from(body)).await.unwrap();
    }

    remove_file(&store, "omop", "person", &old.key)
        .await
        .unwrap();
    let left = store.keys("index/omop/");
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.iter().all(|k| !k.contains(&id)), "{left:?}");
    assert!(!left.iter().any(|k| k.contains("aaaa")), "{left:?}");
}
