//! The landing sweep: the safety net for lost S3 events. Files that have sat in landing/ longer
//! than a grace period get their `IngestFileWorkflow` started; files that already have one are
//! recognised by the workflow id and left alone.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lakegate_models::{IngestInput, SweepInput, SweepResult, Zone, names};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::ports::{ObjectStore, StartOutcome};
use crate::start::start_ingest;

pub struct SweepActivities {
    store: Arc<dyn ObjectStore>,
}

impl SweepActivities {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }
}

#[activities]
impl SweepActivities {
    /// Idempotent, so a retry after a crash half-way simply sweeps again: the starts it already
    /// made come back as duplicates.
    #[activity(name = names::SWEEP_LANDING_ACTIVITY)]
    pub async fn sweep_landing(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: SweepInput,
    ) -> Result<SweepResult, ActivityError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let cutoff = now - i64::try_from(input.older_than_secs).unwrap_or(i64::MAX);
        let objects = self
            .store
            .list(Zone::Landing.prefix())
            .await
            .map_err(ApplicationFailure::new)?;
        let mut result = SweepResult::default();
        let client = ctx.client();
        let task_queue = ctx.info().task_queue.clone();
        for object in objects {
            result.seen += 1;
            if object.last_modified.is_some_and(|t| t > cutoff) {
                result.too_recent += 1;
                continue;
            }
            let version = match self.store.version_of(&object.key).await {
                Ok(version) => version,
                // Moved since the listing: its workflow got to it first.
                Err(crate::ports::StoreError::NotFound(_)) => continue,
                Err(e) => return Err(ApplicationFailure::new(e).into()),
            };
            let start = IngestInput {
                bucket: self.store.bucket().to_owned(),
                key: object.key,
                version,
                review_timeout_secs: input.review_timeout_secs,
            };
            match start_ingest(&client, &task_queue, start).await {
                Ok(StartOutcome::Started { .. }) => result.started += 1,
                Ok(StartOutcome::Duplicate { .. }) => result.already_known += 1,
                Err(e) => return Err(ApplicationFailure::new(e).into()),
            }
        }
        Ok(result)
    }
}
