//! Reading the worker's Prometheus endpoint the way Prometheus does: one GET of `/metrics`, then
//! single samples looked up in the text exposition format.
//!
//! The lookup is written here rather than taken from a crate: the tests need one operation (the
//! value of one series), the format's sample lines are simple, and the parser crates on
//! crates.io either stopped being released or bring a date-time and an iterator library for
//! timestamps and groupings these tests never read.

use std::net::SocketAddr;

use lakegate_activities::testing::http;

/// The text a GET of `http://<addr>/metrics` returns: what Prometheus scrapes.
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    let response = http::get(&format!("http://{addr}/metrics"))
        .await
        .map_err(|e| anyhow::anyhow!("scraping {addr}: {e}"))?;
    anyhow::ensure!(
        response.status == 200,
        "{addr}/metrics answered {}",
        response.status
    );
    Ok(response.text())
}

/// The value of the sample `name{labels}` in a scrape: the first series of that name whose
/// labels include all of `labels`, in any order.
pub fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let found = parse_line(line)?;
        let matches = found.name == name
            && labels
                .iter()
                .all(|(k, v)| found.labels.iter().any(|(fk, fv)| fk == k && fv == v));
        matches.then_some(found.value)
    })
}

/// One sample line, its label values unescaped.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// `name{k="v",...} value [timestamp]`; `None` for comments, blank and malformed lines.
fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches([' ', ',']);
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"")?;
            let (value, after) = quoted(after)?;
            labels.push((key.trim(), value));
            inner = after;
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// A label value up to its closing quote, unescaped, and what follows the quote.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::sample;

    const SCRAPE: &str = r#"# HELP lakegate_files_total Files that reached an outcome
# TYPE lakegate_files_total counter
lakegate_files_total{dataset="ehr",outcome="promoted",service_name="temporal-core-sdk"} 2
lakegate_files_total{outcome="quarantined",dataset="ehr"} 1
lakegate_files_total_extra{dataset="ehr",outcome="promoted"} 9
lakegate_crawl_duration_seconds_bucket{dataset="ehr",le="+Inf"} 3
lakegate_crawl_duration_seconds_count{dataset="ehr"} 3 1700000000000
lakegate_odd{dataset="a,b}\"c\\",outcome="x"} 4.5
temporal_up 1
"#;

    #[test]
    fn finds_a_series_whatever_the_label_order_and_extra_labels() {
        let ehr = |outcome| [("dataset", "ehr"), ("outcome", outcome)];
        assert_eq!(
            sample(SCRAPE, "lakegate_files_total", &ehr("promoted")),
            Some(2.0)
        );
        assert_eq!(
            sample(SCRAPE, "lakegate_files_total", &ehr("quarantined")),
            Some(1.0)
        );
        assert_eq!(
            sample(SCRAPE, "lakegate_files_total", &ehr("rejected")),
            None
        );
    }

    #[test]
    fn a_name_must_match_whole_and_labels_are_optional() {
        assert_eq!(sample(SCRAPE, "lakegate_files", &[]), None);
        assert_eq!(sample(SCRAPE, "temporal_up", &[]), Some(1.0));
        assert_eq!(
            sample(SCRAPE, "lakegate_files_total_extra", &[("dataset", "ehr")]),
            Some(9.0)
        );
    }

    #[test]
    fn reads_infinite_buckets_timestamps_and_escaped_label_values() {
        let count = "lakegate_crawl_duration_seconds_count";
        assert_eq!(sample(SCRAPE, count, &[("dataset", "ehr")]), Some(3.0));
        let bucket = "lakegate_crawl_duration_seconds_bucket";
        assert_eq!(sample(SCRAPE, bucket, &[("le", "+Inf")]), Some(3.0));
        let odd = [("dataset", "a,b}\"c\\"), ("outcome", "x")];
        assert_eq!(sample(SCRAPE, "lakegate_odd", &odd), Some(4.5));
    }

    #[test]
    fn comments_and_malformed_lines_are_no_samples() {
        assert_eq!(sample("# TYPE x counter\nx{a=\"1\" 3\n", "x", &[]), None);
        assert_eq!(sample("x not-a-number\n", "x", &[]), None);
    }
}
