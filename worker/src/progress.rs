//! The backfill's progress bar, drawn from the workflow's progress query alone so that any
//! client (this CLI, a script, another SDK) sees the same figures.

use std::time::Duration;

use lakegate_models::BackfillProgress;

const WIDTH: usize = 30;

/// One line: a bar of settled files against the total, then the counts, e.g.
/// `[#########.....................]  612/2000 settled, 20 in flight, 4 already known, 41 s`.
pub fn backfill_line(progress: &BackfillProgress, elapsed: Duration) -> String {
    // Files that landed after the backfill began are onboarded too, so the total can grow.
    let total = progress.total.unwrap_or(0).max(progress.files);
    let filled = if total == 0 {
        if progress.done { WIDTH } else { 0 }
    } else {
        (progress.settled.min(total) as usize * WIDTH) / total as usize
    };
    let width = total.to_string().len();
    // Failed ingests are settled but not onboarded: said on the line whenever there are any.
    let failed = if progress.failed > 0 {
        format!(" ({} FAILED)", progress.failed)
    } else {
        String::new()
    };
    format!(
        "[{}{}] {:>width$}/{total} settled{failed}, {} in flight, {} already known, {} s",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled),
        progress.settled,
        progress.in_flight(),
        progress.already_known,
        elapsed.as_secs(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(total: u64, files: u64, settled: u64) -> BackfillProgress {
        BackfillProgress {
            total: Some(total),
            files,
            settled,
            ..Default::default()
        }
    }

    #[test]
    fn the_bar_fills_with_settled_files() {
        let line = backfill_line(&progress(2000, 620, 600), Duration::from_secs(41));
        assert_eq!(
            line,
            "[#########.....................]  600/2000 settled, 20 in flight, 0 already known, 41 s"
        );
        let full = backfill_line(&progress(2000, 2000, 2000), Duration::ZERO);
        assert!(
            full.starts_with(&format!("[{}]", "#".repeat(WIDTH))),
            "{full}"
        );
    }

    #[test]
    fn failed_ingests_are_named_on_the_line() {
        let mut p = progress(10, 10, 10);
        p.failed = 2;
        let line = backfill_line(&p, Duration::ZERO);
        assert!(line.contains("10/10 settled (2 FAILED)"), "{line}");
    }

    #[test]
    fn files_landing_during_the_backfill_grow_the_total() {
        let line = backfill_line(&progress(10, 12, 12), Duration::ZERO);
        assert!(line.contains("12/12 settled"), "{line}");
    }

    #[test]
    fn an_empty_prefix_is_a_full_bar_once_done() {
        let done = BackfillProgress {
            total: Some(0),
            done: true,
            ..Default::default()
        };
        assert!(
            backfill_line(&done, Duration::ZERO).starts_with(&format!("[{}]", "#".repeat(WIDTH)))
        );
    }
}
