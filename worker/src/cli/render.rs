//! Text renderings shared by several commands.

use lakegate_models::IngestStatus;

/// An ingest workflow's state, as `status` and `review` print it.
pub fn print_status(workflow_id: &str, status: &IngestStatus) {
    println!("workflow:  {workflow_id}");
    println!("phase:     {}", status.phase.as_str());
    if let Some(c) = &status.contract {
        println!("contract:  {}/{}", c.dataset, c.table);
    }
    println!("location:  {}", status.key);
    if let Some(reason) = &status.quarantine_reason {
        println!("quarantine reason: {reason}");
    }
    if let Some(report) = &status.report {
        println!(
            "validation: {:?}, {} rows, {} bytes, sha256 {}",
            report.verdict,
            report.rows,
            report.bytes,
            &report.sha256[..16.min(report.sha256.len())]
        );
        for rule in report.rules.iter().filter(|r| !r.passed) {
            let column = rule
                .column
                .as_deref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            println!(
                "  FAILED {:?} {}{column}: {} ({} failures, first rows {:?})",
                rule.severity, rule.rule, rule.detail, rule.failures, rule.first_rows
            );
        }
    }
    if let Some(review) = &status.review {
        println!(
            "review:    {:?} by {} ({})",
            review.decision, review.reviewer, review.reason
        );
    }
    if status.review_timed_out {
        println!("review:    timed out; the file was rejected");
    }
}

/// Rows as an aligned text table with a row count.
pub fn print_table(columns: &[String], rows: &[Vec<Option<String>>]) {
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
    println!("{}", line(columns.to_vec()));
    println!(
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for row in rows {
        println!("{}", line(row.iter().map(cell).collect()));
    }
    println!("({} rows)", rows.len());
}
