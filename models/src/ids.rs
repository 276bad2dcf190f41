use sha2::{Digest, Sha256};

/// The workflow id of the one `IngestFileWorkflow` a file version may have.
///
/// Starting twice with the same id is how a repeated S3 event (or a second `lakegate ingest` of the
/// same bytes) is recognised. The key is hashed rather than embedded: S3 keys reach 1,024 bytes,
/// past Temporal's default id limit, and keys can contain patient names, which must not show up in
/// the Temporal UI's workflow list.
pub fn ingest_workflow_id(bucket: &str, key: &str, version: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [bucket, key, version] {
        // Length-prefix each part so ("a/b", "c") and ("a", "b/c") cannot collide.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    format!("ingest-{}", &hex::encode(hasher.finalize())[..32])
}

/// A short, stable, non-reversible tag for a value that must not appear in clear (an object key
/// in a log line, say).
pub fn short_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_bounded_and_hides_the_key() {
        let key = format!("landing/emr/ehr/{}.csv", "JANE_DOE_".repeat(120));
        let id = ingest_workflow_id("lake", &key, "v1");
        assert_eq!(id, ingest_workflow_id("lake", &key, "v1"));
        assert!(id.len() < 64, "{id}");
        assert!(!id.contains("JANE"));
    }

    #[test]
    fn every_part_changes_the_id() {
        let base = ingest_workflow_id("lake", "landing/a.csv", "v1");
        assert_ne!(base, ingest_workflow_id("lake2", "landing/a.csv", "v1"));
        assert_ne!(base, ingest_workflow_id("lake", "landing/b.csv", "v1"));
        assert_ne!(base, ingest_workflow_id("lake", "landing/a.csv", "v2"));
        assert_ne!(
            ingest_workflow_id("a/b", "c", "v"),
            ingest_workflow_id("a", "b/c", "v")
        );
    }
}
