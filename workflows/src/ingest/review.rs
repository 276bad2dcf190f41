//! The reviews an `IngestFileWorkflow` run receives, and how far its main loop has acted on them.
//! Pure state, no commands: the `review` signal and Update handlers and the main loop share it,
//! and whatever they decide here is replayed from the same history in the same order.
//!
//! Both ways in carry the same JSON ([`lakegate_models::REVIEW_SHAPE`]):
//! - the **Update** (`review`) is checked by its validator before it is accepted: a mistake, a
//!   review before quarantine or after the decision is refused with a message to the caller and
//!   leaves no trace in the history; an accepted one answers once the main loop has acted.
//! - the **signal** (`review`) cannot answer: it is read leniently, and what it cannot be used for
//!   is listed in the status (`rejected_reviews`: unreadable; `ignored_reviews`: read, not used).

use lakegate_models::{IngestPhase, IngestStatus, ReviewOutcome, ReviewSignal};

/// Why a review is refused while another is pending or being acted on.
const BUSY: &str = "a review is already being acted on: query get_status, and review again if \
                    the file still awaits review";

/// The reviews of one run.
#[derive(Debug, Default)]
pub(crate) struct Reviews {
    /// The first review not yet taken by the main loop.
    pending: Option<ReviewSignal>,
    /// The phase `pending` arrived in, when that was before quarantine (a signal only).
    pending_early: Option<IngestPhase>,
    /// Reviews the main loop has taken; one more than `answers` while it acts on the last.
    taken: usize,
    /// What came of each review taken, in order: the Update waits for its own entry.
    answers: Vec<ReviewOutcome>,
}

impl Reviews {
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The phase a held signal arrived in, if it came before quarantine.
    pub fn pending_early(&self) -> Option<IngestPhase> {
        self.pending.as_ref().and(self.pending_early)
    }

    /// Drops a signal that came before quarantine (see `patches::INGEST_REVIEW_IN_QUARANTINE_ONLY`).
    pub fn drop_early(&mut self) {
        if self.pending_early.take().is_some() {
            self.pending = None;
        }
    }

    /// The main loop takes the pending review to act on it.
    pub fn take(&mut self) -> Option<ReviewSignal> {
        let review = self.pending.take()?;
        self.pending_early = None;
        self.taken += 1;
        Some(review)
    }

    /// The main loop has acted on the review it took last.
    pub fn answer(&mut self, outcome: ReviewOutcome) {
        if self.answers.len() < self.taken {
            self.answers.push(outcome);
        }
    }

    /// The answer to review number `ticket` (1-based), once given.
    pub fn answer_to(&self, ticket: usize) -> Option<&ReviewOutcome> {
        ticket.checked_sub(1).and_then(|i| self.answers.get(i))
    }

    fn busy(&self) -> bool {
        self.pending.is_some() || self.answers.len() < self.taken
    }

    /// A readable `review` signal: held for the main loop, or why it is not (then the caller
    /// lists it as ignored). Which signals are held is unchanged from the runs recorded before
    /// the Update (a held signal is acted on, so this decides the command sequence): one while
    /// resolving, validating or awaiting review, when none is held already.
    pub fn offer_signal(&mut self, review: ReviewSignal, phase: IngestPhase) -> Result<(), String> {
        if self.pending.is_some() {
            return Err("another review came first and has not been acted on yet".to_owned());
        }
        match phase {
            IngestPhase::AwaitingReview => self.pending_early = None,
            IngestPhase::Resolving | IngestPhase::Validating => self.pending_early = Some(phase),
            decided => {
                return Err(format!(
                    "too late: the file is already {}",
                    decided.as_str()
                ));
            }
        }
        self.pending = Some(review);
        Ok(())
    }

    /// The Update's validator: whether `raw` may decide now. The message names the field or the
    /// rule, never the payload's text.
    pub fn check_update(
        &self,
        status: &IngestStatus,
        raw: &serde_json::Value,
    ) -> Result<ReviewSignal, String> {
        let review = ReviewSignal::from_update(raw).map_err(|rejected| rejected.reason)?;
        let phase = status.phase;
        match phase {
            IngestPhase::Resolving | IngestPhase::Validating => Err(format!(
                "not in quarantine yet: the file is {}; a review is accepted once it awaits \
                 review (phase awaiting_review)",
                phase.as_str()
            )),
            IngestPhase::AwaitingReview if self.busy() => Err(BUSY.to_owned()),
            IngestPhase::AwaitingReview => Ok(review),
            decided => Err(format!(
                "already decided: the file is {} ({}); a file is reviewed once",
                decided.as_str(),
                how_decided(status)
            )),
        }
    }

