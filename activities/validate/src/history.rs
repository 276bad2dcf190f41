//! The rules that compare a file with its table's history: `duplicate_file` (the same bytes
//! already promoted under any name or day), `row_count_anomaly` (a robust band around recent
//! row counts) and `schema_drift` (columns gained or lost since the last promoted file). The
//! engine reads one file; the history comes from the lake's index, which the ingest activity
//! reads and hands in here, so these are decided after the stream ([`apply`]).

use lakegate_models::{RuleOutcome, ValidationReport};

use crate::contract::{RuleSpec, TableContract};
use crate::engine::set_outcome;

/// What the lake's index says about a table before a file joins it.
#[derive(Debug, Clone, Default)]
pub struct TableHistory {
    /// Row counts of the table's promoted files, oldest first.
    pub recent_rows: Vec<u64>,
    /// The header of the table's last promoted file (CSV).
    pub last_header: Option<Vec<String>>,
    /// A promoted file of the dataset has the same SHA-256.
    pub duplicate: bool,
}

/// Decides the table's history rules for `report` (whose file had CSV header `header`) and
/// the verdict again.
pub fn apply(
    table: &TableContract,
    report: &mut ValidationReport,
    header: Option<&[String]>,
    history: &TableHistory,
) {
    for rule in &table.rules {
        let outcome = |passed: bool, detail: String| RuleOutcome {
            rule: rule.id().into(),
            column: None,
            severity: rule.severity().into(),
            passed,
            failures: u64::from(!passed),
            first_rows: Vec::new(),
            detail,
        };
        match rule {
            RuleSpec::DuplicateFile { .. } if history.duplicate => set_outcome(
                report,
                outcome(
                    false,
                    "a file with the same SHA-256 was already promoted in this dataset".into(),
                ),
            ),
            RuleSpec::RowCountAnomaly {
                last,
                min_history,
                deviations,
                tolerance,
                ..
            } => {
                let take = (*last as usize).min(history.recent_rows.len());
                let recent = &history.recent_rows[history.recent_rows.len() - take..];
                let o = match row_band(recent, *min_history as usize, *deviations, *tolerance) {
                    None => outcome(
                        true,
                        format!(
                            "{} promoted file(s) of history, {min_history} needed: not checked",
                            recent.len()
                        ),
                    ),
                    Some(band) => {
                        let rows = report.rows as f64;
                        let ok = rows >= band.low && rows <= band.high;
                        outcome(
                            ok,
                            format!(
                                "{} data rows, expected [{:.0}, {:.0}] (median {:.0} of the last {} promoted files)",
                                report.rows,
                                band.low.max(0.0),
                                band.high,
                                band.median,
                                recent.len()
                            ),
                        )
                    }
                };
                set_outcome(report, o);
            }
            RuleSpec::SchemaDrift { .. } => {
                let o = match (header, history.last_header.as_deref()) {
                    (Some(now), Some(before)) => drift(table, now, before, &outcome),
                    _ => outcome(true, "no promoted file to compare with".into()),
                };
                set_outcome(report, o);
            }
            _ => {}
        }
    }
}

fn drift(
    table: &TableContract,
    now: &[String],
    before: &[String],
    outcome: &dyn Fn(bool, String) -> RuleOutcome,
) -> RuleOutcome {
    let gained: Vec<&String> = now.iter().filter(|c| !before.contains(c)).collect();
    let lost: Vec<&String> = before.iter().filter(|c| !now.contains(c)).collect();
    if gained.is_empty() && lost.is_empty() {
        return outcome(
            true,
            format!("same {} columns as the last promoted file", now.len()),
        );
    }
    // Only declared column names: an undeclared "name" may be a data row of a header-less file.
    let named = |cols: &[&String]| -> String {
        let declared: Vec<&str> = cols
            .iter()
            .filter(|c| table.column(c).is_some())
            .map(|c| c.as_str())
            .collect();
        let undeclared = cols.len() - declared.len();
        let mut s = declared.join(", ");
        if undeclared > 0 {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&format!("{undeclared} undeclared"));
        }
        s
    };
    outcome(
        false,
        format!(
            "since the last promoted file: {} column(s) gained [{}], {} lost [{}]",
            gained.len(),
            named(&gained),
            lost.len(),
            named(&lost)
        ),
    )
}

/// The accepted row counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

/// median ± max(`deviations` x 1.4826 x MAD, `tolerance` x median); None with too little history.
pub fn row_band(
    recent: &[u64],
    min_history: usize,
    deviations: f64,
    tolerance: f64,
) -> Option<Band> {
    if recent.len() < min_history.max(1) {
        return None;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mut xs: Vec<f64> = recent.iter().map(|&r| r as f64).collect();
    let m = median(&mut xs);
    let mut dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&mut dev);
    // 1.4826 x MAD estimates the standard deviation of normally distributed counts.
    let half = (deviations * 1.4826 * mad).max(tolerance * m);
    Some(Band {
        median: m,
        low: m - half,
        high: m + half,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn band_is_robust_to_one_outlier() {
        let b = row_band(&[1000, 1010, 990, 1005, 20], 3, 5.0, 0.2).unwrap();
        assert_eq!(b.median, 1000.0);
        assert!(b.low > 700.0 && b.high < 1300.0, "{b:?}");
        assert!(row_band(&[1000, 1000], 3, 5.0, 0.2).is_none());
        let flat = row_band(&[500, 500, 500], 3, 5.0, 0.2).unwrap();
        assert_eq!(
            (flat.low, flat.high),
            (400.0, 600.0),
            "tolerance keeps a flat history usable"
        );
    }
}
