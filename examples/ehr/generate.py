#!/usr/bin/env python3
"""Deterministic synthetic EHR extracts for lakegate's demo and tests.

Writes Synthea-like CSV extracts (patients, encounters, conditions, observations, medications),
optionally a FHIR R4 Bulk Data NDJSON variant (Patient, Encounter, Condition), a few deliberately
bad files under bad/, and manifest.json with every row count the pipeline should end up with.

Everything is fake: names carry digits the way Synthea's do, SSNs use the never-issued 999 area,
MRNs are random. The same --seed and --patients always give byte-identical output (no clock, no
hash randomisation), so tests can compare against the manifest.

Layout under --out (each file's landing key is landing/synthea/<dataset>/<file>):
    ehr/<table>.csv               good CSV extracts              (dataset "ehr")
    ehr_fhir/<Resource>.ndjson    good FHIR NDJSON, with --fhir  (dataset "ehr_fhir")
    bad/ehr/<file>.csv            files the demo should quarantine
    manifest.json

Usage: .venv/bin/python examples/ehr/generate.py --seed 42 --patients 200 --out DIR [--fhir]
       [--files N]  (split the extracts into about N files, for backfills)
Python standard library only.
"""

import argparse
import csv
import datetime as dt
import json
import os
import random
import uuid

# A fixed "today": output must not depend on when the generator runs.
REFERENCE_DATE = dt.date(2026, 1, 1)

FIRST_FEMALE = ["Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
                "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Emily",
                "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie", "Maria"]
FIRST_MALE = ["James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph",
              "Thomas", "Christopher", "Charles", "Daniel", "Matthew", "Anthony", "Mark", "Donald",
              "Steven", "Andrew", "Paul", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Jose"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
        "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
        "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright"]
STREETS = ["Main St", "Oak Ave", "Maple Rd", "Cedar Ln", "Pine St", "Elm St", "Washington Blvd",
           "Lake Dr", "Hill Rd", "Park Ave", "River Rd", "Sunset Blvd"]
# (city, county, zip prefix, lat, lon): a fictional spread over Massachusetts, as Synthea's default.
CITIES = [("Boston", "Suffolk County", "021", 42.36, -71.06),
          ("Worcester", "Worcester County", "016", 42.26, -71.80),
          ("Springfield", "Hampden County", "011", 42.10, -72.59),
          ("Cambridge", "Middlesex County", "021", 42.37, -71.11),
          ("Lowell", "Middlesex County", "018", 42.63, -71.32),
          ("Brockton", "Plymouth County", "023", 42.08, -71.02),
          ("Quincy", "Norfolk County", "021", 42.25, -71.00),
          ("Lynn", "Essex County", "019", 42.47, -70.95)]
RACES = [("white", 70), ("black", 9), ("asian", 7), ("hispanic", 0), ("native", 1), ("other", 3)]
MARITAL = ["M", "S", "D", "W", ""]

# (class, SNOMED code, description, FHIR ActCode)
ENCOUNTER_TYPES = [
    ("wellness", "162673000", "General examination of patient (procedure)", "AMB"),
    ("ambulatory", "185345009", "Encounter for symptom", "AMB"),
    ("ambulatory", "185349003", "Encounter for check up (procedure)", "AMB"),
    ("outpatient", "390906007", "Follow-up encounter", "AMB"),
    ("urgentcare", "702927004", "Urgent care clinic (environment)", "AMB"),
    ("emergency", "50849002", "Emergency room admission (procedure)", "EMER"),
    ("inpatient", "183452005", "Emergency hospital admission (procedure)", "IMP"),
]
ENCOUNTER_WEIGHTS = [30, 25, 15, 12, 8, 6, 4]
ENCOUNTER_CLASSES = sorted({t[0] for t in ENCOUNTER_TYPES})

