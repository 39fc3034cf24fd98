"""Input files for the ingestion tests: good sample exports and each kind of bad input."""

from __future__ import annotations

import gzip
import json

from include.ingestion import report
from include.sample_data import csv_export, fhir_export

TWENTY_MB = 20 * 1024 * 1024


def good_files() -> dict[str, bytes]:
    """Return a small FHIR export and CSV tables as ``{file name: content}``."""
    return {**fhir_export(patients=5, seed=11), **csv_export(patients=5, seed=11)}


def _patients(count: int) -> list[dict]:
    return [
        {"resourceType": "Patient", "id": f"p{number}", "name": [{"family": "Ames"}]}
        for number in range(count)
    ]


def _ndjson(records: list[dict]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def bad_files() -> dict[str, tuple[bytes, str]]:
    """Return ``{file name: (content, expected quarantine reason)}``, one per kind of bad input."""
    patients = _ndjson(_patients(20))
    latin1 = "Id,FIRST,CITY\n1,Jos\u00e9,Z\u00fcrich\n2,Ana,Malm\u00f6\n".encode("latin-1")
    long_line = b'{"resourceType":"Patient","id":"long","note":"' + b"a" * TWENTY_MB + b'"}\n'
    return {
        "Empty.000.ndjson": (b"", report.EMPTY_FILE),
        "Patient.004.ndjson.gz": (gzip.compress(patients)[:-40], report.CORRUPT_GZIP),
        "Patient.003.ndjson": (
            patients[:200] + b"\xff\xfe\xfa" + patients[200:],
            report.INVALID_ENCODING,
        ),
        "visits_latin1.csv": (latin1, report.INVALID_ENCODING),
        "Patient.001.ndjson": (json.dumps(_patients(3)).encode(), report.JSON_ARRAY_IN_NDJSON),
        "ragged.csv": (b"a,b,c\n1,2,3\n4,5\n6\n7,8,9,10\n", report.TOO_MANY_BAD_RECORDS),
        "dup_header.csv": (b"Id,NAME,NAME\n1,x,y\n", report.DUPLICATE_COLUMN),
        "Patient.002.ndjson": (long_line, report.TOO_MANY_BAD_RECORDS),
        "scan.pdf": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64, report.BINARY_CONTENT),
    }
