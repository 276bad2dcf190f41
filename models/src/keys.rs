//! Where a file goes when it moves between zones. Pure functions shared by the ingest workflow,
//! which decides moves, and the activity that validates and promotes in one step: both must
//! compute the same destination for the same file.

use crate::{ContractMatch, Zone};

/// The longest file name (one path segment) most file systems hold, the local store's included.
const MAX_NAME_BYTES: usize = 255;
/// S3's longest key.
const MAX_KEY_BYTES: usize = 1024;

/// `raw/<dataset>/<table>/ingest_date=<day>/<file name of landing_key>`, fitted.
pub fn raw_destination(contract: &ContractMatch, ingest_date: &str, landing_key: &str) -> String {
    let file_name = landing_key.rsplit('/').next().unwrap_or(landing_key);
    fitted(
        &format!(
            "{}{}/{}/ingest_date={ingest_date}/{file_name}",
            Zone::Raw.prefix(),
            contract.dataset,
            contract.table
        ),
        None,
    )
}

/// `a/b/patients.csv.gz` → `a/b/patients.<version12>.csv.gz`, fitted as [`fitted`] does: the
/// name a file takes when another file already holds its destination.
pub fn version_tagged(key: &str, version: &str) -> String {
    let tag: String = version
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    fitted(key, Some(&tag))
}

/// `key` with `tag` (if any) before its extensions, the stem shortened as far as needed for the
/// name to stay within [`MAX_NAME_BYTES`] and the key within [`MAX_KEY_BYTES`]. A destination the
/// store cannot create would fail the move on every retry: a 1,024-byte landing key does not fit
/// under quarantine/ or raw/ unchanged, nor a 255-byte name with a version tag.
pub fn fitted(key: &str, tag: Option<&str>) -> String {
    let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
    let (mut stem, ext) = name.split_once('.').map_or((name, ""), |(s, e)| (s, e));
    let tag = tag.map_or(String::new(), |t| format!(".{t}"));
    let ext = if ext.is_empty() {
        String::new()
    } else {
        format!(".{ext}")
    };
    let slash = if dir.is_empty() { "" } else { "/" };
    let budget = MAX_NAME_BYTES.min(MAX_KEY_BYTES.saturating_sub(dir.len() + slash.len()));
    let keep = budget.saturating_sub(tag.len() + ext.len());
    if stem.len() > keep {
        let mut end = keep;
        while !stem.is_char_boundary(end) {
            end -= 1;
        }
        stem = &stem[..end];
    }
    format!("{dir}{slash}{stem}{tag}{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tag_goes_before_the_extensions() {
        assert_eq!(
            version_tagged("raw/e/t/p.csv.gz", "ab:cd-ef"),
            "raw/e/t/p.abcdef.csv.gz"
        );
        assert_eq!(version_tagged("p", "0123456789abcdef"), "p.0123456789ab");
    }

    #[test]
    fn a_version_tagged_name_still_fits_a_file_system() {
        let long = format!("raw/e/{}é.csv", "n".repeat(249));
        assert_eq!(long.len() - "raw/e/".len(), 255);
        let tagged = version_tagged(&long, "0123456789abcdef");
        let name = tagged.rsplit('/').next().unwrap();
        assert!(name.len() <= 255, "{}", name.len());
        assert!(name.ends_with(".0123456789ab.csv"), "{name}");
    }

    #[test]
    fn a_destination_fits_s3s_key_limit() {
        let landing = format!("landing/emr/ehr/{}.csv", "x".repeat(1024 - 20));
        assert_eq!(landing.len(), 1024);
        let quarantine = fitted(&landing.replacen("landing/", "quarantine/", 1), None);
        assert!(
            quarantine.len() <= 1024 && quarantine.ends_with("x.csv"),
            "{quarantine}"
        );
        assert_eq!(fitted("raw/a/b.csv", None), "raw/a/b.csv");
        assert_eq!(fitted("b", None), "b");
    }

    #[test]
    fn raw_destination_is_the_tables_partition() {
        let contract = ContractMatch {
            dataset: "ehr".into(),
            table: "patients".into(),
        };
        assert_eq!(
            raw_destination(&contract, "2026-12-01", "landing/emr/ehr/p.csv"),
            "raw/ehr/patients/ingest_date=2026-12-01/p.csv"
        );
    }
}
