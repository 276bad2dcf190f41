//! The worked example of the ingest workflow id in docs/clients.md, recomputed: the bytes hashed,
//! their digest and the id must be what the page prints, or another service following the page
//! would start a second workflow for a file lakegate already onboards.

use lakegate_models::ingest_workflow_id;
use sha2::{Digest, Sha256};

const BUCKET: &str = "lake";
const KEY: &str = "landing/emr/ehr/patients.csv";
/// The file's content; on the local backend its SHA-256 is the version.
const CONTENT: &[u8] = b"id,birthdate,gender\np1,1980-01-02,F\n";
const VERSION: &str = "040bdfd606eacd588c72714017c580827eee79bfbaf24c81bf4468c55f32f32b";
const HASHED: &str = "00000000000000046c616b65\
                      000000000000001c6c616e64696e672f656d722f6568722f70617469656e74732e637376\
                      0000000000000040\
                      30343062646664363036656163643538386337323731343031376335383038323765\
                      656537396266626166323463383162663434363863353566333266333262";
const DIGEST: &str = "748624563380170371ed3ce1fb97db504bd8ae950f7ad899dd1139e149075251";
const ID: &str = "ingest-748624563380170371ed3ce1fb97db50";

#[test]
fn the_documented_example_is_what_lakegate_computes() {
    assert_eq!(hex::encode(Sha256::digest(CONTENT)), VERSION);
    let hashed = hex::decode(HASHED).unwrap();
    assert_eq!(hashed.len(), 8 + 4 + 8 + 28 + 8 + 64);
    assert_eq!(hex::encode(Sha256::digest(&hashed)), DIGEST);
    assert_eq!(ingest_workflow_id(BUCKET, KEY, VERSION), ID);
    assert_eq!(&ID["ingest-".len()..], &DIGEST[..32]);
}

#[test]
fn the_page_shows_this_example() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/clients.md"))
        .unwrap();
    // The page groups the hex by part, one part a line.
    let shown: String = page
        .split("```text\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|w| w.len() >= 8 && w.len() % 2 == 0 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    assert_eq!(shown, HASHED, "docs/clients.md shows other bytes");
    for value in [KEY, VERSION, DIGEST, ID] {
        assert!(page.contains(value), "docs/clients.md lacks {value}");
    }
}