    /// The Update's handler: holds its review for the main loop and returns its ticket (see
    /// [`Self::answer_to`]). Validators run before any handler of the same workflow task, so
    /// two reviews arriving together both pass theirs; the second is refused here, with the
    /// validator's words (it is then an accepted Update that failed).
    pub fn hold_update(&mut self, review: ReviewSignal) -> Result<usize, String> {
        if self.busy() {
            return Err(BUSY.to_owned());
        }
        self.pending = Some(review);
        self.pending_early = None;
        Ok(self.taken + 1)
    }
}

fn how_decided(status: &IngestStatus) -> String {
    match &status.review {
        Some(review) => format!(
            "{} by {}",
            match review.decision {
                lakegate_models::Decision::Approve => "approved",
                lakegate_models::Decision::Reject => "rejected",
            },
            review.reviewer
        ),
        None if status.review_timed_out => "its review timed out".to_owned(),
        None => "it passed validation".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakegate_models::Decision;
    use serde_json::json;

    fn status(phase: IngestPhase) -> IngestStatus {
        let mut status = IngestStatus::new("landing/x".into());
        status.phase = phase;
        status
    }

    fn approve() -> serde_json::Value {
        json!({"decision": "approve", "reviewer": "alice"})
    }

    #[test]
    fn the_validator_names_the_field_or_the_rule() {
        let reviews = Reviews::default();
        let waiting = status(IngestPhase::AwaitingReview);
        for (raw, start) in [
            (
                json!({"decision": "approved", "reviewer": "SENT"}),
                "decision:",
            ),
            (
                json!({"decision": "Approve", "reviewer": "SENT"}),
                "decision:",
            ),
            (json!({"decision": 1, "reviewer": "SENT"}), "decision:"),
            (json!({"decision": "approve", "reviewer": ""}), "reviewer:"),
            (json!({"decision": "approve"}), "reviewer:"),
            (
                json!({"decision": "approve", "reviewer": "a", "reason": 7}),
                "reason:",
            ),
            (json!(["SENT"]), "review:"),
        ] {
            let why = reviews.check_update(&waiting, &raw).unwrap_err();
            assert!(why.starts_with(start), "{why}");
            assert!(!why.contains("SENT") && !why.contains("approved"), "{why}");
        }
        let early = reviews
            .check_update(&status(IngestPhase::Validating), &approve())
            .unwrap_err();
        assert!(early.starts_with("not in quarantine yet"), "{early}");
        let mut done = status(IngestPhase::Promoted);
        done.review = Some(ReviewSignal {
            decision: Decision::Approve,
            reviewer: "bob".into(),
            reason: String::new(),
        });
        let late = reviews.check_update(&done, &approve()).unwrap_err();
        assert!(late.starts_with("already decided: the file is promoted (approved by bob)"));
        assert!(reviews.check_update(&waiting, &approve()).is_ok());
    }

    #[test]
    fn an_update_waits_for_its_own_answer_and_blocks_others_meanwhile() {
        let mut reviews = Reviews::default();
        let waiting = status(IngestPhase::AwaitingReview);
        let review = reviews.check_update(&waiting, &approve()).unwrap();
        let ticket = reviews.hold_update(review).unwrap();
        assert_eq!(ticket, 1);
        assert!(reviews.check_update(&waiting, &approve()).is_err());
        reviews.take().unwrap();
        // Taken but not answered yet (e.g. resolving the contract again): still busy.
        assert!(reviews.check_update(&waiting, &approve()).is_err());
        assert_eq!(reviews.answer_to(ticket), None);
        reviews.answer(ReviewOutcome::Waiting { reason: "r".into() });
        assert!(matches!(
            reviews.answer_to(ticket),
            Some(ReviewOutcome::Waiting { .. })
        ));
        // A file still waiting is reviewable again.
        let again = reviews.check_update(&waiting, &approve()).unwrap();
        assert_eq!(reviews.hold_update(again).unwrap(), 2);
    }

    #[test]
    fn signals_are_held_as_before_and_the_rest_say_why_not() {
        let mut reviews = Reviews::default();
        let signal = || ReviewSignal {
            decision: Decision::Approve,
            reviewer: "a".into(),
            reason: String::new(),
        };
        reviews
            .offer_signal(signal(), IngestPhase::Validating)
            .unwrap();
        assert_eq!(reviews.pending_early(), Some(IngestPhase::Validating));
        let second = reviews
            .offer_signal(signal(), IngestPhase::AwaitingReview)
            .unwrap_err();
        assert!(second.starts_with("another review came first"), "{second}");
        reviews.drop_early();
        assert!(!reviews.has_pending());
        let late = reviews
            .offer_signal(signal(), IngestPhase::Promoting)
            .unwrap_err();
        assert_eq!(late, "too late: the file is already promoting");
        reviews
            .offer_signal(signal(), IngestPhase::AwaitingReview)
            .unwrap();
        assert_eq!(reviews.pending_early(), None);
    }
}
