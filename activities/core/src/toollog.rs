//! Tool output kept out of workflow histories: dbt's job logs, DuckDB's and Athena's error text
//! and crawler messages quote the values they choke on, and those can be a patient's name. The
//! activities write such text to the lake's log zone (`logs/`, with quarantine/'s access) under a
//! deterministic key and return only that key and an error class, so a history, a failure
//! message or a search attribute never holds a tool's words.

use std::sync::Arc;

use bytes::Bytes;
use temporalio_sdk::activities::ActivityContext;

use crate::ports::{ObjectStore, StoreError};

/// The class of the first error `text` reports, never its message: DuckDB's `<Words> Error:` or
/// `<Words> Exception:` (`Conversion Error`, `Binder Error`), an upper-case code with an
/// underscore (Athena's `INVALID_CAST_ARGUMENT`), or dbt's failing test (`dbt test failed`).
/// Only words of letters make a class, so a value cannot pass as one. `None` when there is none.
pub fn error_class(text: &str) -> Option<String> {
    let mut dbt_test = false;
    for line in text.lines() {
        if let Some(class) = line_class(line) {
            return Some(class);
        }
        // dbt prefixes its lines with a timestamp: `12:00:01  Failure in test not_null_x (...)`.
        dbt_test |= line.contains("Failure in test ");
    }
    dbt_test.then(|| "dbt test failed".to_owned())
}

fn line_class(line: &str) -> Option<String> {
    for (at, _) in line.match_indices(':') {
        let head = &line[..at];
        // Up to three words before the colon, each of ASCII letters (or digits in a code).
        let words: Vec<&str> = head.rsplit(' ').take(3).collect();
        let Some(last) = words.first() else { continue };
        let code = last.len() >= 4
            && last.contains('_')
            && last
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && last.starts_with(|c: char| c.is_ascii_uppercase());
        if code {
            return Some((*last).to_owned());
        }
        if !(last.ends_with("Error") || last.ends_with("Exception"))
            || !last.chars().all(|c| c.is_ascii_alphabetic())
        {
            continue;
        }
        // `Invalid Input Error`, `Conversion Error`: the capitalised words that lead up to it.
        let mut class: Vec<&str> = vec![last];
        for word in &words[1..] {
            if word.len() > 1
                && word.starts_with(|c: char| c.is_ascii_uppercase())
                && word.chars().all(|c| c.is_ascii_alphabetic())
            {
                class.push(word);
            } else {
                break;
            }
        }
        class.reverse();
        return Some(class.join(" "));
    }
    None
}

/// Where an activity writes tool output: the lake's store, or nowhere (a worker built without
/// one, e.g. in a unit test), in which case only the class is reported.
#[derive(Clone, Default)]
pub struct LogZone {
    store: Option<Arc<dyn ObjectStore>>,
}

impl LogZone {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store: Some(store) }
    }

    /// Writes `text` at `logs/<workflow id>/<name>.log` (the calling workflow's id, so the key is
    /// the same on every retry of the activity) and returns the key. An empty text, or no store,
    /// writes nothing.
    pub async fn keep(
        &self,
        ctx: &ActivityContext,
        name: &str,
        text: &str,
    ) -> Result<Option<String>, StoreError> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        if text.trim().is_empty() {
            return Ok(None);
        }
        let workflow_id = ctx.info().workflow_id.as_deref().unwrap_or("standalone");
        let key = lakegate_models::log_key(workflow_id, name);
        store
            .put(&key, Bytes::copy_from_slice(text.as_bytes()))
            .await?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::error_class;

    const NAME: &str = "ZZSENT";

    #[test]
    fn the_class_is_named_and_the_value_is_not() {
        for (text, class) in [
            (
                r#"Conversion Error: invalid date field format: "ZZSENT", expected format is (YYYY-MM-DD)"#,
                "Conversion Error",
            ),
            (
                "  Invalid Input Error: Malformed JSON at byte 0 of input: ZZSENT",
                "Invalid Input Error",
            ),
            (
                "Runtime Error in model stg (models/stg.sql)\n  Binder Error: Referenced column ZZSENT not found",
                "Binder Error",
            ),
            (
                "INVALID_CAST_ARGUMENT: Value cannot be cast to date: ZZSENT",
                "INVALID_CAST_ARGUMENT",
            ),
            (
                "12:00:01  Failure in test not_null_x (models/x.yml)\n  Got 1 result",
                "dbt test failed",
            ),
        ] {
            let found = error_class(text).unwrap();
            assert_eq!(found, class, "{text}");
            assert!(!found.contains(NAME));
        }
        // A value right before a colon is no class: it is not a word ending in Error, and a
        // word with an apostrophe ends the class.
        assert_eq!(error_class("ZZSENT: bad"), None);
        assert_eq!(error_class("O'ZZSENT Error: x").as_deref(), Some("Error"));
        assert_eq!(error_class("12:30:01  Running with dbt=1.9"), None);
    }
}
