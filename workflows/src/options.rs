//! Activity timeouts and retries, in one place so they are tuned together.

use std::time::Duration;

use temporalio_common::{ActivityCloseTimeouts, RetryPolicy};
use temporalio_sdk::ActivityOptions;

/// Throttles and restarts are retried with backoff for up to a day; the maximum interval keeps a
/// fixed contract or a recovered store from waiting long.
fn retry() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build()
}

fn bounded(attempt: Duration, heartbeat: Option<Duration>) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(24 * 3600),
        start_to_close: attempt,
    })
    .maybe_heartbeat_timeout(heartbeat)
    .retry_policy(retry())
    .build()
}

/// Metadata calls and moves: seconds each.
pub fn short() -> ActivityOptions {
    bounded(Duration::from_secs(60), None)
}

/// A sweep of the whole landing zone: it lists every file and starts a workflow for each one
/// that has none, which for a large backlog takes minutes.
pub fn sweep() -> ActivityOptions {
    bounded(Duration::from_secs(30 * 60), None)
}

/// A backfill's listing, starts and status checks: one bounded page of work each, so a worker
/// that dies in the middle of one costs a few minutes, not the half hour a sweep may take.
pub fn bulk() -> ActivityOptions {
    bounded(Duration::from_secs(5 * 60), None)
}

/// The ingest validation activity, which heartbeats: a worker killed mid-file (the chaos run
/// found this) costs a retry after the heartbeat timeout instead of the whole 30 minutes.
pub fn validate_file() -> ActivityOptions {
    bounded(Duration::from_secs(30 * 60), Some(HEARTBEAT_TIMEOUT))
}

/// How long a heartbeating activity may go silent before Temporal retries it on another worker.
/// The activity beats every [`lakegate_activities::ingest::HEARTBEAT_EVERY`].
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// An alert webhook post: a receiver that is down is retried for an hour, then the alert is
/// given up on (the workflow counts it; a run never waits on its alerts).
pub fn alert() -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: Duration::from_secs(3600),
        // Each webhook gets five tries within an attempt (up to ~65 s when none answers).
        start_to_close: Duration::from_secs(120),
    })
    .retry_policy(
        RetryPolicy::builder()
            .initial_interval(Duration::from_secs(1))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(5 * 60))
            .build(),
    )
    .build()
}
