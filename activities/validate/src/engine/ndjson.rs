//! NDJSON and FHIR: bounded lines, one JSON object each; FHIR adds `resourceType` and `id`.

use std::io::{self, BufRead};

use super::plan::State;
use crate::contract::Encoding;

impl State<'_> {
    pub(super) fn run_ndjson(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        let max = self.limits.max_record_bytes;
        let mut line = Vec::with_capacity(4096);
        let (mut overlong, mut nul, mut number) = (false, false, 0u64);
        loop {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                if !line.is_empty() || overlong {
                    number += 1;
                    self.json_line(&line, number, overlong, nul);
                }
                return Ok(());
            }
            let (take, done) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            let piece = &buf[..take];
            nul |= memchr::memchr(0, piece).is_some();
            if !overlong {
                if line.len() + piece.len() > max {
                    overlong = true;
                    line.clear();
                } else {
                    line.extend_from_slice(piece);
                }
            }
            input.consume(take + usize::from(done));
            if done {
                number += 1;
                self.json_line(&line, number, overlong, nul);
                line.clear();
                (overlong, nul) = (false, false);
                if line.capacity() > 1 << 20 {
                    line.shrink_to(4096);
                }
            }
        }
    }

    fn json_line(&mut self, line: &[u8], number: u64, overlong: bool, nul: bool) {
        let first = !self.header_seen;
        let mut line = line;
        if first && line.starts_with(b"\xEF\xBB\xBF") {
            line = &line[3..];
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if !overlong && line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.header_seen = true;
        self.rows += 1;
        let k = self.k;
        if nul {
            self.slots[self.nul].hit(number, k);
        }
        if overlong {
            self.slots[self.record_length].hit(number, k);
            return;
        }
        let transcoded;
        let text: &[u8] = if self.table.format.encoding == Encoding::Latin1 {
            transcoded = line.iter().map(|&b| b as char).collect::<String>();
            transcoded.as_bytes()
        } else if std::str::from_utf8(line).is_err() {
            if let Some(s) = self.utf8 {
                self.slots[s].hit(number, k);
            }
            return;
        } else {
            line
        };
        let value: serde_json::Value = match serde_json::from_slice(text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                self.slots[self.parses].hit(number, k);
                return;
            }
        };
        if let Some(s) = self.fhir {
            let declared = self.table.format.resource_type.as_deref();
            let rt = value.get("resourceType").and_then(|v| v.as_str());
            let id_ok = value
                .get("id")
                .and_then(|v| v.as_str())
                .is_some_and(|id| !id.is_empty());
            let rt_ok = rt.is_some_and(|rt| !rt.is_empty() && declared.is_none_or(|d| d == rt));
            if !(id_ok && rt_ok) {
                self.slots[s].hit(number, k);
            }
        }
        if !self.conds.is_empty() {
            // A condition on an array path holds when any element has one of the values.
            let conds: Vec<bool> =
                self.conds
                    .iter()
                    .map(|cond| {
                        let mut found = Vec::new();
                        lookup_all(&value, &self.cols[cond.col].path, false, &mut found);
                        found.iter().flatten().any(|v| {
                            scalar(v).is_some_and(|b| cond.values.iter().any(|a| a[..] == *b))
                        })
                    })
                    .collect();
            for (cond, holds) in self.conds.iter_mut().zip(conds) {
                cond.holds = holds;
            }
        }
        let mut found = Vec::new();
        for c in 0..self.cols.len() {
            if self.cols[c].wildcard {
                // Every element is a value of the column; a line without any is one null.
                found.clear();
                lookup_all(&value, &self.cols[c].path, false, &mut found);
                self.cols[c].seen |= found.iter().any(Option::is_some);
                if found.is_empty() {
                    self.check_cell(c, None, number);
                }
                for v in &found {
                    self.check_cell(c, v.and_then(scalar).as_deref(), number);
                }
                continue;
            }
            let cell = lookup(&value, &self.cols[c].path);
            self.cols[c].seen |= cell.is_some();
            self.check_cell(c, cell.and_then(scalar).as_deref(), number);
        }
        self.end_row(number);
    }
}

/// A JSON value as the bytes the cell checks see; None for null.
fn scalar(v: &serde_json::Value) -> Option<std::borrow::Cow<'_, [u8]>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.as_bytes().into()),
        serde_json::Value::Bool(b) => Some(if *b { &b"true"[..] } else { &b"false"[..] }.into()),
        serde_json::Value::Number(n) => Some(n.to_string().into_bytes().into()),
        other => Some(other.to_string().into_bytes().into()),
    }
}

fn lookup<'v>(value: &'v serde_json::Value, path: &[String]) -> Option<&'v serde_json::Value> {
    let mut v = value;
    for seg in path {
        v = match v {
            serde_json::Value::Object(m) => m.get(seg)?,
            serde_json::Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Every value at `path`, where a `*` segment stands for each element of an array (or each
/// value of an object). Below a `*`, an element without the rest of the path is a `None`, so
/// `required` sees it; `None`s alone do not make the path seen.
fn lookup_all<'v>(
    value: &'v serde_json::Value,
    path: &[String],
    under_star: bool,
    out: &mut Vec<Option<&'v serde_json::Value>>,
) {
    let Some((seg, rest)) = path.split_first() else {
        out.push(Some(value));
        return;
    };
    let next = match (value, seg.as_str()) {
        (serde_json::Value::Array(a), "*") => {
            a.iter().for_each(|e| lookup_all(e, rest, true, out));
            return;
        }
        (serde_json::Value::Object(m), "*") => {
            m.values().for_each(|e| lookup_all(e, rest, true, out));
            return;
        }
        (serde_json::Value::Object(m), _) => m.get(seg),
        (serde_json::Value::Array(a), _) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    };
    match next {
        Some(e) => lookup_all(e, rest, under_star, out),
        None if under_star => out.push(None),
        None => {}
    }
}
