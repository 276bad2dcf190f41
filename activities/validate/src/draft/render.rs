//! The drafted contract as YAML, written by hand so every guess can carry its comment. Strings
//! are JSON-quoted, which YAML reads as double-quoted scalars.

use std::fmt::Write as _;

use super::infer::{ColumnStats, id_like};
use super::{DraftOptions, Kind, TableDraft};
use crate::contract::ColumnType;

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A number as YAML reads it back exactly (integers without a fraction).
fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

pub(super) fn contract<'a>(
    opts: &DraftOptions,
    files: usize,
    tables: impl Iterator<Item = &'a TableDraft>,
) -> String {
    let tables: Vec<&TableDraft> = tables.collect();
    let mut y = String::new();
    let rows: u64 = tables.iter().map(|t| t.rows).sum();
    let truncated = tables.iter().any(|t| t.truncated);
    let _ = writeln!(
        y,
        "# Drafted by `lakegate contract draft` from {files} file(s), {rows} sampled row(s): the first \
         {} rows of each file at most{}.",
        opts.sample_rows,
        if truncated {
            " (some files are longer: their later rows were not read)"
        } else {
            " (every file was read whole)"
        }
    );
    y.push_str(
        "# Lines marked `# guess:` are inferences from that sample: check each before relying on it.\n",
    );
    let _ = writeln!(y, "dataset: {}", q(&opts.dataset));
    y.push_str("tables:\n");
    for t in tables {
        table(&mut y, opts, t);
    }
    y
}

fn table(y: &mut String, opts: &DraftOptions, t: &TableDraft) {
    let _ = writeln!(y, "  - name: {}", q(&t.name));
    let keys: Vec<String> = t.key_patterns.iter().map(|k| q(k)).collect();
    let _ = writeln!(y, "    keys: [{}]", keys.join(", "));
    let ndjson = t.kind == Kind::Ndjson;
    let mut format = Vec::new();
    match (t.kind, &t.fhir_types) {
        (Kind::Ndjson, Some(types)) if !types.is_empty() => {
            format.push("kind: fhir".to_owned());
            if types.len() == 1 {
                let rt = types.iter().next().map(String::as_str).unwrap_or_default();
                format.push(format!("resource_type: {}", q(rt)));
            }
        }
        (Kind::Ndjson, _) => format.push("kind: ndjson".to_owned()),
        (Kind::Csv(d), _) if d != b',' => {
            format.push(format!("delimiter: {}", q(&(d as char).to_string())));
        }
        _ => {}
    }
    if t.latin1 {
        format.push("encoding: latin-1".into());
    }
    if !t.null_tokens.is_empty() {
        let tokens: Vec<String> = t.null_tokens.iter().map(|s| q(s)).collect();
        format.push(format!("null_values: [{}]", tokens.join(", ")));
    }
    if !format.is_empty() {
        let _ = writeln!(y, "    format: {{ {} }}", format.join(", "));
    }
    if t.skipped > 0 || t.paths_cut {
        let _ = writeln!(
            y,
            "    # note: {} record(s) skipped (too long or not a JSON object){}",
            t.skipped,
            if t.paths_cut {
                format!("; only the first {} paths were kept", super::MAX_PATHS)
            } else {
                String::new()
            }
        );
    }
    y.push_str("    columns:\n");
    let mut rules: Vec<String> = vec![
        "      - { rule: phi }  # phi on: free-text columns are scanned for identifiers".into(),
    ];
    let fhir = t.fhir_types.as_ref().is_some_and(|f| !f.is_empty());
    for c in &t.columns {
        // The built-in fhir_resource rule already checks it.
        if fhir && c.name == "resourceType" {
            continue;
        }
        column(y, &mut rules, opts, t, c, ndjson);
    }
    y.push_str("    rules:\n");
    for r in rules {
        y.push_str(&r);
        y.push('\n');
    }
}

fn column(
    y: &mut String,
    rules: &mut Vec<String>,
    opts: &DraftOptions,
    t: &TableDraft,
    c: &ColumnStats,
    ndjson: bool,
) {
    let inferred = c.decide(ndjson);
    let _ = writeln!(y, "      - name: {}", q(&c.name));
    if inferred.kind != ColumnType::String {
        let _ = writeln!(
            y,
            "        type: {}  # guess: {}",
            inferred.kind.name(),
            inferred.why
        );
    }
    if let Some((first, rest)) = inferred.formats.split_first() {
        let _ = writeln!(y, "        format: {}", q(first));
        if !rest.is_empty() {
            let rest: Vec<String> = rest.iter().map(|f| q(f)).collect();
            let _ = writeln!(
                y,
                "        formats: [{}]  # guess: the sample mixes these",
                rest.join(", ")
            );
        }
    }
    let present_everywhere = !c.wildcard && t.rows > 0 && c.rows_present == t.rows;
    if present_everywhere {
        let _ = writeln!(
            y,
            "        required: true  # guess: no sampled row lacks it ({} rows)",
            t.rows
        );
    }
    let identifier = id_like(&c.name) && c.all_distinct() && !c.wildcard;
    if identifier {
        let _ = writeln!(
            y,
            "        identifier: true  # guess: id-like name, all {} sampled values distinct",
            c.values
        );
        rules.push(format!(
            "      - {{ rule: unique, column: {} }}  # guess: identifier, distinct in the sample",
            q(&c.name)
        ));
    }
    let fired = c.phi_fired();
    // Typed values the validator parses are not scanned; only strings (and identifiers, which
    // are skipped) need a decision.
    let scanned = !identifier && inferred.kind == ColumnType::String;
    if scanned && !fired.is_empty() {
        let _ = writeln!(
            y,
            "        phi: allowed  # guess: sampled values look like {} - decide whether this column may hold them",
            fired.join(", ")
        );
    }
    if identifier {
        return;
    }
    match inferred.kind {
        ColumnType::String | ColumnType::Boolean => {
            if let Some(values) = c.low_cardinality(opts.max_allowed_values)
                && inferred.kind == ColumnType::String
            {
                let quoted: Vec<String> = values.iter().map(|v| q(v)).collect();
                rules.push(format!(
                    "      - {{ rule: allowed_values, column: {}, values: [{}] }}  # guess: {} distinct values in {} sampled",
                    q(&c.name),
                    quoted.join(", "),
                    values.len(),
                    c.values
                ));
            } else if inferred.kind == ColumnType::String
                && c.all_distinct()
                && !c.wildcard
                && c.values >= 10
            {
                rules.push(format!(
                    "      # - {{ rule: unique, column: {} }}  # candidate: all {} sampled values distinct",
                    q(&c.name),
                    c.values
                ));
            }
        }
        // Few distinct integers are codes (OMOP concept ids), not quantities.
        ColumnType::Integer if c.low_cardinality(opts.max_allowed_values).is_some() => {
            let values = c
                .low_cardinality(opts.max_allowed_values)
                .unwrap_or_default();
            let quoted: Vec<String> = values.iter().map(|v| q(v)).collect();
            rules.push(format!(
                "      - {{ rule: allowed_values, column: {}, values: [{}] }}  # guess: {} distinct codes in {} sampled",
                q(&c.name),
                quoted.join(", "),
                values.len(),
                c.values
            ));
        }
        ColumnType::Integer | ColumnType::Decimal => {
            if let (Some(min), Some(max)) = (c.min, c.max) {
                rules.push(format!(
                    "      - {{ rule: range, column: {}, min: {}, max: {} }}  # guess: the sampled bounds; widen them",
                    q(&c.name),
                    num(min),
                    num(max)
                ));
            }
        }
        _ => {}
    }
}
