//! The shared ObjectStore contract on the local folder store (the same function runs against
//! S3-on-moto in lakegate-aws's tests).

use lakegate_activities::port_suites::object_store_contract;
use lakegate_local::LocalObjectStore;

#[tokio::test]
async fn local_store_meets_the_object_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    object_store_contract(&LocalObjectStore::new("lake", dir.path())).await;
}
