//! Memory stays bounded on hostile input. This file holds one test so that the process's peak
//! resident set (VmHWM) reflects only it.

mod common;

use std::io::{self, Read};

use common::*;
use lakegate_models::Verdict;
use lakegate_validate::{ValidateOptions, validate_with};

/// `head`, then `n` filler bytes produced on the fly, then `tail`: a big file that costs no memory
/// in the test itself.
struct Lazy {
    head: io::Cursor<Vec<u8>>,
    filler: u64,
    tail: io::Cursor<Vec<u8>>,
}

impl Read for Lazy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.filler > 0 {
            let n = buf
                .len()
                .min(usize::try_from(self.filler).unwrap_or(usize::MAX));
            buf[..n].fill(b'x');
            self.filler -= n as u64;
            return Ok(n);
        }
        self.tail.read(buf)
    }
}

fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn hundred_megabyte_line_and_gzip_bomb_stay_in_bounded_memory() {
    const MB: u64 = 1 << 20;
    let before = peak_rss_kb();

    let csv = "dataset: d\ntables:\n  - name: t\n    columns: [{ name: id }, { name: note }]\n";
    let c = contract(csv);
    let input = Lazy {
        head: io::Cursor::new(b"id,note\n1,".to_vec()),
        filler: 100 * MB,
        tail: io::Cursor::new(b"\n2,ok\n".to_vec()),
    };
    let r = validate_with(&c, &c.tables[0], input, &ValidateOptions::default()).unwrap();
    assert_eq!(failed(&r), ["record_length"]);
    assert_eq!((r.rows, r.bytes), (2, 100 * MB + 16));

    let ndjson = "dataset: d\ntables:\n  - name: t\n    format: { kind: ndjson }\n    columns: [{ name: id }]\n";
    let c = contract(ndjson);
    let input = Lazy {
        head: io::Cursor::new(b"{\"id\":\"".to_vec()),
        filler: 100 * MB,
        tail: io::Cursor::new(b"\"}\n{\"id\":2}\n".to_vec()),
    };
    let r = validate_with(&c, &c.tables[0], input, &ValidateOptions::default()).unwrap();
    assert_eq!(failed(&r), ["record_length"]);
    assert_eq!(r.rows, 2);

    // 1 GiB of zeros as 64 gzip members of 16 MiB each (a valid multi-member gzip file, about
    // 1 MB); the default ratio limit stops it early.
    let c = contract(csv);
    let member = gzip(&vec![b'0'; 16 * MB as usize]);
    let bomb = member.repeat(64);
    let r = validate_with(&c, &c.tables[0], &bomb[..], &ValidateOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(!outcome(&r, "decompression_limit", None).passed);
    drop(bomb);

    let grown_mb = (peak_rss_kb() - before) / 1024;
    assert!(grown_mb < 40, "peak RSS grew by {grown_mb} MB");
}
