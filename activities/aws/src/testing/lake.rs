//! Reading the lake back in a test: what keys a zone holds, and which partition a promoted key
//! landed in.

/// Every key under `prefix` in `bucket` (one page: a test's lake is small).
pub async fn keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<String> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2");
    out.contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// The `ingest_date=` partition value of a promoted key.
pub fn ingest_date(key: &str) -> String {
    key.split('/')
        .find_map(|p| p.strip_prefix("ingest_date="))
        .unwrap_or_else(|| panic!("{key} has no ingest_date= partition"))
        .to_owned()
}
