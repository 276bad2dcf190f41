//! The durable half of a promotion's progress. Heartbeat details are best effort: one sent while
//! the server restarts is dropped, and a worker killed just after the move takes the rest with
//! it. The retry then finds the landing key gone and, without the ETag validation read, cannot
//! tell its own promotion in raw/ from another file's: the chaos run failed exactly so. Writing
//! the ETag to the lake before the move closes that gap: no move without its record.

use bytes::Bytes;
use lakegate_models::{INDEX_ZONE, short_hash};
use serde::{Deserialize, Serialize};

use crate::index::get_json;
use crate::ports::{ObjectStore, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Intent {
    etag: String,
}

/// One record per landing key and version, named by a hash: landing keys can hold names.
fn intent_key(dataset: &str, landing_key: &str, version: &str) -> String {
    format!(
        "{INDEX_ZONE}{dataset}/promotions/{}.json",
        short_hash(&format!("{landing_key}\n{version}"))
    )
}

/// Records, before the move, the ETag the move is conditioned on.
pub async fn record_intent(
    store: &dyn ObjectStore,
    dataset: &str,
    landing_key: &str,
    version: &str,
    etag: &str,
) -> Result<(), StoreError> {
    let body = serde_json::to_vec(&Intent {
        etag: etag.to_owned(),
    })
    .unwrap_or_default();
    store
        .put(
            &intent_key(dataset, landing_key, version),
            Bytes::from(body),
        )
        .await
        .map(|_| ())
}

/// The ETag an earlier attempt promoted this landing version with, if it got as far as deciding to.
pub async fn recorded_etag(
    store: &dyn ObjectStore,
    dataset: &str,
    landing_key: &str,
    version: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        get_json::<Intent>(store, &intent_key(dataset, landing_key, version))
            .await?
            .map(|i| i.etag),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_named_by_a_hash_never_by_the_landing_key() {
        let key = intent_key("ehr", "landing/ehr/Jane_Doe_patients.csv", "v1");
        assert!(key.starts_with("index/ehr/promotions/"), "{key}");
        assert!(!key.contains("Jane"), "{key}");
        assert_ne!(
            key,
            intent_key("ehr", "landing/ehr/Jane_Doe_patients.csv", "v2")
        );
    }
}
