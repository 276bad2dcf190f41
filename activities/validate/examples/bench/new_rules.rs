//! The opt-in rules' cost, measured in this process after the targets.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use lakegate_validate::{Contract, ValidateOptions, key_hash, validate_full};

use crate::CONTRACT;
use crate::data::{generate, generate_ndjson};

/// Best wall seconds of `runs` in-process validations of `file` against `yaml`'s first table,
/// `probe` run on the reference probes (the lake-index lookups of `references`).
fn timed(
    yaml: &str,
    file: &Path,
    opts: &ValidateOptions,
    runs: usize,
    probe: &dyn Fn(&mut lakegate_validate::Validated),
) -> Result<(f64, lakegate_models::ValidationReport)> {
    let c = Contract::parse(yaml, Path::new("bench.yaml"))?;
    let mut best: Option<(f64, lakegate_models::ValidationReport)> = None;
    for _ in 0..runs {
        let started = Instant::now();
        let mut v = validate_full(&c, &c.tables[0], std::fs::File::open(file)?, opts)?;
        probe(&mut v);
        let secs = started.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|b| secs < b.0) {
            best = Some((secs, v.report));
        }
    }
    best.context("no run")
}

/// What the rules added for real EHR data cost when they are on, in this process (release):
/// the zip and address detectors, `references` (hashing every value, then probing a key run
/// of the referenced table as the ingest activity does), and `*` over NDJSON arrays next to
/// the same checks on fixed indexes; and the same contract on a file whose notes never repeat,
/// where the note column's memo turns off.
pub(crate) fn new_rules(file: &Path, mb: f64, dir: &Path) -> Result<()> {
    println!();
    println!("new rules, when on (in-process, best of 2; the targets above run with them off):");
    let none = |_: &mut lakegate_validate::Validated| {};
    let opts = ValidateOptions::default();
    let (base, _) = timed(CONTRACT, file, &opts, 2, &none)?;
    println!(
        "  base contract                : {base:.2} s = {:.0} MB/s",
        mb / base
    );
    let all_phi = CONTRACT.replace(", detectors: [ssn, phone, email, mrn, dob]", "");
    let (phi, _) = timed(&all_phi, file, &opts, 2, &none)?;
    println!(
        "  phi with zip and address     : {phi:.2} s = {:.0} MB/s ({:+.0}%)",
        mb / phi,
        (phi / base - 1.0) * 100.0
    );
    // Every generated patient id P00000000..P01999999 is "onboarded": one sorted run of 2M
    // hashes (16 MB), the size of a large patient table's run.
    let mut run: Vec<u64> = (0..2_000_000u64)
        .map(|i| key_hash(format!("P{i:08}").as_bytes()))
        .collect();
    run.sort_unstable();
    let refs = CONTRACT.replace(
        "      - { name: patient_id, required: true, identifier: true }",
        "      - { name: patient_id, required: true, identifier: true, references: { table: patients, column: id } }",
    );
    let with_refs = ValidateOptions {
        check_references: true,
        ..ValidateOptions::default()
    };
    let probe = |v: &mut lakegate_validate::Validated| {
        for p in &mut v.references {
            p.mark_found(&run);
        }
        for p in std::mem::take(&mut v.references) {
            let o = p.outcome(20);
            lakegate_validate::set_outcome(&mut v.report, o);
        }
    };
    let (r, report) = timed(&refs, file, &with_refs, 2, &probe)?;
    let orphans = report
        .rules
        .iter()
        .find(|o| o.rule == "references")
        .map_or(0, |o| o.failures);
    println!(
        "  references (patient_id)      : {r:.2} s = {:.0} MB/s ({:+.0}%; {orphans} orphan rows)",
        mb / r,
        (r / base - 1.0) * 100.0
    );

    // The memo: the file's notes repeat six templates, so the note column's verdicts are
    // remembered; free text that never repeats turns that column's memo off.
    let distinct = dir.join("encounters_distinct_notes.csv");
    generate(&distinct, (mb as u64) << 20, true)?;
    let (d, report) = timed(CONTRACT, &distinct, &opts, 2, &none)?;
    let size_mb = std::fs::metadata(&distinct)?.len() as f64 / (1 << 20) as f64;
    println!(
        "  notes all distinct (no memo) : {d:.2} s = {:.0} MB/s ({:+.0}%; {:?})",
        size_mb / d,
        (d / base * mb / size_mb - 1.0) * 100.0,
        report.verdict
    );
    std::fs::remove_file(&distinct)?;

    // `*` paths: the same NDJSON checked through `code.coding.*` and through fixed indexes.
    let nd = dir.join("Observation.ndjson");
    let nd_mb = generate_ndjson(&nd, ((mb as u64) / 4).max(16) << 20)? as f64 / (1 << 20) as f64;
    let star = ndjson_contract("code.coding.*.system", "code.coding.*.code");
    let fixed = format!(
        "{}{}",
        ndjson_contract("code.coding.0.system", "code.coding.0.code"),
        "      - { name: code.coding.1.system }\n      - { name: code.coding.1.code, required: true }\n"
    );
    let (f, _) = timed(&fixed, &nd, &opts, 2, &none)?;
    let (st, report) = timed(&star, &nd, &opts, 2, &none)?;
    println!(
        "  NDJSON, fixed indexes        : {f:.2} s = {:.0} MB/s on {nd_mb:.0} MiB",
        nd_mb / f
    );
    println!(
        "  NDJSON, * paths              : {st:.2} s = {:.0} MB/s ({:+.0}%; {:?})",
        nd_mb / st,
        (st / f - 1.0) * 100.0,
        report.verdict
    );
    Ok(())
}

fn ndjson_contract(system: &str, code: &str) -> String {
    format!(
        "dataset: bench\ntables:\n  - name: Observation\n    keys: ['**/*.ndjson']\n    format: {{ kind: fhir, resource_type: Observation }}\n    columns:\n      - {{ name: id, required: true, identifier: true }}\n      - {{ name: subject.reference, required: true, identifier: true }}\n      - {{ name: effectiveDateTime, type: fhir_datetime, required: true }}\n      - {{ name: valueQuantity.value, type: decimal }}\n      - {{ name: '{system}' }}\n      - {{ name: '{code}', required: true }}\n"
    )
}
