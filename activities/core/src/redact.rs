//! Redaction of tool output: what is left of a line of dbt's, DuckDB's or Athena's text once
//! the values it may quote are blanked. Tool text does not enter workflow histories at all (it
//! goes to the log zone, see `toollog`); this is the defence in depth for what is printed from
//! there, and for the few error messages of our own that embed an engine's first line.

use crate::ports::KeyTag;

/// A line of a tool's output made safe for logs and workflow histories (defence in depth: tool
/// text should not reach them at all). Databases quote the values they choke on, in single or
/// double quotes or not at all ("Could not convert string 'Jane' to INT32", `invalid date field
/// format: "Jane", expected ...`, `Value cannot be cast to date: Jane`), so:
/// - single-quoted literals are blanked, and so are double-quoted ones once an error class
///   (`Conversion Error:`, `INVALID_CAST_ARGUMENT:`) has begun the message; before it, double
///   quotes are identifiers (tables, columns) and kept;
/// - after an error class, whatever follows a further `: ` is blanked (unquoted values come last);
/// - a quote inside a word (O'Brien) neither opens nor closes a literal, and an unclosed literal
///   blanks the rest of the line;
/// - quoted paths become key tags (relative to `lake_root` when under it).
pub fn redact_line(line: &str, lake_root: Option<&str>) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    let mut in_error = false;
    loop {
        let quote_at = next_opening_quote(rest);
        let class_end = if in_error {
            None
        } else {
            error_class_end(&rest[..quote_at.unwrap_or(rest.len())])
        };
        let colon_at = if in_error {
            rest[..quote_at.unwrap_or(rest.len())].find(": ")
        } else {
            None
        };
        if let Some(end) = class_end {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            in_error = true;
            continue;
        }
        if let Some(at) = colon_at {
            out.push_str(&rest[..at + 2]);
            out.push('…');
            return out;
        }
        let Some(at) = quote_at else { break };
        let quote = rest.as_bytes()[at] as char;
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = closing_quote(after, quote) else {
            out.push(quote);
            out.push('…');
            return out;
        };
        let inner = &after[..end];
        if let Some(key) = lake_root.and_then(|root| inner.strip_prefix(root)) {
            out.push_str(&KeyTag(key.trim_start_matches('/').to_owned()).to_string());
        } else if inner.contains('/') {
            out.push_str(&KeyTag(inner.to_owned()).to_string());
        } else if quote == '\'' || in_error {
            out.push(quote);
            out.push('…');
            out.push(quote);
        } else {
            out.push('"');
            out.push_str(inner);
            out.push('"');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A stored log made safe to print, line by line with [`redact_line`], and more: once a line
/// names an error class, the lines that continue it are blanked too (DuckDB prints the value it
/// choked on alone on the next line, under `strptime`'s caret, after `Original Line:`...), up to
/// the next line dbt starts with its timestamp (`12:00:01  `) or an empty line.
pub fn redact_log<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    lake_root: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_error = false;
    for line in lines {
        let trimmed = line.trim_start();
        let stamped = trimmed.get(..8).is_some_and(|t| {
            t.as_bytes()[2] == b':'
                && t.as_bytes()[5] == b':'
                && t.chars().all(|c| c.is_ascii_digit() || c == ':')
        });
        if stamped || trimmed.is_empty() {
            in_error = false;
        }
        if in_error {
            let indent = &line[..line.len() - trimmed.len()];
            out.push(format!("{indent}…"));
            continue;
        }
        let body = if stamped { &trimmed[8..] } else { trimmed };
        if error_class_end(body.split(['"', '\'']).next().unwrap_or_default()).is_some() {
            in_error = true;
        }
        out.push(unquoted_paths(&redact_line(line, lake_root), lake_root));
    }
    out
}

/// Paths under `lake_root` that a tool printed without quotes (DuckDB's CSV error lists
/// `file = /lake/raw/.../x.csv`), as key tags: a key can hold a name.
fn unquoted_paths(line: &str, lake_root: Option<&str>) -> String {
    let Some(root) = lake_root.filter(|r| !r.is_empty()) else {
        return line.to_owned();
    };
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find(root) {
        out.push_str(&rest[..at]);
        let path = &rest[at..];
        let end = path
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
            .unwrap_or(path.len());
        let key = path[root.len()..end].trim_start_matches('/');
        out.push_str(&KeyTag(key.to_owned()).to_string());
        rest = &path[end..];
    }
    out.push_str(rest);
    out
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// A quote that starts a literal: not preceded by a letter or digit (an apostrophe in O'Brien is
/// not one).
fn next_opening_quote(text: &str) -> Option<usize> {
    text.char_indices()
        .find(|&(at, c)| (c == '"' || c == '\'') && !is_word(text[..at].chars().next_back()))
        .map(|(at, _)| at)
}

/// The quote that ends a literal: not followed by a letter or digit ('O'Brien' is one literal).
/// A doubled quote is SQL's escape and stays inside.
fn closing_quote(text: &str, quote: char) -> Option<usize> {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != quote {
            continue;
        }
        match chars.peek() {
            Some(&(_, next)) if next == quote => {
                chars.next();
            }
            Some(&(_, next)) if is_word(Some(next)) => {}
            _ => return Some(at),
        }
    }
    None
}

/// The end of an error class at the start of a message: `<Words> Error:` / `Exception:` or an
/// upper-case code with an underscore (`INVALID_CAST_ARGUMENT:`), colon included.
fn error_class_end(text: &str) -> Option<usize> {
    text.match_indices(':').map(|(at, _)| at).find_map(|at| {
        let word_start = text[..at]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &text[word_start..at];
        let lower = word.to_ascii_lowercase();
        let code = word.len() >= 4
            && word.contains('_')
            && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        (lower.ends_with("error") || lower.ends_with("exception") || code).then_some(at + 1)
    })
}

#[cfg(test)]
mod tests {
    use super::{redact_line, redact_log};

    const NAME: &str = "ZZSENT";

    #[test]
    fn engine_errors_lose_the_value_however_it_is_quoted() {
        for line in [
            r#"Conversion Error: invalid date field format: "ZZSENT Moore", expected format is (YYYY-MM-DD)"#,
            "Conversion Error: Could not convert string 'ZZSENT Moore' to INT32",
            "INVALID_CAST_ARGUMENT: Value cannot be cast to date: ZZSENT Moore",
            "Conversion Error: invalid date field format: ZZSENT, expected format is (YYYY-MM-DD)",
            "Conversion Error: Could not convert string 'O'ZZSENT' to DATE",
            r#"Conversion Error: invalid date field format: "O'ZZSENT", expected format"#,
            "Binder Error: value 'it''s ZZSENT' is not a date",
            "Invalid Input Error: unterminated 'ZZSENT",
        ] {
            let redacted = redact_line(line, None);
            assert!(!redacted.contains(NAME), "{line}\n-> {redacted}");
            assert!(
                redacted.contains("Error:") || redacted.contains("ARGUMENT:"),
                "{redacted}"
            );
        }
        assert_eq!(
            redact_line(
                r#"Conversion Error: invalid date field format: "x", expected"#,
                None
            ),
            "Conversion Error: invalid date field format: …"
        );
    }

    #[test]
    fn a_log_loses_the_lines_that_continue_an_error() {
        let log = "12:00:01    Runtime Error in model bad (models/bad.sql)\n  \
                   Invalid Input Error: Could not parse string \"ZZSENT\" according to format\n  \
                   ZZSENT-1\n  ^\n\n  \
                   Conversion Error: CSV Error on Line: 3\nOriginal Line: p2,O'ZZSENT\n\
                   12:00:02  Done. PASS=1 ERROR=2";
        let out = redact_log(log.lines(), None);
        let text = out.join("\n");
        assert!(!text.contains(NAME), "{text}");
        assert!(text.contains("Runtime Error in model bad"), "{text}");
        assert!(
            text.contains("Invalid Input Error: Could not parse string"),
            "{text}"
        );
        assert!(
            text.contains("Conversion Error: CSV Error on Line: …"),
            "{text}"
        );
        assert_eq!(
            out.last().map(String::as_str),
            Some("12:00:02  Done. PASS=1 ERROR=2")
        );
        assert_eq!(out.len(), log.lines().count());
        let listed = redact_log(["  file = /lake/raw/x/m_ZZSENT.csv"], Some("/lake"));
        assert_eq!(
            listed,
            [format!(
                "  file = {}",
                crate::ports::KeyTag("raw/x/m_ZZSENT.csv".into())
            )]
        );
    }

    #[test]
    fn progress_lines_keep_identifiers_and_apostrophes_in_words() {
        for line in [
            "1 of 5 OK created sql view model main.stg_patients ... [OK in 0.05s]",
            r#"Failure in test not_null_stg_patients_id ("main"."stg_patients")"#,
            "Runtime Error in model stg_patients (models/staging/stg_patients.sql)",
            "Don't panic: this is dbt's progress line",
        ] {
            assert_eq!(redact_line(line, None), line);
        }
        assert_eq!(
            redact_line("could not read '/lake/raw/x/ZZSENT.csv'", Some("/lake")),
            format!(
                "could not read {}",
                crate::ports::KeyTag("raw/x/ZZSENT.csv".into())
            )
        );
    }
}
