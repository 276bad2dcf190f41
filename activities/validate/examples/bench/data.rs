//! The generated inputs: an EHR-like encounters CSV with a few planted problems, and FHIR-like
//! Observations as NDJSON. Deterministic, so every run measures the same bytes.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Result;

/// xorshift64*: fast, deterministic, good enough to make varied rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Writes rows until the file reaches `target` bytes. Data is clean except for a small, fixed
/// share of planted problems so that every check has something to find. The notes repeat six
/// templates unless `distinct_notes`: then each note ends with the row number in letters (no
/// digits, so the PHI prefilter sees what it saw), and no two rows share one.
pub(crate) fn generate(path: &Path, target: u64, distinct_notes: bool) -> Result<u64> {
    const DX: [&str; 8] = [
        "E11.9", "I10", "J45.909", "M54.5", "N39.0", "F32.9", "K21.9", "Z00.00",
    ];
    const DESC: [&str; 8] = [
        "Type 2 diabetes mellitus without complications",
        "Essential (primary) hypertension",
        "Unspecified asthma, uncomplicated",
        "Low back pain",
        "Urinary tract infection, site not specified",
        "Major depressive disorder, single episode",
        "Gastro-esophageal reflux disease without esophagitis",
        "Encounter for general adult medical examination",
    ];
    const FACILITY: [&str; 4] = [
        "North Campus",
        "St. Elsewhere General",
        "Riverside Clinic",
        "Lakeside Medical Center",
    ];
    const PAYER: [&str; 5] = ["Medicare", "Medicaid", "Commercial", "Self-pay", "Tricare"];
    const NOTES: [&str; 6] = [
        "Patient tolerated procedure well; follow up in two weeks.",
        "Discharged home with instructions.",
        "Labs pending, see chart.",
        "No acute distress.",
        "Referred to cardiology for further evaluation of chest pain.",
        "",
    ];
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(
        w,
        "encounter_id,patient_id,mrn,gender,age,zip3,admit_date,discharge_date,dx_code,dx_desc,proc_code,provider_id,facility,payer,charge,los_days,readmit,status,note,updated_at"
    )?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut written = 0u64;
    let mut row = 0u64;
    let mut line = String::with_capacity(512);
    use std::fmt::Write as _;
    while written < target {
        row += 1;
        line.clear();
        let r = rng.next();
        let (y, m, d) = (2000 + rng.below(26), 1 + rng.below(12), 1 + rng.below(28));
        let los = rng.below(15);
        let gender = if row.is_multiple_of(100_003) {
            "X"
        } else {
            rng.pick(&["F", "M", "U"])
        };
        let discharge = if r.is_multiple_of(50) {
            String::new()
        } else {
            format!("{y}-{m:02}-{:02}", (d + los).min(28))
        };
        let mut note = match row % 200_000 {
            0 => "Pt called from 555-867-5309 re: results",
            1 => "SSN on intake form 123-45-6789",
            _ => rng.pick(&NOTES),
        }
        .to_owned();
        if distinct_notes {
            note.push_str(" ref ");
            let mut n = row;
            while n > 0 {
                note.push(char::from(b'a' + (n % 26) as u8));
                n /= 26;
            }
        }
        let _ = write!(
            line,
            "{row},P{:08},MRN{:07},{gender},{},{:03},{y}-{m:02}-{d:02},{discharge},{},\"{}\",{:05},DR{:05},{},{},{}.{:02},{los},{},{},\"{note}\",{y}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rng.below(2_000_000),
            rng.below(9_999_999),
            rng.below(100),
            rng.below(1000),
            rng.pick(&DX),
            rng.pick(&DESC),
            rng.below(100_000),
            rng.below(50_000),
            rng.pick(&FACILITY),
            rng.pick(&PAYER),
            rng.below(50_000),
            rng.below(100),
            rng.pick(&["true", "false"]),
            rng.pick(&["open", "closed", "closed", "cancelled"]),
            rng.below(24),
            rng.below(60),
            rng.below(60),
        );
        line.push('\n');
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    w.flush()?;
    Ok(row)
}

/// FHIR-like Observations with two codings each, until `target` bytes; returns the size.
pub(crate) fn generate_ndjson(path: &Path, target: u64) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = Rng(0x5eed_0016);
    let mut written = 0u64;
    let mut i = 0u64;
    while written < target {
        i += 1;
        let line = format!(
            "{{\"resourceType\":\"Observation\",\"id\":\"obs-{i}\",\"status\":\"final\",\"code\":{{\"coding\":[{{\"system\":\"http://loinc.org\",\"code\":\"{}-{}\"}},{{\"system\":\"urn:local\",\"code\":\"L{}\"}}]}},\"subject\":{{\"reference\":\"Patient/P{:08}\"}},\"effectiveDateTime\":\"2025-0{}-1{}T10:{:02}:00.{}Z\",\"valueQuantity\":{{\"value\":{}.{},\"unit\":\"mg/dL\"}}}}\n",
            1000 + rng.below(9000),
            rng.below(10),
            rng.below(100_000),
            rng.below(2_000_000),
            1 + rng.below(9),
            rng.below(10),
            rng.below(60),
            rng.below(1000),
            rng.below(300),
            rng.below(10)
        );
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    w.flush()?;
    Ok(written)
}
