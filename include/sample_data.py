"""Small synthetic client exports for the demo, the tests and the benchmark.

Everything is generated from a seed, so the same call always returns the
same bytes. The records follow the shapes of Synthea's FHIR R4 Bulk Data and
CSV exports (US Core profiles, SNOMED and LOINC codes, UUID ids) but
describe no real person.

Usage: ``python -m include.sample_data OUTPUT_DIR [--patients N] [--seed S]``
writes ``fhir/`` (one ``<Type>.000.ndjson`` per resource type plus
``log.ndjson``) and ``csv/`` (``patients.csv``, ``conditions.csv``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FIRST_NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jon"]
LAST_NAMES = ["Adler", "Baptiste", "Costa", "Duarte", "Eriksen", "Fofana", "Garcia", "Haddad"]
CITIES = [("Boston", "MA", "02108"), ("Worcester", "MA", "01602"), ("Salem", "MA", "01970")]
CONDITIONS = [
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    ("38341003", "Hypertensive disorder, systemic arterial (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("55822004", "Hyperlipidemia (disorder)"),
]
OBSERVATIONS = [
    ("8302-2", "Body Height", "cm", 150.0, 195.0),
    ("29463-7", "Body Weight", "kg", 45.0, 120.0),
    ("8867-4", "Heart rate", "/min", 55.0, 100.0),
]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _day(rng: random.Random, start_year: int, end_year: int) -> date:
    start = date(start_year, 1, 1)
    return start + timedelta(days=rng.randrange((date(end_year, 12, 31) - start).days))


def _patient(rng: random.Random) -> dict[str, Any]:
    patient_id = _uuid(rng)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, state, postal_code = rng.choice(CITIES)
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"profile": [f"{US_CORE}/us-core-patient"]},
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{first} {last}</div>',
        },
        "identifier": [
            {"system": "https://example.org/synthetic-mrn", "value": patient_id},
            {
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}",
            },
        ],
        "name": [{"use": "official", "family": last, "given": [first]}],
        "telecom": [
            {
                "system": "phone",
                "value": f"555-{rng.randrange(100, 999)}-{rng.randrange(1000, 9999)}",
                "use": "home",
            }
        ],
        "gender": rng.choice(["female", "male"]),
        "birthDate": _day(rng, 1940, 2015).isoformat(),
        "address": [
            {
                "line": [f"{rng.randrange(1, 999)} Main Street"],
                "city": city,
                "state": state,
                "postalCode": postal_code,
                "country": "US",
            }
        ],
        "maritalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                    "code": "M",
                    "display": "Married",
                }
            ]
        },
        "communication": [
            {
                "language": {
                    "coding": [
                        {
                            "system": "urn:ietf:bcp:47",
                            "code": "en-US",
                            "display": "English (United States)",
                        }
                    ]
                }
            }
        ],
    }


def _encounter(rng: random.Random, patient_id: str, day: date) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": _uuid(rng),
        "meta": {"profile": [f"{US_CORE}/us-core-encounter"]},
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [
            {
                "coding": [
                    {"system": SNOMED, "code": "185345009", "display": "Encounter for symptom"}
                ],
                "text": "Encounter for symptom",
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "period": {"start": f"{day.isoformat()}T09:00:00Z", "end": f"{day.isoformat()}T09:30:00Z"},
    }


def _condition(rng: random.Random, patient_id: str, encounter_id: str, day: date) -> dict[str, Any]:
    code, display = rng.choice(CONDITIONS)
    return {
        "resourceType": "Condition",
        "id": _uuid(rng),
        "meta": {"profile": [f"{US_CORE}/us-core-condition-encounter-diagnosis"]},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                        "display": "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
        "onsetDateTime": f"{day.isoformat()}T09:15:00Z",
        "recordedDate": f"{day.isoformat()}T09:15:00Z",
    }


def _observation(
    rng: random.Random, patient_id: str, encounter_id: str, day: date
) -> dict[str, Any]:
    code, display, unit, low, high = rng.choice(OBSERVATIONS)
    return {
        "resourceType": "Observation",
        "id": _uuid(rng),
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                        "display": "Vital signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter_id}"},
        "effectiveDateTime": f"{day.isoformat()}T09:10:00Z",
        "valueQuantity": {
            "value": round(rng.uniform(low, high), 1),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def fhir_resources(patients: int = 10, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Generate FHIR resources for ``patients`` patients, grouped by resource type."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    resources: dict[str, list[dict[str, Any]]] = {
        "Patient": [],
        "Encounter": [],
        "Condition": [],
        "Observation": [],
    }
    for _ in range(patients):
        patient = _patient(rng)
        resources["Patient"].append(patient)
        for _ in range(rng.randrange(1, 4)):
            day = _day(rng, 2015, 2024)
            encounter = _encounter(rng, patient["id"], day)
            resources["Encounter"].append(encounter)
            resources["Condition"].append(_condition(rng, patient["id"], encounter["id"], day))
            for _ in range(2):
                resources["Observation"].append(
                    _observation(rng, patient["id"], encounter["id"], day)
                )
    return resources


def ndjson(records: list[dict[str, Any]]) -> bytes:
    """Serialise records as NDJSON, compact like Bulk Data exporters write them."""
    return b"".join(
        json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n" for record in records
    )


def export_log(resources: dict[str, list[dict[str, Any]]]) -> bytes:
    """Build the exporter's ``log.ndjson`` for an export of ``resources``."""
    events = [
        {"exportId": "sample-export", "eventId": "kickoff", "eventDetail": {}},
        {
            "exportId": "sample-export",
            "eventId": "export_complete",
            "eventDetail": {
                "files": len(resources),
                "resources": sum(map(len, resources.values())),
            },
        },
    ]
    return ndjson(events)