CONDITIONS = [
    ("44054006", "Diabetes mellitus type 2 (disorder)", True),
    ("38341003", "Hypertension (disorder)", True),
    ("55822004", "Hyperlipidemia (disorder)", True),
    ("15777000", "Prediabetes (finding)", True),
    ("271737000", "Anemia (disorder)", True),
    ("40055000", "Chronic sinusitis (disorder)", True),
    ("195662009", "Acute viral pharyngitis (disorder)", False),
    ("10509002", "Acute bronchitis (disorder)", False),
    ("444814009", "Viral sinusitis (disorder)", False),
    ("233604007", "Pneumonia (disorder)", False),
    ("68496003", "Polyp of colon (disorder)", False),
    ("72892002", "Normal pregnancy (finding)", False),
]
# Condition code -> (RxNorm, description, base cost) prescribed for it.
MEDICATIONS = {
    "44054006": ("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", 12.5),
    "38341003": ("314076", "lisinopril 10 MG Oral Tablet", 8.2),
    "55822004": ("314231", "Simvastatin 10 MG Oral Tablet", 9.9),
    "195662009": ("313782", "Acetaminophen 325 MG Oral Tablet", 3.1),
    "10509002": ("313782", "Acetaminophen 325 MG Oral Tablet", 3.1),
    "444814009": ("562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", 15.0),
    "233604007": ("834061", "Penicillin V Potassium 250 MG Oral Tablet", 11.4),
}
# (LOINC, description, units, category, mean, sd, decimals)
VITALS = [
    ("8302-2", "Body Height", "cm", "vital-signs", 170.0, 10.0, 1),
    ("29463-7", "Body Weight", "kg", "vital-signs", 78.0, 15.0, 1),
    ("8480-6", "Systolic Blood Pressure", "mm[Hg]", "vital-signs", 122.0, 14.0, 0),
    ("8462-4", "Diastolic Blood Pressure", "mm[Hg]", "vital-signs", 79.0, 9.0, 0),
    ("8867-4", "Heart rate", "/min", "vital-signs", 74.0, 11.0, 0),
]
HBA1C = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "laboratory", 5.9, 0.9, 1)
SMOKING = ("72166-2", "Tobacco smoking status", "", "survey")
SMOKING_VALUES = ["Never smoked tobacco (finding)", "Former smoker (finding)",
                  "Current every day smoker (finding)"]
ORGANIZATIONS = [str(uuid.UUID(int=n * 7919 + 1, version=4)) for n in range(1, 6)]
PAYERS = [str(uuid.UUID(int=n * 104729 + 3, version=4)) for n in range(1, 5)]

COLUMNS = {
    "patients": ["Id", "MRN", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PREFIX", "FIRST", "LAST",
                 "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY", "STATE",
                 "COUNTY", "ZIP", "LAT", "LON"],
    "encounters": ["Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PAYER", "ENCOUNTERCLASS",
                   "CODE", "DESCRIPTION", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST",
                   "PAYER_COVERAGE", "REASONCODE", "REASONDESCRIPTION"],
    "conditions": ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"],
    "observations": ["DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE",
                     "UNITS", "TYPE"],
    "medications": ["START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION",
                    "BASE_COST", "PAYER_COVERAGE", "DISPENSES", "TOTALCOST", "REASONCODE",
                    "REASONDESCRIPTION"],
}


def make_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ts(value):
    # "YYYY-MM-DD HH:MM:SS": DuckDB and Athena both cast this text to a timestamp.
    return value.strftime("%Y-%m-%d %H:%M:%S")


