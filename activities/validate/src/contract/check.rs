//! What `Contract::parse` checks once serde has read the YAML: globs and regexes compile, rules
//! name declared columns of fitting types, bounds are ordered; each problem with its line.

use std::collections::HashSet;

use globset::Glob;
use regex::Regex;

use super::{ColumnSpec, ColumnType, FormatKind, FormatSpec, RuleSpec, TableContract};
use crate::datetime::DateFormat;

type Problem = (usize, String);

/// NDJSON when every key pattern names a JSON-lines file, so a contract written before formats
/// existed (keys like `landing/*/ehr_fhir/Patient*.ndjson`) reads its files as what they are.
fn infer_kind<'a>(patterns: impl Iterator<Item = &'a String>) -> FormatKind {
    let mut any = false;
    for p in patterns {
        any = true;
        let p = p.trim_end_matches('$').to_ascii_lowercase();
        let p = p
            .strip_suffix("\\.gz")
            .or_else(|| p.strip_suffix(".gz"))
            .unwrap_or(&p);
        let json = [".ndjson", ".jsonl", ".json"]
            .iter()
            .any(|e| p.ends_with(e) || p.ends_with(&e.replace('.', "\\.")));
        if !json {
            return FormatKind::Csv;
        }
    }
    if any {
        FormatKind::Ndjson
    } else {
        FormatKind::Csv
    }
}

pub(super) fn check_table(
    table: &mut TableContract,
    text: &str,
    rule_base: usize,
) -> Result<(), Problem> {
    table.format = match &table.format_declared {
        Some(f) => f.clone(),
        None => FormatSpec {
            kind: infer_kind(table.keys.iter().chain(&table.key_regex)),
            ..FormatSpec::default()
        },
    };
    for pattern in &table.keys {
        let glob = Glob::new(pattern)
            .map_err(|e| (line_of(text, pattern, 0), format!("key glob: {e}")))?;
        table.matchers.push(glob.compile_matcher());
    }
    for pattern in &table.key_regex {
        let re = Regex::new(pattern)
            .map_err(|e| (line_of(text, pattern, 0), format!("key regex: {e}")))?;
        table.regexes.push(re);
    }
    let f = &table.format;
    for (what, c) in [("delimiter", f.delimiter), ("quote", f.quote)] {
        if !c.is_ascii() {
            return Err((0, format!("format.{what} must be one ASCII character")));
        }
    }
    if f.delimiter == f.quote {
        return Err((0, "format.delimiter and format.quote must differ".into()));
    }
    if f.kind == FormatKind::Csv && f.resource_type.is_some() {
        return Err((0, "format.resource_type only applies to kind: fhir".into()));
    }
    let mut seen = HashSet::new();
    for col in &table.columns {
        let line = || line_of(text, &col.name, 0);
        if !seen.insert(col.name.as_str()) {
            return Err((line(), format!("column {} is declared twice", col.name)));
        }
        let formats: Vec<&String> = col.format.iter().chain(&col.formats).collect();
        if !formats.is_empty() && !matches!(col.kind, ColumnType::Date | ColumnType::Timestamp) {
            return Err((
                line(),
                format!(
                    "column {}: format only applies to date and timestamp columns",
                    col.name
                ),
            ));
        }
        for fmt in formats {
            DateFormat::parse(fmt)
                .map_err(|e| (line(), format!("column {}: format {fmt}: {e}", col.name)))?;
        }
        if !col.scan.is_empty() && !col.identifier {
            return Err((
                line(),
                format!(
                    "column {}: scan only applies to identifier columns (others are scanned by the phi rule)",
                    col.name
                ),
            ));
        }
    }
    for (i, rule) in table.rules.iter().enumerate() {
        let line = rule_line(text, rule_base + i);
        let err = |reason: String| (line, format!("rule {} ({}): {reason}", i + 1, rule.id()));
        if let Some(column) = rule.column() {
            let Some(col) = table.columns.iter().find(|c| c.name == column) else {
                return Err(err(format!(
                    "column {column} is not declared in this table"
                )));
            };
            check_column_rule(rule, col).map_err(err)?;
            if let RuleSpec::Compare { other, .. } = rule {
                let Some(o) = table.column(other) else {
                    return Err(err(format!("column {other} is not declared in this table")));
                };
                if col
                    .name
                    .split('.')
                    .chain(other.split('.'))
                    .any(|s| s == "*")
                {
                    return Err(err("compare needs one value per row: no `*` paths".into()));
                }
                let numeric =
                    |k: ColumnType| matches!(k, ColumnType::Integer | ColumnType::Decimal);
                let comparable = (numeric(col.kind) && numeric(o.kind))
                    || (col.kind.is_temporal() && o.kind.is_temporal());
                if !comparable {
                    return Err(err(format!(
                        "compare needs two numeric or two date/timestamp columns, {} is {:?} and {other} is {:?}",
                        col.name, col.kind, o.kind
                    )));
                }
            }
        }
        if let Some(when) = rule.when() {
            if table.column(&when.column).is_none() {
                return Err(err(format!(
                    "when: column {} is not declared in this table",
                    when.column
                )));
            }
            if when.values.is_empty() {
                return Err(err("when: `in` lists no values".into()));
            }
        }
        check_rule(rule, &table.format).map_err(err)?;
    }
    Ok(())
}

