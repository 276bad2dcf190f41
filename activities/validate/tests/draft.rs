//! `lakegate contract draft`: a draft is a contract the loader accepts, the JSON Schema
//! describes, and its own sample passes.

mod common;

use std::path::{Path, PathBuf};

use common::failed;
use lakegate_models::Verdict;
use lakegate_validate::{ColumnType, Contract, DraftOptions, RuleSpec, draft, validate};
use serde_json::Value;

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Drafts from `files`, checks the draft against the schema and the loader, and validates
/// every sample file against it.
fn drafted(files: &[PathBuf], opts: &DraftOptions) -> (String, Contract) {
    let yaml = draft(files, opts).unwrap();
    let contract = Contract::parse(&yaml, Path::new("draft.yaml"))
        .unwrap_or_else(|e| panic!("the draft does not load: {e}\n{yaml}"));
    let doc: Value = serde_norway::from_str(&yaml).unwrap();
    let schema: Value = serde_json::from_str(&Contract::json_schema()).unwrap();
    if let Err(e) = conforms(&schema, &schema, &doc, "$") {
        panic!("the draft breaks the schema at {e}\n{yaml}");
    }
    for f in files {
        let table = contract
            .tables
            .iter()
            .find(|t| {
                t.matches_key(&format!(
                    "landing/src/{}/{}",
                    contract.dataset,
                    f.file_name().unwrap().to_string_lossy()
                ))
            })
            .unwrap_or_else(|| panic!("no table's keys match {f:?}\n{yaml}"));
        let report = validate(&contract, table, std::fs::File::open(f).unwrap()).unwrap();
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{f:?}: {:?}\n{yaml}",
            failed(&report)
        );
        assert!(
            failed(&report).is_empty(),
            "{f:?}: warnings {:?}\n{yaml}",
            failed(&report)
        );
    }
    (yaml, contract)
}

#[test]
fn csv_draft_passes_its_own_sample() {
    let dir = tempfile::tempdir().unwrap();
    let mut body =
        String::from("person_id,mrn,gender,birth_date,visit_start,weight_kg,zip,note,active\n");
    for i in 0..60 {
        let start = if i % 3 == 0 {
            format!("2024-0{}-1{} 08:30:00", 1 + i % 9, i % 10)
        } else {
            format!("2024-0{}-1{} 08:30:00.25", 1 + i % 9, i % 10)
        };
        let note = if i % 7 == 0 {
            ""
        } else {
            "follow up in clinic"
        };
        body.push_str(&format!(
            "{i},{:06},{},19{}-0{}-2{},{start},{}.5,0{},{note},{}\n",
            1000 + i,
            ["F", "M", "U"][i % 3],
            50 + i % 40,
            1 + i % 9,
            i % 9,
            40 + i,
            2100 + i,
            if i % 2 == 0 { "true" } else { "false" }
        ));
    }
    let f = write(dir.path(), "person.csv", &body);
    let (yaml, c) = drafted(&[f], &DraftOptions::new("omop"));
    let t = &c.tables[0];
    assert_eq!(t.name, "person");
    let col = |n: &str| t.column(n).unwrap_or_else(|| panic!("no {n}"));
    assert_eq!(col("person_id").kind, ColumnType::Integer);
    assert!(col("person_id").identifier && col("person_id").required);
    assert!(col("mrn").identifier, "{yaml}");
    assert_eq!(
        col("mrn").kind,
        ColumnType::String,
        "leading zeros keep it a string"
    );
    assert_eq!(col("zip").kind, ColumnType::String);
    assert_eq!(col("birth_date").kind, ColumnType::Date);
    assert_eq!(col("visit_start").kind, ColumnType::Timestamp);
    assert_eq!(col("weight_kg").kind, ColumnType::Decimal);
    assert_eq!(col("active").kind, ColumnType::Boolean);
    assert!(!col("note").required);
    assert!(t.rules.iter().any(|r| matches!(r, RuleSpec::Phi { .. })));
    assert!(t.rules.iter().any(|r| matches!(r, RuleSpec::AllowedValues { column, values, .. } if column == "gender" && values.len() == 3)), "{yaml}");
    assert!(t.rules.iter().any(
        |r| matches!(r, RuleSpec::Range { column, min: Some(_), .. } if column == "weight_kg")
    ));
    assert!(
        t.rules
            .iter()
            .any(|r| matches!(r, RuleSpec::Unique { column, .. } if column == "person_id"))
    );
    assert!(yaml.contains("# guess:"), "guesses are marked");
    assert!(yaml.contains("every file was read whole"), "{yaml}");
}

