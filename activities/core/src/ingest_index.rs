//! How the workflows' own moves keep the lake index in step (see the `index` module): a file
//! that reaches raw/ by a move (an approval from quarantine, or an old run's in-steps promotion)
//! is recorded, a file that leaves raw/ (a retract) is taken out, and the pending entry of a
//! quarantined file (`index::pending`) follows it from landing/ to quarantine/ and on to raw/
//! or rejected/. `validate_and_promote` records its own promotions.

use lakegate_models::{ContractMatch, Zone};
use lakegate_validate::Validated;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::{IngestActivities, MoveRequest, MoveResult, PromoteProgress, now_ms, port_failure};
use crate::index::{self, pending};

/// How long `move_object` may spend reading an approved file for the index when it has no
/// pending entry (a file quarantined before they existed): the move activity has a one-minute
/// attempt (`options::short`), and a move that never finishes would hold the file's run in a
/// retry loop with the file already in raw/.
pub const APPROVAL_INDEX_BUDGET: std::time::Duration = std::time::Duration::from_secs(40);

/// `raw/<dataset>/<table>/...` -> (dataset, table).
fn raw_table(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.strip_prefix(Zone::Raw.prefix())?.split('/');
    Some((parts.next()?, parts.next()?))
}

/// What is left to do for the index after a move's cheap steps.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum IndexStep {
    Done,
    /// The file reached raw/ with no pending entry: read it there to record it.
    Reread {
        contract: ContractMatch,
    },
}

impl IngestActivities {
    /// Keeps what the index needs of a file that failed validation at `landing_key`, so that an
    /// approval need not read it again. Not for a file the validator refused unread (its
    /// checksum and keys were never taken) or read without an ETag (its quarantine move is not
    /// conditional, so nothing ties the entry to the bytes that move).
    pub(super) async fn stash_pending(
        &self,
        landing_key: &str,
        contract: &ContractMatch,
        validated: &Validated,
    ) -> Result<(), ActivityError> {
        let Some(etag) = &validated.report.etag else {
            return Ok(());
        };
        if validated.report.sha256.is_empty() {
            return Ok(());
        }
        pending::stash(
            self.store.as_ref(),
            &contract.dataset,
            &contract.table,
            landing_key,
            etag,
            validated,
        )
        .await
        .map_err(port_failure)
    }

    pub(super) async fn index_move(
        &self,
        ctx: &ActivityContext,
        request: &MoveRequest,
        moved: &MoveResult,
    ) -> Result<(), ActivityError> {
        match self.index_move_cheaply(request, moved).await? {
            IndexStep::Done => Ok(()),
            IndexStep::Reread { contract } => self.index_by_reading(ctx, request, contract).await,
        }
    }

    /// Every index step of a move that reads no file: pending entries renamed, moved into the
    /// index or discarded, a retracted file taken out.
    pub(super) async fn index_move_cheaply(
        &self,
        request: &MoveRequest,
        moved: &MoveResult,
    ) -> Result<IndexStep, ActivityError> {
        let store = self.store.as_ref();
        let (from, to) = (Zone::of_key(&request.from), Zone::of_key(&request.to));
        let dataset = request.dataset.as_deref();
        match moved {
            MoveResult::Moved(_) => {}
            // The landing object was replaced after validation: its stash describes other bytes.
            MoveResult::SourceChanged => {
                if from == Some(Zone::Landing)
                    && let (Some(dataset), Some(etag)) = (dataset, &request.if_etag)
                {
                    let id = pending::validated_id(&request.from, etag);
                    pending::discard(store, dataset, &id)
                        .await
                        .map_err(port_failure)?;
                }
                return Ok(IndexStep::Done);
            }
            MoveResult::DestinationTaken => return Ok(IndexStep::Done),
        }
        match (from, to) {
            (Some(Zone::Raw), Some(Zone::Raw)) => return Ok(IndexStep::Done),
            (Some(Zone::Raw), _) => {
                if let Some((dataset, table)) = raw_table(&request.from) {
                    index::remove_file(store, dataset, table, &request.from)
                        .await
                        .map_err(port_failure)?;
                }
                return Ok(IndexStep::Done);
            }
            (Some(Zone::Landing), Some(Zone::Quarantine)) => {
                if let (Some(dataset), Some(etag)) = (dataset, &request.if_etag) {
                    pending::quarantined(store, dataset, &request.from, etag, &request.to)
                        .await
                        .map_err(port_failure)?;
                }
                return Ok(IndexStep::Done);
            }
            (Some(Zone::Quarantine), Some(Zone::Rejected)) => {
                if let Some(dataset) = dataset {
                    let id = pending::quarantined_id(&request.from);
                    pending::discard(store, dataset, &id)
                        .await
                        .map_err(port_failure)?;
                }
                return Ok(IndexStep::Done);
            }
            (_, Some(Zone::Raw)) => {}
            _ => return Ok(IndexStep::Done),
        }
        let Some((dataset, table)) = raw_table(&request.to) else {
            return Ok(IndexStep::Done);
        };
        let contracts = self.contracts()?;
        let Some((contract, table_contract)) = contracts.table(dataset, table) else {
            // No contract, no key columns or rules to serve: nothing to index.
            return Ok(IndexStep::Done);
        };
        // A retry whose first attempt recorded the file. An approval's first attempt may have
        // stopped between recording the file and removing its pending entry: remove it now, or
        // nothing ever would.
        if index::is_recorded(store, dataset, table, &request.to)
            .await
            .map_err(port_failure)?
        {
            if from == Some(Zone::Quarantine) {
                let id = pending::quarantined_id(&request.from);
                pending::discard(store, dataset, &id)
                    .await
                    .map_err(port_failure)?;
            }
            return Ok(IndexStep::Done);
        }
        if from == Some(Zone::Quarantine) {
            let columns = table_contract.referenced_columns(contract);
            let from_pending = pending::approve(
                store,
                dataset,
                table,
                &request.from,
                &request.to,
                &columns,
                now_ms(),
            )
            .await
            .map_err(port_failure)?;
            if from_pending {
                return Ok(IndexStep::Done);
            }
        }
        Ok(IndexStep::Reread {
            contract: ContractMatch {
                dataset: dataset.to_owned(),
                table: table.to_owned(),
            },
        })
    }

    /// Reads the file where it now is, in raw/, and records it, within
    /// [`APPROVAL_INDEX_BUDGET`]: past it, the file is promoted but not indexed (said in the log).
    async fn index_by_reading(
        &self,
        ctx: &ActivityContext,
        request: &MoveRequest,
        contract: ContractMatch,
    ) -> Result<(), ActivityError> {
        let progress = PromoteProgress::default();
        let reading = self.validate(ctx, &request.to, &contract, &progress);
        let Ok(validated) = tokio::time::timeout(APPROVAL_INDEX_BUDGET, reading).await else {
            // Said in the log (the file's hash, never its key): later files' references and
            // history rules will not see this one.
            tracing::warn!(
                dataset = %contract.dataset,
                table = %contract.table,
                file = %lakegate_models::short_hash(&request.to),
                budget_secs = APPROVAL_INDEX_BUDGET.as_secs(),
                "promoted file not indexed: reading it took longer than the move's budget"
            );
            return Ok(());
        };
        let validated = validated?;
        index::record(
            self.store.as_ref(),
            &contract.dataset,
            &contract.table,
            &index::entry_of(&validated, &request.to),
            &validated.keys,
            now_ms(),
        )
        .await
        .map_err(port_failure)
    }
}

#[cfg(test)]
#[path = "ingest_index_tests.rs"]
mod tests;