def fhir_export(patients: int = 10, seed: int = 7) -> dict[str, bytes]:
    """Return a FHIR Bulk Data export as ``{file name: content}``."""
    resources = fhir_resources(patients, seed)
    files = {f"{kind}.000.ndjson": ndjson(records) for kind, records in resources.items()}
    files["log.ndjson"] = export_log(resources)
    return files


def csv_export(patients: int = 10, seed: int = 7) -> dict[str, bytes]:
    """Return Synthea-style CSV tables (``patients.csv``, ``conditions.csv``) as bytes."""
    resources = fhir_resources(patients, seed)
    patient_rows = [
        {
            "Id": patient["id"],
            "BIRTHDATE": patient["birthDate"],
            "DEATHDATE": "",
            "FIRST": patient["name"][0]["given"][0],
            "LAST": patient["name"][0]["family"],
            "GENDER": patient["gender"][0].upper(),
            "CITY": patient["address"][0]["city"],
            "STATE": patient["address"][0]["state"],
        }
        for patient in resources["Patient"]
    ]
    condition_rows = [
        {
            "START": condition["onsetDateTime"][:10],
            "STOP": "",
            "PATIENT": condition["subject"]["reference"].split("/", 1)[1],
            "ENCOUNTER": condition["encounter"]["reference"].split("/", 1)[1],
            "CODE": condition["code"]["coding"][0]["code"],
            "DESCRIPTION": condition["code"]["text"],
        }
        for condition in resources["Condition"]
    ]
    return {"patients.csv": _csv(patient_rows), "conditions.csv": _csv(condition_rows)}


def _csv(rows: list[dict[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_sample_export(directory: Path, patients: int = 10, seed: int = 7) -> list[Path]:
    """Write ``fhir/`` and ``csv/`` under ``directory``; return the files written."""
    written = []
    for folder, files in (
        ("fhir", fhir_export(patients, seed)),
        ("csv", csv_export(patients, seed)),
    ):
        target = directory / folder
        target.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            path = target / name
            path.write_bytes(content)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a small synthetic FHIR and CSV export.")
    parser.add_argument("output_dir", type=Path, help="folder to write fhir/ and csv/ into")
    parser.add_argument("--patients", type=int, default=10, help="number of patients (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    for path in write_sample_export(args.output_dir, args.patients, args.seed):
        print(path)


if __name__ == "__main__":
    main()