fn check_column_rule(rule: &RuleSpec, col: &ColumnSpec) -> Result<(), String> {
    match rule {
        RuleSpec::Range { min, max, .. } => {
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err("min is greater than max".into());
            }
            if !matches!(
                col.kind,
                ColumnType::Integer | ColumnType::Decimal | ColumnType::String
            ) {
                return Err(format!(
                    "range needs a numeric column, {} is {:?}",
                    col.name, col.kind
                ));
            }
        }
        RuleSpec::DateRange { min, max, .. } => {
            if !col.kind.is_temporal() {
                return Err(format!(
                    "date_range needs a date or timestamp column (or a FHIR date/dateTime), {} is not",
                    col.name
                ));
            }
            let a = min
                .as_deref()
                .map(crate::datetime::parse_bound)
                .transpose()?;
            let b = max
                .as_deref()
                .map(crate::datetime::parse_bound)
                .transpose()?;
            if let (Some(a), Some(b)) = (a, b)
                && a > b
            {
                return Err("min is after max".into());
            }
        }
        RuleSpec::Regex { pattern, .. } => {
            regex::bytes::Regex::new(pattern).map_err(|e| format!("pattern: {e}"))?;
        }
        RuleSpec::Completeness { min_ratio, .. } if !(0.0..=1.0).contains(min_ratio) => {
            return Err("min_ratio must lie between 0 and 1".into());
        }
        RuleSpec::Unique {
            max_distinct: Some(0),
            ..
        } => return Err("max_distinct must be positive".into()),
        RuleSpec::Type { .. } if col.kind == ColumnType::String => {
            return Err(format!(
                "column {} is a string: declare its type first",
                col.name
            ));
        }
        _ => {}
    }
    Ok(())
}

fn check_rule(rule: &RuleSpec, format: &FormatSpec) -> Result<(), String> {
    match rule {
        RuleSpec::FileName { pattern, .. } => {
            Regex::new(pattern).map_err(|e| format!("pattern: {e}"))?;
        }
        RuleSpec::Size {
            min_bytes: Some(a),
            max_bytes: Some(b),
            ..
        } if a > b => {
            return Err("min_bytes is greater than max_bytes".into());
        }
        RuleSpec::RowCount {
            min: Some(a),
            max: Some(b),
            ..
        } if a > b => {
            return Err("min is greater than max".into());
        }
        RuleSpec::RowCountAnomaly {
            last,
            min_history,
            deviations,
            tolerance,
            ..
        } => {
            if *last == 0 || *min_history == 0 || *min_history > *last {
                return Err("needs 0 < min_history <= last".into());
            }
            let sane = deviations.is_finite()
                && *deviations > 0.0
                && tolerance.is_finite()
                && *tolerance >= 0.0;
            if !sane {
                return Err("deviations must be positive and tolerance at least 0".into());
            }
        }
        RuleSpec::HeaderMatches { .. }
        | RuleSpec::ColumnCount { .. }
        | RuleSpec::SchemaDrift { .. }
            if format.kind != FormatKind::Csv =>
        {
            return Err("only applies to CSV".into());
        }
        RuleSpec::HeaderMatches { .. } if !format.header => {
            return Err("the format declares no header".into());
        }
        RuleSpec::FhirResource { .. } if format.kind != FormatKind::Fhir => {
            return Err("only applies to kind: fhir".into());
        }
        RuleSpec::Phi {
            mrn_pattern: Some(p),
            ..
        } => {
            regex::bytes::Regex::new(p).map_err(|e| format!("mrn_pattern: {e}"))?;
        }
        _ => {}
    }
    Ok(())
}

/// serde_norway knows the line of syntax errors and most type errors, but inside a tagged rule it
/// only knows where the rule list starts (it buffers each rule first); for those, find the
/// failing rule by parsing each one on its own.
pub(super) fn locate_parse_error(text: &str, e: &serde_norway::Error) -> (usize, String) {
    let located = || {
        e.location()
            .map_or((0, e.to_string()), |l| (l.line(), e.to_string()))
    };
    if e.location().is_some() && !e.to_string().contains(".rules") {
        return located();
    }
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return located();
    };
    let mut index = 0;
    for (t, table) in doc
        .get("tables")
        .and_then(|t| t.as_sequence())
        .into_iter()
        .flatten()
        .enumerate()
    {
        for rule in table
            .get("rules")
            .and_then(|r| r.as_sequence())
            .into_iter()
            .flatten()
        {
            if let Err(inner) = serde_norway::from_value::<RuleSpec>(rule.clone()) {
                return (
                    rule_line(text, index),
                    format!("tables[{t}].rules: {inner}"),
                );
            }
            index += 1;
        }
    }
    located()
}

/// Line of the `index`-th `rule:` key in the document, counting every table's rules in order.
/// Each rule has exactly one `rule:` key, so this is exact unless a comment or a string says `rule:`.
fn rule_line(text: &str, index: usize) -> usize {
    let mut seen = 0;
    for (n, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        if code.trim_start().starts_with('#') {
            continue;
        }
        let bytes = code.as_bytes();
        let mut from = 0;
        while let Some(at) = code[from..].find("rule") {
            let start = from + at;
            let end = start + 4;
            let before_ok =
                start == 0 || matches!(bytes[start - 1], b' ' | b'{' | b',' | b'-' | b'\t');
            let rest = code[end..].trim_start();
            if before_ok && rest.starts_with(':') {
                if seen == index {
                    return n + 1;
                }
                seen += 1;
            }
            from = end;
        }
    }
    0
}

/// 1-based line of the first occurrence of `needle` at or after byte `from`, for error messages.
pub(super) fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.get(from..)
        .and_then(|t| t.find(needle))
        .map_or(0, |at| text[..from + at].matches('\n').count() + 1)
}
