//! Text renderings shared by several commands.

use lakegate_models::IngestStatus;

use super::outln;

/// An ingest workflow's state, as `status` and `review` print it.
pub fn print_status(workflow_id: &str, status: &IngestStatus) -> std::io::Result<()> {
    outln!("workflow:  {workflow_id}")?;
    outln!("phase:     {}", status.phase.as_str())?;
    if let Some(c) = &status.contract {
        outln!("contract:  {}/{}", c.dataset, c.table)?;
    }
    outln!("location:  {}", status.key)?;
    if let Some(reason) = &status.quarantine_reason {
        outln!("quarantine reason: {reason}")?;
    }
    if let Some(report) = &status.report {
        outln!(
            "validation: {:?}, {} rows, {} bytes, sha256 {}",
            report.verdict,
            report.rows,
            report.bytes,
            &report.sha256[..16.min(report.sha256.len())]
        )?;
        for rule in report.rules.iter().filter(|r| !r.passed) {
            let column = rule
                .column
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            outln!(
                "  FAILED {:?} {}{column}: {} ({} failures, first rows {:?})",
                rule.severity,
                rule.rule,
                rule.detail,
                rule.failures,
                rule.first_rows
            )?;
        }
    }
    if let Some(review) = &status.review {
        outln!(
            "review:    {:?} by {} ({})",
            review.decision,
            review.reviewer,
            review.reason
        )?;
    }
    if status.review_timed_out {
        outln!("review:    timed out; the file was rejected")?;
    }
    Ok(())
}

/// Rows as an aligned text table with a row count.
pub fn print_table(columns: &[String], rows: &[Vec<Option<String>>]) -> std::io::Result<()> {
    let cell = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, v) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell(v).chars().count());
        }
    }
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    outln!("{}", line(columns.to_vec()))?;
    outln!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for row in rows {
        outln!("{}", line(row.iter().map(cell).collect()))?;
    }
    outln!("({} rows)", rows.len())?;
    Ok(())
}
