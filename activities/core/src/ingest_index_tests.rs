//! The index steps of the workflows' moves on the FHIR example, on a store that counts GETs:
//! a file validated into quarantine is indexed on approval from its pending entry, without
//! reading it again, and serves the references of later files; a rejection leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use lakegate_models::{ContractMatch, Verdict, keys};
use lakegate_validate::{ContractSet, ValidateOptions, Validated, validate_full};

use super::*;
use crate::index::mem_store::MemStore;
use crate::ports::ObjectStore;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn sample(file: &str) -> String {
    std::fs::read_to_string(examples().join("fhir/sample").join(file)).unwrap()
}

struct Lake {
    store: Arc<MemStore>,
    activities: IngestActivities,
    contracts: ContractSet,
}

impl Lake {
    fn new() -> Self {
        let store = Arc::new(MemStore::default());
        let dir = examples().join("fhir");
        Self {
            activities: IngestActivities::new(store.clone(), dir.clone()),
            contracts: ContractSet::load_dir(&dir).unwrap(),
            store,
        }
    }

    fn dyn_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Lands `body` at `key` and validates it as `validate_and_promote` does (the cross-file
    /// rules decided, the ETag read kept), stashing a failure's pending entry.
    async fn validate(&self, key: &str, body: &str) -> (ContractMatch, Validated) {
        let meta = self
            .store
            .put(key, Bytes::from(body.to_owned()))
            .await
            .unwrap();
        let (contract, table) = self.contracts.resolve(key).unwrap();
        let opts = ValidateOptions {
            name: Some(key.into()),
            index_columns: table.referenced_columns(contract),
            check_references: true,
            ..ValidateOptions::default()
        };
        let mut validated = validate_full(contract, table, body.as_bytes(), &opts).unwrap();
        validated.report.etag = meta.etag;
        let found = ContractMatch {
            dataset: contract.dataset.clone(),
            table: table.name.clone(),
        };
        crate::index::check_file(&self.dyn_store(), &self.contracts, key, &[], &mut validated)
            .await
            .unwrap();
        if validated.report.verdict == Verdict::Fail {
            self.activities
                .stash_pending(key, &found, &validated)
                .await
                .unwrap();
        }
        (found, validated)
    }

    /// Moves `from` to `to` as the workflow's `move_object` does, up to the index steps that
    /// read no file; what is left to do.
    async fn move_file(&self, from: &str, to: &str, if_etag: Option<String>) -> IndexStep {
        let meta = self.store.move_object(from, to).await.unwrap();
        let request = MoveRequest {
            from: from.into(),
            to: to.into(),
            dataset: Some("fhir".into()),
            if_etag,
        };
        let moved = MoveResult::Moved(meta);
        self.activities
            .index_move_cheaply(&request, &moved)
            .await
            .unwrap()
    }
}

/// The sample's patients with new ids and one unknown gender: quarantined, and the only file
/// that holds the patients `new-...`.
fn failing_patients() -> String {
    sample("Patient.ndjson")
        .replace("\"id\":\"pat-", "\"id\":\"new-")
        .replacen("\"gender\":\"", "\"gender\":\"x", 1)
}

const LANDING: &str = "landing/d1/fhir/Patient.ndjson";
const QUARANTINE: &str = "quarantine/d1/fhir/Patient.ndjson";

#[tokio::test]
async fn an_approved_file_is_indexed_from_its_pending_entry_without_reading_it_again() {
    let lake = Lake::new();
    let (contract, validated) = lake.validate(LANDING, &failing_patients()).await;
    assert_eq!(validated.report.verdict, Verdict::Fail);
    let etag = validated.report.etag.clone();
    assert_eq!(
        lake.move_file(LANDING, QUARANTINE, etag).await,
        IndexStep::Done
    );
    let raw = keys::raw_destination(&contract, "2025-06-02", LANDING);
    assert_eq!(
        lake.move_file(QUARANTINE, &raw, None).await,
        IndexStep::Done
    );
    assert_eq!(
        lake.store.gets_of(QUARANTINE),
        0,
        "the quarantined file was read"
    );
    assert_eq!(lake.store.gets_of(&raw), 0, "the approved file was read");
    assert!(lake.store.keys("index/fhir/_pending/").is_empty());

    // Observations of the approved patients find them; of others, not.
    let observations = sample("Observation.ndjson");
    let of_new = observations.replace("Patient/pat-", "Patient/new-");
    let (_, later) = lake
        .validate("landing/d2/fhir/Observation.ndjson", &of_new)
        .await;
    assert_eq!(
        later.report.verdict,
        Verdict::Pass,
        "{:?}",
        later.report.rules
    );
    let (_, orphans) = lake
        .validate("landing/d3/fhir/Observation.ndjson", &observations)
        .await;
    let failed: Vec<&str> = orphans
        .report
        .rules
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.rule.as_str())
        .collect();
    assert_eq!(failed, ["references"]);
}

