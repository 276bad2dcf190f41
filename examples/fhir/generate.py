#!/usr/bin/env python3
"""Writes a small synthetic FHIR R4 Bulk Data export for fhir.yaml (deterministic: same seed, same bytes).

    python3 examples/fhir/generate.py [--out examples/fhir/sample] [--seed 16] [--patients 100]

Dates come in every precision FHIR allows (year, year-month, full date; dateTimes with and
without a fraction, `Z` or an offset); every Observation's subject is a generated Patient.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sample_args import parse  # noqa: E402


def main():
    a, rng = parse(__file__, "patients", 100)
    dump = lambda r: json.dumps(r, separators=(",", ":")) + "\n"

    ids = []
    with open(os.path.join(a.out, "Patient.ndjson"), "w") as f:
        for i in range(a.patients):
            pid = f"pat-{i:05d}"
            ids.append(pid)
            y, m, d = rng.randint(1930, 2020), rng.randint(1, 12), rng.randint(1, 28)
            birth = rng.choice([f"{y}", f"{y}-{m:02d}", f"{y}-{m:02d}-{d:02d}"])
            telecom = [{"system": "phone", "value": f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"}]
            if rng.random() < 0.5:
                telecom.append({"system": "email", "value": f"user{i}@example.org"})
            updated = rng.choice(["2025-06-01T10:00:00Z", "2025-06-01T10:00:00.123456Z",
                                  "2025-06-01T12:00:00+02:00"])
            f.write(dump({
                "resourceType": "Patient", "id": pid, "meta": {"lastUpdated": updated},
                "name": [{"family": rng.choice(["Smith", "Garcia", "Nguyen", "Okafor"]),
                          "given": [rng.choice(["Ana", "Li", "Sam"])]}],
                "gender": rng.choice(["male", "female", "other", "unknown"]),
                "birthDate": birth, "telecom": telecom,
                "address": [{"postalCode": f"{rng.randint(1000, 99999):05d}"}],
            }))

    loinc = [("8867-4", "/min"), ("8480-6", "mm[Hg]"), ("2339-0", "mg/dL"), ("29463-7", "kg")]
    with open(os.path.join(a.out, "Observation.ndjson"), "w") as f:
        for i in range(a.patients * 4):
            code, unit = rng.choice(loinc)
            m, d = rng.randint(1, 12), rng.randint(1, 28)
            hh, mm = rng.randint(0, 23), rng.randint(0, 59)
            effective = rng.choice([
                f"2025-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:00Z",
                f"2025-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:00.5+01:00",
                f"2025-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:07.123456Z",
                f"2025-{m:02d}-{d:02d}", f"2025-{m:02d}", "2025",
            ])
            f.write(dump({
                "resourceType": "Observation", "id": f"obs-{i:06d}",
                "status": rng.choice(["final", "amended", "preliminary"]),
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/{rng.choice(ids)}"},
                "effectiveDateTime": effective,
                "valueQuantity": {"value": round(rng.uniform(1, 300), 1), "unit": unit},
            }))


if __name__ == "__main__":
    main()
