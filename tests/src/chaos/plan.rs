//! The files of a run and what becomes of each, drawn from the run's seed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lakegate_models::Zone;

use super::{BUCKET, ChaosOptions, DATASET, SOURCE};

/// What happens to a file, decided when it is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Valid,
    Approve,
    Reject,
    /// Nobody reviews it: the review timeout rejects it.
    Timeout,
}

impl Fate {
    pub(super) fn zone(self) -> Zone {
        match self {
            Fate::Valid | Fate::Approve => Zone::Raw,
            Fate::Reject | Fate::Timeout => Zone::Rejected,
        }
    }
}

pub(super) struct Planned {
    pub(super) path: PathBuf,
    pub(super) sha256: String,
    pub(super) workflow_id: String,
    pub(super) fate: Fate,
}

/// A seeded generator (splitmix64), so a run's kill moments and file fates can be replayed from
/// its printed seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub(super) fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % (span + 1))
    }
}

/// The sentinel stems planted in every run's files: a patient name and an MRN-like id. Each cell
/// gets a stem plus a file number, so searching for the stems finds any of them.
pub fn sentinel_stems(seed: u64) -> [String; 2] {
    let token = format!("{:08x}", Rng(seed ^ 0x5eed).next() as u32);
    [format!("ZZLEAK-{token}"), format!("SENTINEL-{token}")]
}

const HEADER: &str = "Id,MRN,BIRTHDATE,DEATHDATE,SSN,DRIVERS,PREFIX,FIRST,LAST,MARITAL,RACE,\
                      ETHNICITY,GENDER,BIRTHPLACE,ADDRESS,CITY,STATE,COUNTY,ZIP,LAT,LON";

/// A small patients extract (examples/ehr/contracts/ehr.yaml) with sentinels in its name and MRN
/// cells. Invalid files lack a required cell in their second row, the row whose name is a
/// sentinel too.
fn patients_csv(n: usize, valid: bool, stems: &[String; 2]) -> String {
    let [name, mrn] = stems;
    let mut body = format!("{HEADER}\n");
    for row in 0..3 {
        let broken = !valid && row == 1;
        let id = if broken && n.is_multiple_of(2) {
            String::new()
        } else {
            format!("chaos-{n}-{row}")
        };
        let birthdate = if broken && !n.is_multiple_of(2) {
            ""
        } else {
            "1980-01-02"
        };
        body.push_str(&format!(
            "{id},{mrn}-{n}-{row},{birthdate},,,,,{name}-{n}-{row},Doe,,,,F,,,,,,,,\n"
        ));
    }
    body
}

pub(super) fn plan(
    options: &ChaosOptions,
    rng: &mut Rng,
    dir: &Path,
) -> anyhow::Result<Vec<Planned>> {
    let stems = sentinel_stems(options.seed);
    let invalid = options.files * options.invalid_percent / 100;
    // A partial shuffle picks exactly `invalid` files to fail.
    let mut order: Vec<usize> = (0..options.files).collect();
    for i in 0..invalid.min(order.len()) {
        let j = i + rng.below(order.len() - i);
        order.swap(i, j);
    }
    let mut fates = vec![Fate::Valid; options.files];
    for (k, &i) in order.iter().take(invalid).enumerate() {
        fates[i] = [Fate::Approve, Fate::Reject, Fate::Timeout][k % 3];
    }
    std::fs::create_dir_all(dir)?;
    let mut planned = Vec::with_capacity(options.files);
    for (n, fate) in fates.into_iter().enumerate() {
        let name = format!("patients_{n:04}.csv");
        let path = dir.join(&name);
        std::fs::write(&path, patients_csv(n, fate == Fate::Valid, &stems))?;
        let sha256 = lakegate_local::content_sha256(&path)?;
        let key = format!("{}{SOURCE}/{DATASET}/{name}", Zone::Landing.prefix());
        planned.push(Planned {
            workflow_id: lakegate_models::ingest_workflow_id(BUCKET, &key, &sha256),
            path,
            sha256,
            fate,
        });
    }
    Ok(planned)
}

pub(super) fn fate_name(fate: Fate) -> &'static str {
    match fate {
        Fate::Valid => "valid",
        Fate::Approve => "invalid+approved",
        Fate::Reject => "invalid+rejected",
        Fate::Timeout => "invalid+review timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo_root;

    #[test]
    fn valid_and_invalid_files_are_told_apart_by_the_contract() {
        let contracts =
            lakegate_validate::ContractSet::load_dir(&repo_root().join("examples/ehr/contracts"))
                .unwrap();
        let (contract, table) = contracts
            .resolve("landing/chaos/ehr/patients_0001.csv")
            .unwrap();
        let stems = sentinel_stems(7);
        for (n, valid) in [(1, true), (2, false), (3, false)] {
            let body = patients_csv(n, valid, &stems);
            let report = lakegate_validate::validate_with(
                contract,
                table,
                body.as_bytes(),
                &lakegate_validate::ValidateOptions::default(),
            )
            .unwrap();
            assert_eq!(
                report.verdict == lakegate_models::Verdict::Pass,
                valid,
                "file {n}: {report:?}"
            );
            assert!(body.contains(&format!("{}-{n}-1", stems[0])));
        }
    }

    #[test]
    fn the_seed_replays_the_same_moments() {
        let draw = |seed| {
            let mut rng = Rng(seed);
            (0..5)
                .map(|_| rng.between(Duration::from_secs(1), Duration::from_secs(4)))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        assert!(draw(42).iter().all(|d| (1..=4).contains(&d.as_secs())));
    }
}