#[tokio::test]
async fn a_retried_approval_removes_the_pending_entry_a_crash_left() {
    let lake = Lake::new();
    let (contract, validated) = lake.validate(LANDING, &failing_patients()).await;
    lake.move_file(LANDING, QUARANTINE, validated.report.etag.clone())
        .await;
    let entry_at = format!(
        "index/fhir/_pending/{}.json",
        pending::quarantined_id(QUARANTINE)
    );
    let entry = lake.store.get_bytes(&entry_at);
    let raw = keys::raw_destination(&contract, "2025-06-02", LANDING);
    let request = MoveRequest {
        from: QUARANTINE.into(),
        to: raw.clone(),
        dataset: Some("fhir".into()),
        if_etag: None,
    };
    let meta = lake.store.move_object(QUARANTINE, &raw).await.unwrap();
    let moved = MoveResult::Moved(meta);
    assert_eq!(
        lake.activities
            .index_move_cheaply(&request, &moved)
            .await
            .unwrap(),
        IndexStep::Done
    );
    // The first attempt stopped after recording the file, before removing its pending entry.
    lake.store.put(&entry_at, entry).await.unwrap();
    assert_eq!(
        lake.activities
            .index_move_cheaply(&request, &moved)
            .await
            .unwrap(),
        IndexStep::Done
    );
    assert!(lake.store.keys("index/fhir/_pending/").is_empty());
    assert!(
        index::is_recorded(lake.store.as_ref(), "fhir", "Patient", &raw)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_rejected_or_replaced_file_leaves_no_pending_entry() {
    let lake = Lake::new();
    let (_, validated) = lake.validate(LANDING, &failing_patients()).await;
    assert!(!lake.store.keys("index/fhir/_pending/").is_empty());
    lake.move_file(LANDING, QUARANTINE, validated.report.etag.clone())
        .await;
    let rejected = "rejected/d1/fhir/Patient.ndjson";
    assert_eq!(
        lake.move_file(QUARANTINE, rejected, None).await,
        IndexStep::Done
    );
    assert!(lake.store.keys("index/fhir/").is_empty());

    // Replaced after validation: the conditional quarantine move answers SourceChanged.
    let (_, validated) = lake.validate(LANDING, &failing_patients()).await;
    let request = MoveRequest {
        from: LANDING.into(),
        to: QUARANTINE.into(),
        dataset: Some("fhir".into()),
        if_etag: validated.report.etag.clone(),
    };
    lake.activities
        .index_move_cheaply(&request, &MoveResult::SourceChanged)
        .await
        .unwrap();
    assert!(lake.store.keys("index/fhir/").is_empty());
}

#[tokio::test]
async fn a_file_quarantined_without_a_pending_entry_is_read_again() {
    let lake = Lake::new();
    // As a run quarantined before pending entries existed left it.
    lake.store
        .put(QUARANTINE, Bytes::from(failing_patients()))
        .await
        .unwrap();
    let contract = ContractMatch {
        dataset: "fhir".into(),
        table: "Patient".into(),
    };
    let raw = keys::raw_destination(&contract, "2025-06-02", LANDING);
    assert_eq!(
        lake.move_file(QUARANTINE, &raw, None).await,
        IndexStep::Reread { contract }
    );
}
