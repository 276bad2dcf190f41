#!/usr/bin/env python3
"""Writes a small synthetic OMOP-shaped extract for omop.yaml (deterministic: same seed, same bytes).

    python3 examples/omop/generate.py [--out examples/omop/sample] [--seed 16] [--persons 200]

Every visit points at a generated person and every condition at a person and a visit, so the
sample passes the contract; the tests derive the failing cases (orphans, a re-sent duplicate, a
collapsed day) from it.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sample_args import parse  # noqa: E402


def main():
    a, rng = parse(__file__, "persons", 200)

    persons = []
    with open(os.path.join(a.out, "person.csv"), "w", newline="") as f:
        f.write("person_id,gender_concept_id,year_of_birth,month_of_birth,birth_datetime,"
                "race_concept_id,person_source_value\n")
        for i in range(1, a.persons + 1):
            pid = 1000 + i
            persons.append(pid)
            year = rng.randint(1930, 2020)
            month = rng.randint(1, 12)
            day = rng.randint(1, 28)
            frac = rng.choice(["", ".5", ".123456"])
            f.write(f"{pid},{rng.choice([8507, 8532, 8551])},{year},{month},"
                    f"{year}-{month:02d}-{day:02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00{frac},"
                    f"{rng.choice([8527, 8516, 8515, ''])},P{rng.randint(10**7, 10**8 - 1)}\n")

    visits = []
    with open(os.path.join(a.out, "visit_occurrence.csv"), "w", newline="") as f:
        f.write("visit_occurrence_id,person_id,visit_concept_id,visit_start_date,"
                "visit_start_datetime,visit_end_date,visit_source_value\n")
        for i in range(1, a.persons * 3 + 1):
            vid = 50000 + i
            pid = rng.choice(persons)
            visits.append((vid, pid))
            m, d = rng.randint(1, 12), rng.randint(1, 27)
            start = f"2025-{m:02d}-{d:02d}"
            end = f"2025-{m:02d}-{d + rng.randint(0, 1):02d}"
            hh, mm = rng.randint(0, 23), rng.randint(0, 59)
            # Mixed precision, as real feeds send it: with a fraction, without, space-separated.
            ts = rng.choice([f"{start}T{hh:02d}:{mm:02d}:00", f"{start}T{hh:02d}:{mm:02d}:00.250",
                             f"{start} {hh:02d}:{mm:02d}:00"])
            f.write(f"{vid},{pid},{rng.choice([9201, 9202, 9203])},{start},{ts},{end},"
                    f"{rng.choice(['IP', 'OP', 'ER'])}\n")

    icd = ["E11.9", "I10", "J45.909", "M54.5", "F32.A", "K21.9"]
    snomed = ["44054006", "38341003", "195967001", "279039007"]
    with open(os.path.join(a.out, "condition_occurrence.csv"), "w", newline="") as f:
        f.write("condition_occurrence_id,person_id,condition_concept_id,condition_start_date,"
                "condition_end_date,visit_occurrence_id,condition_source_value,"
                "condition_source_vocabulary\n")
        for i in range(1, a.persons * 4 + 1):
            vid, pid = rng.choice(visits)
            m, d = rng.randint(1, 12), rng.randint(1, 20)
            vocab = rng.choice(["ICD10CM", "SNOMED"])
            code = rng.choice(icd if vocab == "ICD10CM" else snomed)
            end = rng.choice(["", f"2025-{m:02d}-{d + rng.randint(0, 8):02d}"])
            f.write(f"{900000 + i},{pid},{rng.randint(100000, 999999)},2025-{m:02d}-{d:02d},{end},"
                    f"{vid},{code},{vocab}\n")


if __name__ == "__main__":
    main()
