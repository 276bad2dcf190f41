//! What a sample says about one column: the narrowest type every value parses as (with the
//! validator's own parsers, so the draft passes on its sample), nulls, distinct values, bounds
//! and which PHI detectors fire.

use std::collections::{BTreeMap, HashSet};

use crate::contract::ColumnType;
use crate::datetime::{DateFormat, TimeParser};
use crate::phi::{self, Scanner};

/// Date and timestamp formats tried, most specific first; a column gets those its values need.
const DATE_FORMATS: [&str; 4] = ["%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y"];
const TIMESTAMP_FORMATS: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
];

/// Distinct values kept per column for `allowed_values`; past this the column is not low-cardinality.
const MAX_KEPT: usize = 64;

#[derive(Debug)]
pub(super) struct ColumnStats {
    pub(super) name: String,
    /// Rows (lines) that had a non-null value.
    pub(super) rows_present: u64,
    /// Non-null values (an array path has several per line).
    pub(super) values: u64,
    pub(super) wildcard: bool,
    int: bool,
    dec: bool,
    bool_words: bool,
    bool_alpha: bool,
    leading_zero: bool,
    fhir_date: bool,
    fhir_datetime: bool,
    /// Per candidate format: whether some value needed it (the first that matched it).
    used: Vec<bool>,
    temporal: bool,
    pub(super) min: Option<f64>,
    pub(super) max: Option<f64>,
    pub(super) max_len: usize,
    kept: BTreeMap<String, u64>,
    overflow: bool,
    hashes: HashSet<u64>,
    pub(super) duplicates: bool,
    pub(super) phi_hits: [u64; phi::DETECTORS],
    last_row: u64,
}