def fhir_ts(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def weighted(rng, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def generate(seed, n_patients):
    rng = random.Random(seed)
    tables = {name: [] for name in COLUMNS}
    for _ in range(n_patients):
        gender = rng.choice(["F", "M"])
        first = rng.choice(FIRST_FEMALE if gender == "F" else FIRST_MALE)
        last = rng.choice(LAST)
        age_days = rng.randint(365 * 1, 365 * 90)
        birth = REFERENCE_DATE - dt.timedelta(days=age_days)
        dead = None
        if age_days > 365 * 70 and rng.random() < 0.15:
            dead = REFERENCE_DATE - dt.timedelta(days=rng.randint(30, 365 * 3))
        city, county, zip3, lat, lon = rng.choice(CITIES)
        race = weighted(rng, [r for r, _ in RACES], [w or 1 for _, w in RACES])
        adult = age_days >= 365 * 18
        patient = {
            "Id": make_uuid(rng),
            "MRN": "MRN%08d" % rng.randint(0, 99_999_999),
            "BIRTHDATE": birth.isoformat(),
            "DEATHDATE": dead.isoformat() if dead else "",
            "SSN": "999-%02d-%04d" % (rng.randint(10, 99), rng.randint(1000, 9999)),
            "DRIVERS": "S999%05d" % rng.randint(0, 99999) if adult else "",
            "PREFIX": ("Mrs." if rng.random() < 0.5 else "Ms.") if gender == "F" and adult
            else ("Mr." if adult else ""),
            # Synthea appends digits to names so no record is mistaken for a real person.
            "FIRST": "%s%d" % (first, rng.randint(100, 999)),
            "LAST": "%s%d" % (last, rng.randint(100, 999)),
            "MARITAL": rng.choice(MARITAL) if adult else "",
            "RACE": race,
            "ETHNICITY": "hispanic" if rng.random() < 0.12 else "nonhispanic",
            "GENDER": gender,
            "BIRTHPLACE": "%s  Massachusetts  US" % rng.choice(CITIES)[0],
            "ADDRESS": "%d %s" % (rng.randint(1, 9999), rng.choice(STREETS)),
            "CITY": city,
            "STATE": "Massachusetts",
            "COUNTY": county,
            "ZIP": "%s%02d" % (zip3, rng.randint(0, 99)),
            "LAT": "%.6f" % (lat + rng.uniform(-0.05, 0.05)),
            "LON": "%.6f" % (lon + rng.uniform(-0.05, 0.05)),
        }
        tables["patients"].append(patient)
        chronic = [c for c in CONDITIONS if c[2] and rng.random() < (0.25 if adult else 0.03)]
        end = dead or REFERENCE_DATE
        start_window = max(birth, end - dt.timedelta(days=365 * 5))
        span = max((end - start_window).days, 1)
        visits = sorted(rng.randrange(span) for _ in range(rng.randint(1, 6)))
        for i, day in enumerate(visits):
            enc_class, code, desc, _ = weighted(rng, ENCOUNTER_TYPES, ENCOUNTER_WEIGHTS)
            start = dt.datetime.combine(start_window + dt.timedelta(days=day), dt.time(8)) + \
                dt.timedelta(minutes=rng.randrange(0, 600, 15))
            hours = rng.randint(24, 96) if enc_class == "inpatient" else 0
            stop = start + dt.timedelta(hours=hours, minutes=rng.choice([15, 30, 45]))
            base = round(rng.uniform(80, 160) if enc_class != "inpatient" else rng.uniform(900, 4000), 2)
            total = round(base * rng.uniform(1.0, 3.0), 2)
            encounter = {
                "Id": make_uuid(rng), "START": ts(start), "STOP": ts(stop),
                "PATIENT": patient["Id"], "ORGANIZATION": rng.choice(ORGANIZATIONS),
                "PAYER": rng.choice(PAYERS), "ENCOUNTERCLASS": enc_class, "CODE": code,
                "DESCRIPTION": desc, "BASE_ENCOUNTER_COST": "%.2f" % base,
                "TOTAL_CLAIM_COST": "%.2f" % total,
                "PAYER_COVERAGE": "%.2f" % round(total * rng.uniform(0.0, 0.9), 2),
                "REASONCODE": "", "REASONDESCRIPTION": "",
            }
            diagnosed = []
            if i == 0:
                diagnosed.extend(chronic)
            if enc_class in ("ambulatory", "urgentcare", "emergency", "inpatient") and rng.random() < 0.6:
                acute = [c for c in CONDITIONS if not c[2]
                         and (c[0] != "72892002" or (gender == "F" and 18 * 365 <= age_days <= 45 * 365))]
                diagnosed.append(rng.choice(acute))
            for c_code, c_desc, is_chronic in diagnosed:
                c_stop = "" if is_chronic else (start.date() + dt.timedelta(days=rng.randint(7, 30))).isoformat()
                tables["conditions"].append({
                    "START": start.date().isoformat(), "STOP": c_stop, "PATIENT": patient["Id"],
                    "ENCOUNTER": encounter["Id"], "CODE": c_code, "DESCRIPTION": c_desc,
                })
                if not encounter["REASONCODE"]:
                    encounter["REASONCODE"], encounter["REASONDESCRIPTION"] = c_code, c_desc
                med = MEDICATIONS.get(c_code)
                if med:
                    dispenses = rng.randint(1, 12) if is_chronic else 1
                    m_stop = "" if is_chronic else ts(stop + dt.timedelta(days=10))
                    tables["medications"].append({
                        "START": ts(stop), "STOP": m_stop, "PATIENT": patient["Id"],
                        "PAYER": encounter["PAYER"], "ENCOUNTER": encounter["Id"], "CODE": med[0],
                        "DESCRIPTION": med[1], "BASE_COST": "%.2f" % med[2],
                        "PAYER_COVERAGE": "%.2f" % round(med[2] * dispenses * 0.5, 2),
                        "DISPENSES": str(dispenses), "TOTALCOST": "%.2f" % round(med[2] * dispenses, 2),
                        "REASONCODE": c_code, "REASONDESCRIPTION": c_desc,
                    })
            tables["encounters"].append(encounter)
            if enc_class in ("wellness", "ambulatory", "outpatient"):
                for code_, desc_, units, category, mean, sd, decimals in VITALS:
                    value = round(rng.gauss(mean, sd), decimals)
                    tables["observations"].append({
                        "DATE": ts(start), "PATIENT": patient["Id"], "ENCOUNTER": encounter["Id"],
                        "CATEGORY": category, "CODE": code_, "DESCRIPTION": desc_,
                        "VALUE": ("%.*f" % (decimals, value)), "UNITS": units, "TYPE": "numeric",
                    })
            if adult and enc_class == "wellness":
                tables["observations"].append({
                    "DATE": ts(start), "PATIENT": patient["Id"], "ENCOUNTER": encounter["Id"],
                    "CATEGORY": SMOKING[3], "CODE": SMOKING[0], "DESCRIPTION": SMOKING[1],
                    "VALUE": rng.choice(SMOKING_VALUES), "UNITS": "", "TYPE": "text",
                })
            if any(c[0] in ("44054006", "15777000") for c in chronic) and enc_class != "emergency":
                code_, desc_, units, category, mean, sd, decimals = HBA1C
                tables["observations"].append({
                    "DATE": ts(start), "PATIENT": patient["Id"], "ENCOUNTER": encounter["Id"],
                    "CATEGORY": category, "CODE": code_, "DESCRIPTION": desc_,
                    "VALUE": "%.1f" % max(4.0, rng.gauss(mean + 1.2, sd)), "UNITS": units,
                    "TYPE": "numeric",
                })
    return rng, tables


def fhir_resources(rng, tables):
    act = {t[0]: t[3] for t in ENCOUNTER_TYPES}
    patients, encounters, conditions = [], [], []
    for p in tables["patients"]:
        resource = {
            "resourceType": "Patient", "id": p["Id"],
            "identifier": [
                {"system": "http://hospital.example.org/mrn", "value": p["MRN"]},
                {"system": "http://hl7.org/fhir/sid/us-ssn", "value": p["SSN"]},
            ],
            "name": [{"use": "official", "family": p["LAST"], "given": [p["FIRST"]],
                      "prefix": [p["PREFIX"]] if p["PREFIX"] else []}],
            "gender": "female" if p["GENDER"] == "F" else "male",
            "birthDate": p["BIRTHDATE"],
            "address": [{"line": [p["ADDRESS"]], "city": p["CITY"], "state": "MA",
                         "postalCode": p["ZIP"], "country": "US"}],
        }
        if p["DEATHDATE"]:
            resource["deceasedDateTime"] = p["DEATHDATE"] + "T00:00:00Z"
        patients.append(resource)
    for e in tables["encounters"]:
        encounters.append({
            "resourceType": "Encounter", "id": e["Id"], "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": act[e["ENCOUNTERCLASS"]]},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": e["CODE"],
                                  "display": e["DESCRIPTION"]}]}],
            "subject": {"reference": "Patient/" + e["PATIENT"]},
            "period": {"start": fhir_ts(dt.datetime.fromisoformat(e["START"])),
                       "end": fhir_ts(dt.datetime.fromisoformat(e["STOP"]))},
        })
    for c in tables["conditions"]:
        resource = {
            "resourceType": "Condition", "id": make_uuid(rng),
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                "code": "resolved" if c["STOP"] else "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": c["CODE"],
                                 "display": c["DESCRIPTION"]}]},
            "subject": {"reference": "Patient/" + c["PATIENT"]},
            "encounter": {"reference": "Encounter/" + c["ENCOUNTER"]},
            "onsetDateTime": c["START"] + "T00:00:00Z",
        }
        if c["STOP"]:
            resource["abatementDateTime"] = c["STOP"] + "T00:00:00Z"
        conditions.append(resource)
    return {"Patient": patients, "Encounter": encounters, "Condition": conditions}