#[test]
fn ndjson_draft_has_array_paths_and_fhir_dates() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for i in 0..30 {
        let birth = ["1980", "1975-06", "1990-01-02"][i % 3];
        let updated = if i % 2 == 0 {
            "2025-01-02T10:00:00Z"
        } else {
            "2025-01-02T10:00:00.123456+01:00"
        };
        body.push_str(&format!(
            r#"{{"resourceType":"Patient","id":"p{i}","birthDate":"{birth}","gender":"{}","meta":{{"lastUpdated":"{updated}"}},"telecom":[{{"system":"phone","value":"555-01{i:02}"}},{{"system":"email","value":"x{i}"}}],"active":true}}"#,
            ["female", "male"][i % 2]
        ));
        body.push('\n');
    }
    let f = write(dir.path(), "Patient.ndjson", &body);
    let (yaml, c) = drafted(&[f], &DraftOptions::new("fhir"));
    let t = &c.tables[0];
    assert_eq!(t.format.kind, lakegate_validate::FormatKind::Fhir);
    assert_eq!(t.format.resource_type.as_deref(), Some("Patient"));
    assert_eq!(
        t.column("birthDate").unwrap().kind,
        ColumnType::FhirDate,
        "{yaml}"
    );
    assert_eq!(
        t.column("meta.lastUpdated").unwrap().kind,
        ColumnType::FhirDateTime
    );
    assert!(t.column("telecom.*.value").is_some(), "{yaml}");
    assert!(t.column("telecom.*.system").is_some());
    assert!(t.column("id").unwrap().identifier);
}

#[test]
fn a_long_file_is_sampled_and_the_draft_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("id,code\n");
    for i in 0..500 {
        body.push_str(&format!("{i},{}\n", ["A", "B"][i % 2]));
    }
    let f = write(dir.path(), "codes.csv", &body);
    let opts = DraftOptions {
        sample_rows: 100,
        ..DraftOptions::new("d")
    };
    let yaml = draft(&[f], &opts).unwrap();
    assert!(yaml.contains("100 sampled row(s)"), "{yaml}");
    assert!(yaml.contains("later rows were not read"), "{yaml}");
    Contract::parse(&yaml, Path::new("d.yaml")).unwrap();
}

/// The part of JSON Schema (draft 2020-12) schemars emits for the contract: `$ref`, `type`,
/// `properties`, `required`, `additionalProperties`, `enum`, `const`, `oneOf`/`anyOf`,
/// `items`. Enough to catch a draft the editor schema would flag.
fn conforms(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return conforms(root, &root["$defs"][name], v, at);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let ok = alts
                .iter()
                .filter(|a| conforms(root, a, v, at).is_ok())
                .count();
            if ok == 0 || (key == "oneOf" && ok > 1) {
                return Err(format!("{at}: {ok} of the {key} alternatives match"));
            }
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        return Err(format!("{at}: not {c}"));
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in enum"));
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => true,
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = req.as_str()
                && !obj.contains_key(r)
            {
                return Err(format!("{at}: lacks {r}"));
            }
        }
        for (k, e) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(p) => conforms(root, p, e, &format!("{at}.{k}"))?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: unknown property {k}"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, e) in a.iter().enumerate() {
            conforms(root, items, e, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
