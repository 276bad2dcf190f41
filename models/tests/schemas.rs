//! The JSON Schemas under docs/schemas/ are what `lakegate_models::schema` generates from the
//! payload types, file for file: a changed type without regenerated schemas fails here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use lakegate_models::schema::client_schemas;

const REGENERATE: &str = "LAKEGATE_UPDATE_SCHEMA=1 cargo test -p lakegate-models --test schemas";

fn dir() -> PathBuf {
    let models = Path::new(env!("CARGO_MANIFEST_DIR"));
    models
        .parent()
        .expect("models/ has a parent")
        .join("docs/schemas")
}

/// Regenerate with `LAKEGATE_UPDATE_SCHEMA=1 cargo test -p lakegate-models --test schemas`.
#[test]
fn committed_client_schemas_are_current() {
    let dir = dir();
    let schemas = client_schemas();
    if std::env::var_os("LAKEGATE_UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                std::fs::remove_file(path).unwrap();
            }
        }
        for schema in &schemas {
            std::fs::write(dir.join(schema.file_name()), &schema.text).unwrap();
        }
    }
    for schema in &schemas {
        let path = dir.join(schema.file_name());
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema.text,
            "{} is stale or missing: regenerate with {REGENERATE}",
            path.display()
        );
    }
    let wanted: BTreeSet<String> = schemas.iter().map(|s| s.file_name()).collect();
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let extra: Vec<_> = committed.difference(&wanted).collect();
    assert!(
        extra.is_empty(),
        "{extra:?} in {} no longer generated: regenerate with {REGENERATE}",
        dir.display()
    );
}

#[test]
fn every_workflow_has_its_input_and_result() {
    use lakegate_models::names::*;
    use lakegate_models::schema::Role;
    let schemas = client_schemas();
    for workflow in [
        INGEST_FILE_WORKFLOW,
        CRAWL_WORKFLOW,
        TRANSFORM_WORKFLOW,
        LANDING_SWEEP_WORKFLOW,
        ONBOARD_DATASET_WORKFLOW,
    ] {
        for role in [Role::Input, Role::Result] {
            assert!(
                schemas
                    .iter()
                    .any(|s| s.workflow == workflow && s.role == role),
                "{workflow} has no {role:?} schema"
            );
        }
    }
    let names: BTreeSet<String> = schemas.iter().map(|s| s.file_name()).collect();
    assert_eq!(names.len(), schemas.len(), "two schemas share a file name");
}

/// The schemas say what the workflows accept: a review with a wrong decision is outside the
/// signal's schema, and the input's defaulted fields are optional.
#[test]
fn schemas_carry_the_wire_shapes() {
    let schemas = client_schemas();
    let find = |file: &str| -> serde_json::Value {
        let schema = schemas.iter().find(|s| s.file_name() == file).unwrap();
        serde_json::from_str(&schema.text).unwrap()
    };
    let review = find("IngestFileWorkflow.signal.review.json");
    assert_eq!(
        review["required"],
        serde_json::json!(["decision", "reviewer"])
    );
    let text = review.to_string();
    assert!(
        text.contains("\"approve\"") && text.contains("\"reject\""),
        "{text}"
    );
    let input = find("IngestFileWorkflow.input.json");
    assert_eq!(
        input["required"],
        serde_json::json!(["bucket", "key", "version"])
    );
    assert_eq!(
        input["properties"]["review_timeout_secs"]["default"],
        604_800
    );
    let status = find("IngestFileWorkflow.query.get_status.json").to_string();
    for phase in ["awaiting_review", "promoted", "rejected", "quarantine"] {
        assert!(status.contains(phase), "status schema lacks {phase}");
    }
}