impl ColumnStats {
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            rows_present: 0,
            values: 0,
            wildcard: name.split('.').any(|s| s == "*"),
            int: true,
            dec: true,
            bool_words: true,
            bool_alpha: false,
            leading_zero: false,
            fhir_date: true,
            fhir_datetime: true,
            used: vec![false; DATE_FORMATS.len() + TIMESTAMP_FORMATS.len()],
            temporal: true,
            min: None,
            max: None,
            max_len: 0,
            kept: BTreeMap::new(),
            overflow: false,
            hashes: HashSet::new(),
            duplicates: false,
            phi_hits: [0; phi::DETECTORS],
            last_row: u64::MAX,
        }
    }

    /// One non-null value of the column in data row `row`.
    pub(super) fn add(&mut self, row: u64, v: &[u8], formats: &[DateFormat], scanner: &Scanner) {
        if self.last_row != row {
            self.last_row = row;
            self.rows_present += 1;
        }
        self.values += 1;
        let text = String::from_utf8_lossy(v);
        self.max_len = self.max_len.max(text.chars().count());
        let int = crate::engine::parse_i64(v).is_some();
        self.int &= int;
        let dec = crate::engine::is_decimal(v);
        self.dec &= dec;
        if dec && let Ok(n) = text.trim().parse::<f64>() {
            self.min = Some(self.min.map_or(n, |m| m.min(n)));
            self.max = Some(self.max.map_or(n, |m| m.max(n)));
        }
        self.leading_zero |= {
            let d = v.strip_prefix(b"-").unwrap_or(v);
            d.len() > 1 && d[0] == b'0' && d[1].is_ascii_digit()
        };
        self.bool_words &= crate::engine::is_bool(v);
        self.bool_alpha |= v.iter().any(u8::is_ascii_alphabetic);
        self.fhir_date &= TimeParser::FhirDate.eval(v).is_some();
        self.fhir_datetime &= TimeParser::FhirDateTime.eval(v).is_some();
        if self.temporal {
            match formats.iter().position(|f| f.eval(v).is_some()) {
                Some(i) => self.used[i] = true,
                None => self.temporal = false,
            }
        }
        if !self.overflow {
            *self.kept.entry(text.into_owned()).or_default() += 1;
            if self.kept.len() > MAX_KEPT {
                self.overflow = true;
                self.kept.clear();
            }
        }
        let h = {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            BuildHasherDefault::<DefaultHasher>::default().hash_one(v)
        };
        self.duplicates |= !self.hashes.insert(h);
        let mut hits = [0; phi::DETECTORS];
        scanner.scan(v, false, &mut hits);
        for (a, b) in self.phi_hits.iter_mut().zip(hits) {
            *a += b;
        }
    }

    /// The type the column gets, with its formats for dates and timestamps.
    pub(super) fn decide(&self, ndjson: bool) -> Inferred {
        if self.values == 0 {
            return Inferred::plain(ColumnType::String, "no sampled value: typed string");
        }
        // Codes with leading zeros (ZIPs, MRNs) lose them as numbers: keep them strings.
        if self.int && !self.leading_zero {
            return Inferred::plain(ColumnType::Integer, "every sampled value is an integer");
        }
        if self.dec && !self.leading_zero {
            return Inferred::plain(ColumnType::Decimal, "every sampled value is a decimal");
        }
        if self.bool_words && self.bool_alpha {
            return Inferred::plain(ColumnType::Boolean, "every sampled value is a boolean word");
        }
        let strftime = self.temporal.then(|| {
            let all = all_formats();
            let used: Vec<String> = all
                .iter()
                .zip(&self.used)
                .filter(|(_, u)| **u)
                .map(|(f, _)| (*f).to_owned())
                .collect();
            let timestamp = used.iter().any(|f| f.contains("%H"));
            (used, timestamp)
        });
        let fhir = if self.fhir_date {
            Some((ColumnType::FhirDate, "every sampled value is a FHIR date"))
        } else if self.fhir_datetime {
            Some((
                ColumnType::FhirDateTime,
                "every sampled value is a FHIR dateTime",
            ))
        } else {
            None
        };
        // NDJSON (FHIR) dates are FHIR's own grammar first; CSV dates are strftime first.
        match (ndjson, strftime, fhir) {
            (true, _, Some((kind, why))) | (false, None, Some((kind, why))) => {
                Inferred::plain(kind, why)
            }
            (_, Some((formats, timestamp)), _) => Inferred {
                kind: if timestamp {
                    ColumnType::Timestamp
                } else {
                    ColumnType::Date
                },
                why: "every sampled value matched these formats",
                formats,
            },
            _ => Inferred::plain(ColumnType::String, "free text or codes"),
        }
    }

    /// The distinct values, when there are few (and fewer than the rows, so they repeat).
    pub(super) fn low_cardinality(&self, max: usize) -> Option<Vec<&str>> {
        let distinct = self.kept.len();
        (!self.overflow && distinct > 0 && distinct <= max && (distinct as u64) * 2 <= self.values)
            .then(|| self.kept.keys().map(String::as_str).collect())
    }

    pub(super) fn all_distinct(&self) -> bool {
        !self.duplicates && self.values > 1
    }

    /// The detectors that fired on some value.
    pub(super) fn phi_fired(&self) -> Vec<&'static str> {
        phi::ALL
            .iter()
            .zip(self.phi_hits)
            .filter(|(_, n)| *n > 0)
            .map(|(d, _)| phi::name(*d))
            .collect()
    }
}

/// A column's inferred type.
#[derive(Debug)]
pub(super) struct Inferred {
    pub(super) kind: ColumnType,
    pub(super) formats: Vec<String>,
    pub(super) why: &'static str,
}

impl Inferred {
    fn plain(kind: ColumnType, why: &'static str) -> Self {
        Self {
            kind,
            formats: Vec::new(),
            why,
        }
    }
}

pub(super) fn all_formats() -> Vec<&'static str> {
    DATE_FORMATS
        .iter()
        .chain(&TIMESTAMP_FORMATS)
        .copied()
        .collect()
}

pub(super) fn compiled_formats() -> Vec<DateFormat> {
    all_formats()
        .iter()
        .filter_map(|f| DateFormat::parse(f).ok())
        .collect()
}

/// The scanner a draft runs on every column, to learn which would trip the `phi` rule.
pub(super) fn scanner() -> Option<Scanner> {
    Scanner::new(&phi::ALL, None).ok()
}

/// Id-like: `id`, `*_id`, `*Id`, `mrn`, `*identifier*`, the FHIR `id` of a resource.
pub(super) fn id_like(name: &str) -> bool {
    let last = name
        .rsplit('.')
        .find(|s| *s != "*" && *s != "value")
        .unwrap_or(name);
    let lower = last.to_ascii_lowercase();
    lower == "id"
        || lower.ends_with("_id")
        || (last.ends_with("Id") && last.len() > 2)
        || lower == "mrn"
        || lower.ends_with("_mrn")
        || lower.contains("identifier")
}
