//! Report assembly: file-level checks decided at the end of the stream, details for every rule,
//! and the slots turned into rule outcomes (gzip and decompression first).

use lakegate_models::RuleOutcome;

use super::plan::{CellCheck, FileCheck, State};
use super::slot::Slot;
use crate::contract::FormatKind;
use crate::phi;

impl State<'_> {
    pub(super) fn finish(&mut self, bytes: u64, sha256: &str) -> Vec<RuleOutcome> {
        let rows = self.rows;
        for (check, s) in std::mem::take(&mut self.file_checks) {
            let slot = &mut self.slots[s];
            let (ok, detail) = match check {
                FileCheck::NotEmpty => (rows > 0, format!("{rows} data rows")),
                FileCheck::FileName(re, pattern) => match self.name {
                    Some(n) => (
                        re.is_match(last_segment(n)),
                        format!("file name must match {pattern}"),
                    ),
                    None => (true, "skipped: no file name was given".into()),
                },
                FileCheck::Extension(allowed) => match self.name {
                    Some(n) => {
                        let n = last_segment(n).to_ascii_lowercase();
                        let ok = allowed
                            .iter()
                            .any(|e| n.ends_with(&format!(".{}", e.to_ascii_lowercase())));
                        (
                            ok,
                            format!("extension must be one of [{}]", allowed.join(", ")),
                        )
                    }
                    None => (true, "skipped: no file name was given".into()),
                },
                FileCheck::Size(min, max) => (
                    min.is_none_or(|m| bytes >= m) && max.is_none_or(|m| bytes <= m),
                    format!(
                        "{bytes} bytes stored, bounds [{}, {}]",
                        show(&min),
                        show(&max)
                    ),
                ),
                FileCheck::RowCount(min, max) => (
                    min.is_none_or(|m| rows >= m) && max.is_none_or(|m| rows <= m),
                    format!("{rows} data rows, bounds [{}, {}]", show(&min), show(&max)),
                ),
                FileCheck::Duplicate => {
                    let dup = self.known.iter().any(|k| k.eq_ignore_ascii_case(sha256));
                    (
                        !dup,
                        if dup {
                            "a file with the same SHA-256 was already onboarded"
                        } else {
                            "new content"
                        }
                        .into(),
                    )
                }
            };
            if !ok {
                slot.failures = 1;
            }
            slot.detail = detail;
        }
        for plan in &mut self.cols {
            for (check, s, _) in &plan.checks {
                let slot = &mut self.slots[*s];
                match check {
                    CellCheck::Completeness {
                        min_ratio, present, ..
                    } => {
                        let ratio = if rows == 0 {
                            1.0
                        } else {
                            *present as f64 / rows as f64
                        };
                        slot.failures = rows - present.min(&rows);
                        slot.first_rows.clear();
                        slot.decided = Some(ratio >= *min_ratio);
                        slot.detail = format!(
                            "{:.2}% non-null, at least {:.2}% required",
                            ratio * 100.0,
                            min_ratio * 100.0
                        );
                    }
                    CellCheck::Unique {
                        seen,
                        max,
                        saturated,
                    } => {
                        slot.detail = if *saturated {
                            format!(
                                "duplicates among the first {max} distinct values (tracking limit reached)"
                            )
                        } else {
                            format!("{} distinct values", seen.len())
                        };
                    }
                    CellCheck::Required | CellCheck::NotNull | CellCheck::NotBlank => {
                        slot.detail = format!("{} rows without a value", slot.failures);
                    }
                    _ => {}
                }
            }
            if let Some(s) = plan.phi {
                let found: Vec<String> = phi::ALL
                    .iter()
                    .zip(plan.phi_hits)
                    .filter(|(_, n)| *n > 0)
                    .map(|(d, n)| format!("{} {n}", phi::name(*d)))
                    .collect();
                self.slots[s].detail = if found.is_empty() {
                    "no identifier-like values".into()
                } else {
                    format!("identifier-like values: {}", found.join(", "))
                };
            }
            if plan.absent {
                let slots: Vec<usize> = plan
                    .checks
                    .iter()
                    .map(|(_, s, _)| *s)
                    .chain(plan.phi)
                    .collect();
                for s in slots {
                    let slot = &mut self.slots[s];
                    slot.failures = 1;
                    slot.detail = "column is missing from the file".into();
                }
            }
        }
        if let Some(s) = self.declared_paths {
            let unseen: Vec<&str> = self
                .cols
                .iter()
                .filter(|p| !p.seen)
                .map(|p| p.spec_name.as_str())
                .collect();
            let slot = &mut self.slots[s];
            if rows == 0 || unseen.is_empty() {
                slot.detail = "every declared path is in some line".into();
            } else {
                slot.failures = unseen.len() as u64;
                slot.detail = format!(
                    "declared paths that no line has (a typo?): {}",
                    unseen.join(", ")
                );
            }
        }
        for c in &self.compares {
            let slot = &mut self.slots[c.slot];
            slot.detail = format!("{} {}", slot.failures, slot.detail);
        }
        if let Some((slot, ..)) = self.header
            && !self.header_seen
        {
            let s = &mut self.slots[slot];
            s.failures = 1;
            s.detail = "no header: the file has no records".into();
        }
        for (s, what) in [
            (self.utf8, "rows with bytes that are not UTF-8"),
            (Some(self.nul), "rows with NUL bytes"),
            (
                Some(self.parses),
                match self.table.format.kind {
                    FormatKind::Csv => "records with an unbalanced quote",
                    _ => "lines that are not a JSON object",
                },
            ),
            (
                Some(self.record_length),
                match self.table.format.kind {
                    FormatKind::Csv => "records longer than the record limit",
                    _ => "lines longer than the record limit",
                },
            ),
            (
                self.column_count,
                "rows whose field count differs from the header's",
            ),
            (
                self.fhir,
                "lines without resourceType (of the declared type) and id",
            ),
        ] {
            if let Some(s) = s {
                let slot = &mut self.slots[s];
                slot.detail = format!("{} {what}", slot.failures);
                if slot.id == "record_length" {
                    slot.detail += &format!(
                        " ({} bytes / {} fields)",
                        self.limits.max_record_bytes, self.limits.max_fields
                    );
                }
            }
        }
        let mut out: Vec<RuleOutcome> = Vec::with_capacity(self.slots.len() + 2);
        out.extend(self.gzip.take().map(Slot::into_outcome));
        out.extend(self.limit.take().map(Slot::into_outcome));
        out.extend(self.slots.drain(..).map(Slot::into_outcome));
        out
    }
}

pub(super) fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), ToString::to_string)
}

fn last_segment(key: &str) -> &str {
    key.rsplit(['/', '\\']).next().unwrap_or(key)
}
