//! JSON Schemas of what other services send to and read from lakegate's workflows: each
//! workflow's input and result, its signals' payloads and its queries' answers. They are generated
//! from the payload types themselves, so a schema cannot say something the workflows do not
//! decode. Committed under docs/schemas/ and described in docs/clients.md; `models/tests/schemas.rs`
//! fails when a committed file differs from what this generates.

use schemars::{JsonSchema, Schema, schema_for};

use crate::names;
use crate::{
    BackfillInput, BackfillProgress, CrawlInput, CrawlStatus, IngestInput, IngestOutcome,
    IngestStatus, NewData, RetractInput, RetractStatus, ReviewOutcome, ReviewSignal, SweepInput,
    SweepResult, TransformInput, TransformResult,
};

/// What a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The workflow's start argument.
    Input,
    /// What the workflow completes with.
    Result,
    /// A signal's payload.
    Signal(&'static str),
    /// A query's answer (lakegate's queries take no argument).
    Query(&'static str),
    /// An update's argument.
    Update(&'static str),
    /// What an update answers once the workflow has acted on it.
    UpdateResult(&'static str),
}

/// One committed schema file.
#[derive(Debug, Clone)]
pub struct ClientSchema {
    pub workflow: &'static str,
    pub role: Role,
    /// Pretty JSON with a trailing newline, as committed.
    pub text: String,
}

impl ClientSchema {
    /// `<WorkflowType>.input.json`, `<WorkflowType>.signal.<name>.json`, ...
    pub fn file_name(&self) -> String {
        let role = match self.role {
            Role::Input => "input".to_owned(),
            Role::Result => "result".to_owned(),
            Role::Signal(name) => format!("signal.{name}"),
            Role::Query(name) => format!("query.{name}"),
            Role::Update(name) => format!("update.{name}"),
            Role::UpdateResult(name) => format!("update.{name}.result"),
        };
        format!("{}.{role}.json", self.workflow)
    }
}

fn entry<T: JsonSchema>(workflow: &'static str, role: Role) -> ClientSchema {
    ClientSchema {
        workflow,
        role,
        text: render(schema_for!(T)),
    }
}

fn render(schema: Schema) -> String {
    serde_json::to_string_pretty(&schema).expect("a schema always serialises") + "\n"
}

/// Every schema a client may need, in a stable order.
pub fn client_schemas() -> Vec<ClientSchema> {
    use names::*;
    vec![
        entry::<IngestInput>(INGEST_FILE_WORKFLOW, Role::Input),
        entry::<IngestOutcome>(INGEST_FILE_WORKFLOW, Role::Result),
        entry::<ReviewSignal>(INGEST_FILE_WORKFLOW, Role::Signal(REVIEW_SIGNAL)),
        entry::<IngestStatus>(INGEST_FILE_WORKFLOW, Role::Query(STATUS_QUERY)),
        entry::<ReviewSignal>(INGEST_FILE_WORKFLOW, Role::Update(REVIEW_UPDATE)),
        entry::<ReviewOutcome>(INGEST_FILE_WORKFLOW, Role::UpdateResult(REVIEW_UPDATE)),
        entry::<CrawlInput>(CRAWL_WORKFLOW, Role::Input),
        // Runs until continue-as-new; a run that ends returns nothing.
        entry::<()>(CRAWL_WORKFLOW, Role::Result),
        entry::<NewData>(CRAWL_WORKFLOW, Role::Signal(NEW_DATA_SIGNAL)),
        entry::<CrawlStatus>(CRAWL_WORKFLOW, Role::Query(STATUS_QUERY)),
        entry::<TransformInput>(TRANSFORM_WORKFLOW, Role::Input),
        entry::<TransformResult>(TRANSFORM_WORKFLOW, Role::Result),
        entry::<TransformResult>(TRANSFORM_WORKFLOW, Role::Query(STATUS_QUERY)),
        entry::<SweepInput>(LANDING_SWEEP_WORKFLOW, Role::Input),
        entry::<SweepResult>(LANDING_SWEEP_WORKFLOW, Role::Result),
        entry::<BackfillInput>(ONBOARD_DATASET_WORKFLOW, Role::Input),
        entry::<BackfillProgress>(ONBOARD_DATASET_WORKFLOW, Role::Result),
        entry::<BackfillProgress>(ONBOARD_DATASET_WORKFLOW, Role::Query(PROGRESS_QUERY)),
        entry::<RetractInput>(RETRACT_WORKFLOW, Role::Input),
        entry::<RetractStatus>(RETRACT_WORKFLOW, Role::Result),
        entry::<RetractStatus>(RETRACT_WORKFLOW, Role::Query(STATUS_QUERY)),
    ]
}
