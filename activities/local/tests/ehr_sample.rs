//! The committed sample and its contracts agree: good extracts pass, the bad ones are caught for
//! the reason the manifest gives, the manifest's counts are the files' counts, and the generator
//! still writes exactly the committed sample.

mod common;

use std::path::Path;
use std::process::Command;

use lakegate_models::Verdict;
use lakegate_validate::{ContractSet, validate};

fn sample() -> std::path::PathBuf {
    common::repo_root().join("examples/ehr/sample")
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(sample().join("manifest.json")).unwrap()).unwrap()
}

fn contracts() -> ContractSet {
    ContractSet::load_dir(&common::repo_root().join("examples/ehr/contracts")).unwrap()
}

#[test]
fn every_good_extract_resolves_to_its_table_and_passes() {
    let (contracts, manifest) = (contracts(), manifest());
    for (table, rows) in manifest["tables"].as_object().unwrap() {
        let key = format!("landing/synthea/ehr/{table}.csv");
        let (contract, spec) = contracts
            .resolve(&key)
            .unwrap_or_else(|| panic!("no contract for {key}"));
        assert_eq!(
            (contract.dataset.as_str(), spec.name.as_str()),
            ("ehr", table.as_str())
        );
        let file = std::fs::File::open(sample().join("ehr").join(format!("{table}.csv"))).unwrap();
        let report = validate(contract, spec, file).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{table}: {}",
            report.quarantine_reason()
        );
        assert_eq!(Some(report.rows), rows.as_u64(), "rows in {table}");
    }
    for resource in ["Patient", "Encounter", "Condition"] {
        let key = format!("landing/synthea/ehr_fhir/{resource}.ndjson");
        let (contract, spec) = contracts
            .resolve(&key)
            .unwrap_or_else(|| panic!("no contract for {key}"));
        assert_eq!(
            (contract.dataset.as_str(), spec.name.as_str()),
            ("ehr_fhir", resource.to_lowercase().as_str())
        );
        let lines =
            std::fs::read_to_string(sample().join("ehr_fhir").join(format!("{resource}.ndjson")))
                .unwrap()
                .lines()
                .count() as u64;
        assert_eq!(
            Some(lines),
            manifest["fhir"][resource].as_u64(),
            "{resource} resources"
        );
    }
}

#[test]
fn the_bad_files_are_caught() {
    let (contracts, manifest) = (contracts(), manifest());
    let bad = manifest["bad"].as_array().unwrap();
    assert_eq!(bad.len(), 3);
    for entry in bad {
        let file = entry["file"].as_str().unwrap();
        let key = format!("landing/synthea/ehr/{file}");
        let path = sample().join("bad/ehr").join(file);
        match entry["table"].as_str() {
            None => assert!(
                contracts.resolve(&key).is_none(),
                "{file} should match no contract"
            ),
            Some(table) => {
                let (contract, spec) = contracts.resolve(&key).expect("a contract");
                assert_eq!(spec.name, table);
                let report = validate(contract, spec, std::fs::File::open(&path).unwrap()).unwrap();
                assert_eq!(report.verdict, Verdict::Fail, "{file} passed");
                let expected_rule = if file.contains("header") {
                    "header_matches"
                } else {
                    "required"
                };
                let reason = report.quarantine_reason();
                assert!(
                    reason.starts_with(expected_rule),
                    "{file} quarantined for {reason}"
                );
            }
        }
    }
}

#[test]
fn the_generator_reproduces_the_committed_sample() {
    let out = tempfile::tempdir().unwrap();
    let root = common::repo_root();
    let manifest = manifest();
    let python = lakegate_local::LocalConfig::venv_from_env(&root).join("bin/python");
    let status = Command::new(python)
        .arg(root.join("examples/ehr/generate.py"))
        .args([
            "--seed",
            &manifest["seed"].to_string(),
            "--patients",
            &manifest["patients"].to_string(),
        ])
        .arg("--fhir")
        .arg("--out")
        .arg(out.path())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_same_tree(&sample(), out.path());
}

fn assert_same_tree(expected: &Path, actual: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(expected)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut actual_names: Vec<_> = std::fs::read_dir(actual)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    actual_names.sort();
    assert_eq!(names, actual_names, "files in {}", expected.display());
    for name in names {
        let (e, a) = (expected.join(&name), actual.join(&name));
        if e.is_dir() {
            assert_same_tree(&e, &a);
        } else {
            assert!(
                std::fs::read(&e).unwrap() == std::fs::read(&a).unwrap(),
                "{} differs",
                e.display()
            );
        }
    }
}
