#![allow(dead_code)]

use std::path::Path;

use lakegate_models::{RuleOutcome, ValidationReport};
use lakegate_validate::{Contract, ValidateOptions, validate_with};

pub fn contract(yaml: &str) -> Contract {
    Contract::parse(yaml, Path::new("test.yaml"))
        .unwrap_or_else(|e| panic!("contract does not load: {e}"))
}

pub fn run_opts(yaml: &str, data: &[u8], opts: &ValidateOptions) -> ValidationReport {
    let c = contract(yaml);
    validate_with(&c, &c.tables[0], data, opts).expect("an in-memory stream cannot fail")
}

pub fn run(yaml: &str, data: &[u8]) -> ValidationReport {
    run_opts(yaml, data, &ValidateOptions::default())
}

/// The outcome of `rule` (on `column`, when given); panics when the report lacks it.
pub fn outcome<'r>(r: &'r ValidationReport, rule: &str, column: Option<&str>) -> &'r RuleOutcome {
    r.rules
        .iter()
        .find(|o| o.rule == rule && o.column.as_deref() == column)
        .unwrap_or_else(|| panic!("no outcome for {rule} {column:?} in {:#?}", r.rules))
}

/// Names of failed rules (any severity), as `rule` or `rule(column)`.
pub fn failed(r: &ValidationReport) -> Vec<String> {
    let failed = r.rules.iter().filter(|o| !o.passed);
    failed.map(RuleOutcome::id).collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
