use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The four places a file can be. A file is always in exactly one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Zone {
    Landing,
    Raw,
    Quarantine,
    Rejected,
}

impl Zone {
    pub const ALL: [Zone; 4] = [Zone::Landing, Zone::Raw, Zone::Quarantine, Zone::Rejected];

    /// The key prefix of the zone, with its trailing slash.
    pub fn prefix(self) -> &'static str {
        match self {
            Zone::Landing => "landing/",
            Zone::Raw => "raw/",
            Zone::Quarantine => "quarantine/",
            Zone::Rejected => "rejected/",
        }
    }

    pub fn of_key(key: &str) -> Option<Zone> {
        Zone::ALL.into_iter().find(|z| key.starts_with(z.prefix()))
    }

    /// The same key moved to another zone: `landing/emr/x.csv` → `quarantine/emr/x.csv`.
    pub fn rehome(key: &str, to: Zone) -> String {
        let rest = Zone::of_key(key).map_or(key, |z| &key[z.prefix().len()..]);
        format!("{}{rest}", to.prefix())
    }
}

/// The lake's log zone: tool output (dbt job logs, DuckDB/Athena error text, crawler messages)
/// that must never enter a workflow history is kept here, and histories carry only its key. Not a
/// [`Zone`]: no data file is ever in it, and no workflow moves anything into or out of it. Its
/// access is quarantine/'s: tool errors quote cell values.
pub const LOG_ZONE: &str = "logs/";

/// The lake's index of promoted files (content hashes, key sets and row counts that reference and
/// history rules read). Like [`LOG_ZONE`], lakegate's own record, never a data file.
pub const INDEX_ZONE: &str = "index/";

/// Prefixes that hold lakegate's own records rather than files on their way through the zones, so
/// an audit of "every file is in exactly one zone" skips them.
pub const RECORD_AREAS: [&str; 2] = [LOG_ZONE, INDEX_ZONE];

/// The deterministic key of a piece of tool output: `logs/<workflow id>/<name>.log`, so a retried
/// activity rewrites the same object. Characters outside `[A-Za-z0-9._=-]` become `_` (ids are
/// lakegate's own, but a key must not grow a folder from a stray `/`).
pub fn log_key(workflow_id: &str, name: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '=' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{LOG_ZONE}{}/{}.log", clean(workflow_id), clean(name))
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp, without pulling a date crate into workflow code
/// (Howard Hinnant's civil-from-days algorithm).
pub fn civil_date_from_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time, for messages people read.
pub fn civil_datetime_from_unix(secs: i64) -> String {
    let time = secs.rem_euclid(86_400);
    format!(
        "{} {:02}:{:02}:{:02}",
        civil_date_from_unix(secs),
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date_from_unix(0), "1970-01-01");
        assert_eq!(civil_date_from_unix(951_782_400), "2000-02-29");
        assert_eq!(civil_date_from_unix(1_795_651_200), "2026-11-26");
        assert_eq!(civil_date_from_unix(-86_400), "1969-12-31");
        assert_eq!(
            civil_datetime_from_unix(1_795_654_861),
            "2026-11-26 01:01:01"
        );
    }

    #[test]
    fn rehome_keeps_the_rest_of_the_key() {
        assert_eq!(
            Zone::rehome("landing/emr/x.csv", Zone::Quarantine),
            "quarantine/emr/x.csv"
        );
        assert_eq!(
            Zone::rehome("quarantine/emr/x.csv", Zone::Rejected),
            "rejected/emr/x.csv"
        );
        assert_eq!(Zone::of_key("raw/a"), Some(Zone::Raw));
        assert_eq!(Zone::of_key("elsewhere/a"), None);
    }

    #[test]
    fn log_keys_are_one_folder_per_workflow() {
        assert_eq!(
            log_key("transform-lakegate-ehr-3", "staging-job/1"),
            "logs/transform-lakegate-ehr-3/staging-job_1.log"
        );
        assert_eq!(Zone::of_key(&log_key("a", "b")), None);
    }
}
