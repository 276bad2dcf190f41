//! Reading a bounded sample of a file for drafting: the first N records of a CSV (any
//! delimiter, gzip detected) or NDJSON file, with record length capped, so a file of any size
//! costs at most N records of memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use crate::engine::grow;

/// Longest record or line kept; longer ones are skipped (and counted).
pub(super) const MAX_RECORD_BYTES: usize = 1 << 20;

/// How far a file was read.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Coverage {
    pub(super) rows: u64,
    /// The file had more rows than the sample took.
    pub(super) truncated: bool,
    /// Lines or records skipped: too long, or not a JSON object.
    pub(super) skipped: u64,
}

/// The file's bytes, gunzipped when they start with the gzip magic number.
pub(super) fn open(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::new(File::open(path)?);
    let gz = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// One line of at most [`MAX_RECORD_BYTES`]; Ok(None) at the end. An overlong line is drained
/// and handed back empty with `overlong` set.
fn bounded_line(input: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let n = Read::take(&mut *input, MAX_RECORD_BYTES as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_RECORD_BYTES && line.last() != Some(&b'\n') {
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m =
                Read::take(&mut *input, MAX_RECORD_BYTES as u64).read_until(b'\n', &mut rest)?;
            if m == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
        line.clear();
        return Ok(Some(true));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(false))
}

/// The delimiter of a CSV header line: whichever of `,` `\t` `;` `|` it has most of.
pub(super) fn sniff_delimiter(path: &Path) -> io::Result<u8> {
    let mut input = open(path)?;
    let mut line = Vec::new();
    bounded_line(&mut *input, &mut line)?;
    Ok([b',', b'\t', b';', b'|']
        .into_iter()
        .max_by_key(|d| (memchr::memchr_iter(*d, &line).count(), *d == b','))
        .unwrap_or(b','))
}

/// Calls `each` with the header (row 0) and then up to `limit` data records of a CSV file.
pub(super) fn csv(
    path: &Path,
    delimiter: u8,
    limit: u64,
    mut each: impl FnMut(u64, &[Vec<u8>]),
) -> io::Result<Coverage> {
    let mut input = open(path)?;
    let mut core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let mut out = vec![0u8; 64 * 1024];
    let mut ends = vec![0usize; 256];
    let (mut outlen, mut endlen) = (0, 0);
    let mut cov = Coverage::default();
    let mut row = 0u64;
    let mut fields: Vec<Vec<u8>> = Vec::new();
    let mut overlong = false;
    loop {
        let buf = input.fill_buf()?;
        let (res, nin, nout, nend) = core.read_record(buf, &mut out[outlen..], &mut ends[endlen..]);
        input.consume(nin);
        outlen += nout;
        endlen += nend;
        match res {
            csv_core::ReadRecordResult::InputEmpty => {}
            csv_core::ReadRecordResult::OutputFull => {
                if !grow(&mut out, MAX_RECORD_BYTES) {
                    overlong = true;
                    outlen = 0;
                }
            }
            csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            csv_core::ReadRecordResult::Record => {
                if overlong {
                    cov.skipped += 1;
                } else {
                    fields.clear();
                    let mut start = 0;
                    for &end in &ends[..endlen] {
                        fields.push(out[start..end].to_vec());
                        start = end;
                    }
                    // A blank line is no record for the validator either.
                    if !(fields.len() == 1 && fields[0].is_empty()) {
                        if row > limit {
                            cov.truncated = true;
                            return Ok(cov);
                        }
                        if row > 0 {
                            cov.rows += 1;
                        }
                        each(row, &fields);
                        row += 1;
                    }
                }
                (outlen, endlen, overlong) = (0, 0, false);
            }
            csv_core::ReadRecordResult::End => return Ok(cov),
        }
    }
}

/// Calls `each` with up to `limit` JSON objects of an NDJSON file.
pub(super) fn ndjson(
    path: &Path,
    limit: u64,
    mut each: impl FnMut(&serde_json::Value),
) -> io::Result<Coverage> {
    let mut input = open(path)?;
    let mut line = Vec::new();
    let mut cov = Coverage::default();
    while let Some(overlong) = bounded_line(&mut *input, &mut line)? {
        let text = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
        if !overlong && text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if cov.rows >= limit {
            cov.truncated = true;
            break;
        }
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(v @ serde_json::Value::Object(_)) if !overlong => {
                cov.rows += 1;
                each(&v);
            }
            _ => cov.skipped += 1,
        }
    }
    Ok(cov)
}