def write_csv(path, columns, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_ndjson(path, resources):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for resource in resources:
            f.write(json.dumps(resource, separators=(",", ":"), sort_keys=False) + "\n")


def bad_files(rng, tables, out):
    """Files the contracts reject (or that no contract matches), so the demo shows quarantine."""
    bad = []
    # 1. A patients extract (new patients) where one row lost its Id: fails `required`.
    extra = []
    for _ in range(5):
        p = dict(rng.choice(tables["patients"]))
        p["Id"], p["MRN"] = make_uuid(rng), "MRN%08d" % rng.randint(0, 99_999_999)
        p["FIRST"] = "%s%d" % (p["FIRST"].rstrip("0123456789"), rng.randint(100, 999))
        extra.append(p)
    extra[2]["Id"] = ""
    write_csv(os.path.join(out, "bad", "ehr", "patients_missing_id.csv"), COLUMNS["patients"], extra)
    bad.append({"dataset": "ehr", "file": "patients_missing_id.csv", "table": "patients",
                "problem": "required column Id is empty in row 3", "rows": 5, "rows_with_id": 4})
    # 2. An encounters extract whose header renamed PATIENT: fails the column check.
    header = [("PATIENT_ID" if c == "PATIENT" else c) for c in COLUMNS["encounters"]]
    rows = [dict(e) for e in tables["encounters"][:5]]
    for r in rows:
        r["PATIENT_ID"] = r.pop("PATIENT")
    write_csv(os.path.join(out, "bad", "ehr", "encounters_wrong_header.csv"), header, rows)
    bad.append({"dataset": "ehr", "file": "encounters_wrong_header.csv", "table": "encounters",
                "problem": "required column PATIENT missing from the header", "rows": 5})
    # 3. A file no contract matches.
    write_csv(os.path.join(out, "bad", "ehr", "billing_export.csv"), ["CLAIM", "AMOUNT"],
              [{"CLAIM": "C%06d" % i, "AMOUNT": "%.2f" % (i * 10.5)} for i in range(3)])
    bad.append({"dataset": "ehr", "file": "billing_export.csv", "table": None,
                "problem": "no contract matches the key", "rows": 3})
    return bad


def split(tables, files):
    """(file stem, rows) pairs: one per table, or about `files` in all with every file non-empty."""
    if files <= 0:
        return list(tables.items())
    total = sum(len(rows) for rows in tables.values())
    parts = []
    for name, rows in tables.items():
        count = max(1, min(len(rows), round(files * len(rows) / total)))
        size, extra = divmod(len(rows), count)
        start = 0
        for i in range(count):
            end = start + size + (1 if i < extra else 0)
            parts.append(("%s_%05d" % (name, i), rows[start:end]))
            start = end
    return parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--out", required=True)
    parser.add_argument("--fhir", action="store_true", help="also write the FHIR R4 NDJSON variant")
    parser.add_argument("--no-bad", action="store_true", help="skip the deliberately bad files")
    parser.add_argument("--files", type=int, default=0,
                        help="split the CSV extracts into about this many files (<table>_NNNNN.csv),"
                             " each table's share in proportion to its rows, for backfills")
    args = parser.parse_args()

    rng, tables = generate(args.seed, args.patients)
    for name, rows in split(tables, args.files):
        write_csv(os.path.join(args.out, "ehr", name + ".csv"), COLUMNS[name.split("_")[0]], rows)
    manifest = {
        "seed": args.seed,
        "patients": args.patients,
        "landing": "landing/synthea/<dataset>/<file>",
        "tables": {name: len(rows) for name, rows in tables.items()},
        # What the dbt marts must hold once the good extracts are onboarded.
        "marts": {
            "patient_demographics": len(tables["patients"]),
            "encounter_summary": len(tables["encounters"]),
            "condition_prevalence": len({c["CODE"] for c in tables["conditions"]}),
        },
        "encounter_classes": ENCOUNTER_CLASSES,
    }
    if args.fhir:
        resources = fhir_resources(rng, tables)
        for resource_type, items in resources.items():
            write_ndjson(os.path.join(args.out, "ehr_fhir", resource_type + ".ndjson"), items)
        manifest["fhir"] = {k: len(v) for k, v in resources.items()}
    if not args.no_bad:
        manifest["bad"] = bad_files(rng, tables, args.out)
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps({"tables": manifest["tables"], "marts": manifest["marts"]}))


if __name__ == "__main__":
    main()
