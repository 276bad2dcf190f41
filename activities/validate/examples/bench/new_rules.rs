//! The opt-in rules' cost, measured in this process after the targets.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use lakegate_validate::{Contract, ValidateOptions, key_hash, validate_full};

use crate::CONTRACT;
use crate::data::{generate, generate_ndjson};

/// Rounds per case. The cases of one comparison run interleaved, round by round, so a burst
/// of load on a shared machine hits each of them rather than one; the best round counts.
const ROUNDS: usize = 3;

type Probe<'a> = &'a dyn Fn(&mut lakegate_validate::Validated);

/// One in-process validation of `file` against `yaml`'s first table; `probe` runs on the
/// reference probes (the lake-index lookups of `references`).
struct Case<'a> {
    yaml: String,
    file: &'a Path,
    opts: ValidateOptions,
    probe: Probe<'a>,
}

/// Best wall seconds of each case over [`ROUNDS`] interleaved rounds, with that run's report.
fn best_interleaved(cases: &[Case]) -> Result<Vec<(f64, lakegate_models::ValidationReport)>> {
    let contracts = cases
        .iter()
        .map(|c| Contract::parse(&c.yaml, Path::new("bench.yaml")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut best: Vec<Option<(f64, lakegate_models::ValidationReport)>> =
        cases.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        for ((case, c), slot) in cases.iter().zip(&contracts).zip(&mut best) {
            let started = Instant::now();
            let file = std::fs::File::open(case.file)?;
            let mut v = validate_full(c, &c.tables[0], file, &case.opts)?;
            (case.probe)(&mut v);
            let secs = started.elapsed().as_secs_f64();
            if slot.as_ref().is_none_or(|b| secs < b.0) {
                *slot = Some((secs, v.report));
            }
        }
    }
    best.into_iter().map(|b| b.context("no run")).collect()
}

fn failures(report: &lakegate_models::ValidationReport, rule: &str) -> u64 {
    report
        .rules
        .iter()
        .find(|o| o.rule == rule)
        .map_or(0, |o| o.failures)
}

/// What the rules added for real EHR data cost when they are on, in this process (release):
/// the zip and address detectors, `references` (hashing every value, then probing a key run
/// of the referenced table as the ingest activity does), and `*` over NDJSON arrays next to
/// the same checks on fixed indexes; and the same contract on a file whose notes never repeat,
/// where the note column's memo turns off.
pub(crate) fn new_rules(file: &Path, mb: f64, dir: &Path) -> Result<()> {
    println!();
    println!(
        "new rules, when on (in-process, best of {ROUNDS} interleaved; the targets above run with them off):"
    );
    let none = |_: &mut lakegate_validate::Validated| {};
    let opts = ValidateOptions::default();
    // Every generated patient id P00000000..P01999999 is "onboarded": one sorted run of 2M
    // hashes (16 MB), the size of a large patient table's run.
    let mut run: Vec<u64> = (0..2_000_000u64)
        .map(|i| key_hash(format!("P{i:08}").as_bytes()))
        .collect();
    run.sort_unstable();
    let probe = |v: &mut lakegate_validate::Validated| {
        for p in &mut v.references {
            p.mark_found(&run);
        }
        for p in std::mem::take(&mut v.references) {
            let o = p.outcome(20);
            lakegate_validate::set_outcome(&mut v.report, o);
        }
    };
    // The memo: the file's notes repeat six templates, so the note column's verdicts are
    // remembered; free text that never repeats turns that column's memo off.
    let distinct = dir.join("encounters_distinct_notes.csv");
    generate(&distinct, (mb as u64) << 20, true)?;
    let distinct_mb = std::fs::metadata(&distinct)?.len() as f64 / (1 << 20) as f64;
    let case = |yaml: String, file, opts: &ValidateOptions, probe| Case {
        yaml,
        file,
        opts: opts.clone(),
        probe,
    };
    let with_refs = ValidateOptions {
        check_references: true,
        ..ValidateOptions::default()
    };
    let results = best_interleaved(&[
        case(CONTRACT.to_owned(), file, &opts, &none),
        case(
            CONTRACT.replace(", detectors: [ssn, phone, email, mrn, dob]", ""),
            file,
            &opts,
            &none,
        ),
        case(
            CONTRACT.replace(
                "      - { name: patient_id, required: true, identifier: true }",
                "      - { name: patient_id, required: true, identifier: true, references: { table: patients, column: id } }",
            ),
            file,
            &with_refs,
            &probe,
        ),
        case(CONTRACT.to_owned(), &distinct, &opts, &none),
    ])?;
    std::fs::remove_file(&distinct)?;
    let [(base, _), (phi, _), (r, refs_report), (d, distinct_report)] = &results[..] else {
        unreachable!("four cases in, four results out")
    };
    println!(
        "  base contract                : {base:.2} s = {:.0} MB/s",
        mb / base
    );
    println!(
        "  phi with zip and address     : {phi:.2} s = {:.0} MB/s ({:+.0}%)",
        mb / phi,
        (phi / base - 1.0) * 100.0
    );
    println!(
        "  references (patient_id)      : {r:.2} s = {:.0} MB/s ({:+.0}%; {} orphan rows)",
        mb / r,
        (r / base - 1.0) * 100.0,
        failures(refs_report, "references")
    );
    println!(
        "  notes all distinct (no memo) : {d:.2} s = {:.0} MB/s ({:+.0}%; {:?})",
        distinct_mb / d,
        (d / base * mb / distinct_mb - 1.0) * 100.0,
        distinct_report.verdict
    );

    // `*` paths: the same NDJSON checked through `code.coding.*` and through fixed indexes.
    let nd = dir.join("Observation.ndjson");
    let nd_mb = generate_ndjson(&nd, ((mb as u64) / 4).max(16) << 20)? as f64 / (1 << 20) as f64;
    let fixed = format!(
        "{}{}",
        ndjson_contract("code.coding.0.system", "code.coding.0.code"),
        "      - { name: code.coding.1.system }\n      - { name: code.coding.1.code, required: true }\n"
    );
    let results = best_interleaved(&[
        case(fixed, &nd, &opts, &none),
        case(
            ndjson_contract("code.coding.*.system", "code.coding.*.code"),
            &nd,
            &opts,
            &none,
        ),
    ])?;
    let [(f, _), (st, star_report)] = &results[..] else {
        unreachable!("two cases in, two results out")
    };
    println!(
        "  NDJSON, fixed indexes        : {f:.2} s = {:.0} MB/s on {nd_mb:.0} MiB",
        nd_mb / f
    );
    println!(
        "  NDJSON, * paths              : {st:.2} s = {:.0} MB/s ({:+.0}%; {:?})",
        nd_mb / st,
        (st / f - 1.0) * 100.0,
        star_report.verdict
    );
    Ok(())
}

fn ndjson_contract(system: &str, code: &str) -> String {
    format!(
        "dataset: bench\ntables:\n  - name: Observation\n    keys: ['**/*.ndjson']\n    format: {{ kind: fhir, resource_type: Observation }}\n    columns:\n      - {{ name: id, required: true, identifier: true }}\n      - {{ name: subject.reference, required: true, identifier: true }}\n      - {{ name: effectiveDateTime, type: fhir_datetime, required: true }}\n      - {{ name: valueQuantity.value, type: decimal }}\n      - {{ name: '{system}' }}\n      - {{ name: '{code}', required: true }}\n"
    )
}
