//! A workflow's start input that always decodes. The SDK decodes a typed start input before any
//! workflow code runs, and a payload that does not fit the type then fails every workflow task of
//! the run ("Failed to create workflow execution", retried forever). Read through this wrapper,
//! any JSON payload decodes; what did not fit is kept as a message naming the field and what was
//! expected, so the workflow can fail the run at once with a named, non-retryable error.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The start input of a workflow as it arrived: decoded, or why not.
///
/// On the wire it is exactly `T`'s JSON (a Rust caller passes `input.into()`), so histories
/// recorded with a plain `T` input read the same.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkflowInput<T> {
    Decoded(T),
    /// The input did not decode: the path of the field and what was expected there (from the
    /// type's definition), never a value from the payload.
    Malformed(String),
}

impl<T> From<T> for WorkflowInput<T> {
    fn from(input: T) -> Self {
        WorkflowInput::Decoded(input)
    }
}

impl<T: Default> WorkflowInput<T> {
    /// The decoded input, or a default placeholder and the reason it did not decode. The
    /// placeholder only fills the workflow's state: a run with a reason fails before using it.
    pub fn split(self) -> (T, Option<String>) {
        match self {
            WorkflowInput::Decoded(input) => (input, None),
            WorkflowInput::Malformed(why) => (T::default(), Some(why)),
        }
    }
}

impl<T: Serialize> Serialize for WorkflowInput<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            WorkflowInput::Decoded(input) => input.serialize(serializer),
            // Never sent by a client; a malformed input has nothing faithful to re-send.
            WorkflowInput::Malformed(_) => serializer.serialize_unit(),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for WorkflowInput<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(decode(value))
    }
}

/// Decodes `value` as `T`, or says where and how it does not fit (see [`WorkflowInput`]).
pub fn decode<T: DeserializeOwned>(value: Value) -> WorkflowInput<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(input) => WorkflowInput::Decoded(input),
        Err(e) => {
            let at = path_words(e.path());
            WorkflowInput::Malformed(format!("{} at {at}", problem(&e.inner().to_string())))
        }
    }
}

/// The path of the field, e.g. `timing.quiet_period_secs` or `stages[2]`. Map keys come from the
/// payload (a table name, perhaps a landing key), so only plain identifiers are spelt out.
fn path_words(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut words = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => words.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } if is_identifier(key) => {
                if !words.is_empty() {
                    words.push('.');
                }
                words.push_str(key);
            }
            _ => words.push_str("[…]"),
        }
    }
    if words.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{words}`")
    }
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// serde's message without what it quotes from the payload. serde phrases type errors as
/// `invalid type: <what was sent>, expected <what the type wants>`: the first part may be any
/// text sent, the second comes from the type's definition. The last ", expected " is taken, as
/// the sent text may contain the words too.
fn problem(message: &str) -> String {
    // Field names in these come from the type's definition.
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        return message.to_owned();
    }
    let kind = [
        "invalid type",
        "invalid value",
        "invalid length",
        "unknown variant",
        "unknown field",
    ]
    .into_iter()
    .find(|kind| message.starts_with(kind))
    .unwrap_or("a value that does not decode");
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("{kind}, expected {expected}"),
        None => kind.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CrawlInput, IngestInput};

    fn why<T: DeserializeOwned + std::fmt::Debug>(raw: &str) -> String {
        match serde_json::from_str::<WorkflowInput<T>>(raw).unwrap() {
            WorkflowInput::Malformed(why) => why,
            WorkflowInput::Decoded(input) => panic!("decoded: {input:?}"),
        }
    }

    #[test]
    fn a_good_input_reads_and_writes_as_the_plain_type() {
        let raw = r#"{"bucket":"b","key":"landing/x","version":"v","review_timeout_secs":5}"#;
        let plain: IngestInput = serde_json::from_str(raw).unwrap();
        let wrapped: WorkflowInput<IngestInput> = serde_json::from_str(raw).unwrap();
        assert_eq!(wrapped, WorkflowInput::Decoded(plain.clone()));
        assert_eq!(
            serde_json::to_string(&wrapped).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }

    #[test]
    fn a_bad_input_names_the_field_and_the_expected_shape_never_a_value() {
        let missing = why::<IngestInput>(r#"{"bucket":"b","key":"landing/SENT1.csv"}"#);
        assert_eq!(missing, "missing field `version` at the top level");
        let typed = why::<IngestInput>(
            r#"{"bucket":"b","key":"SENT1","version":"SENT1, expected x","review_timeout_secs":"SENT1"}"#,
        );
        assert_eq!(typed, "invalid type, expected u64 at `review_timeout_secs`");
        let nested = why::<CrawlInput>(
            r#"{"crawler":"c","database":"d","quiet_period_secs":1,"max_wait_secs":1,
                "poll_initial_secs":1,"poll_max_secs":1,"crawl_deadline_secs":1,
                "known_tables":{"landing/SENT1.csv":{"columns":[7],"partitions":0}}}"#,
        );
        assert_eq!(
            nested,
            "invalid type, expected a string at `known_tables[…].columns[0]`"
        );
        let not_an_object = why::<IngestInput>(r#""SENT1""#);
        assert!(
            not_an_object.starts_with("invalid type, expected struct IngestInput"),
            "{not_an_object}"
        );
        for why in [missing, typed, nested, not_an_object] {
            assert!(!why.contains("SENT1"), "{why} quotes the payload");
        }
    }

    #[test]
    fn problems_keep_only_what_the_type_says() {
        assert_eq!(
            problem("unknown variant `SENT1, expected z`, expected one of `a`, `b`"),
            "unknown variant, expected one of `a`, `b`"
        );
        assert_eq!(
            problem("SENT1 is a custom message"),
            "a value that does not decode"
        );
    }
}
