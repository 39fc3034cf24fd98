"""Independent count of the documents an export must produce: distinct keys per collection.

Written without the ingestion modules, from the file formats themselves, so
the tests compare the loader against a second implementation.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from urllib.parse import quote

from include.ingestion.config import DEFAULT_KEY_COLUMNS

FHIR_NAME = re.compile(r"^([A-Z][A-Za-z]+)\.\d+\.ndjson$")


def _row_hash(header: list[str], row: list[str]) -> str:
    pairs = sorted(zip(header, row, strict=True))
    text = json.dumps(pairs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def distinct_keys(files: dict[str, bytes], client_id: str) -> dict[str, set[str]]:
    """Return ``{collection: {_id, ...}}`` for FHIR NDJSON and CSV files of an export."""
    keys: dict[str, set[str]] = {}
    for name, data in files.items():
        match = FHIR_NAME.match(name)
        if match:
            resource_type = match.group(1)
            ids = keys.setdefault(f"fhir_{resource_type}", set())
            for line in data.splitlines():
                if line.strip():
                    ids.add(f"{client_id}/{resource_type}/{json.loads(line)['id']}")
        elif name.endswith(".csv"):
            table = name[: -len(".csv")]
            rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
            header, body = rows[0], [row for row in rows[1:] if row]
            columns = DEFAULT_KEY_COLUMNS.get(table, ())
            ids = keys.setdefault(f"csv_{table}", set())
            for row in body:
                if columns:
                    values = [row[header.index(column)] for column in columns]
                    ids.add(f"{client_id}/{table}/" + "/".join(quote(v, safe="") for v in values))
                else:
                    ids.add(f"{client_id}/{table}/{_row_hash(header, row)}")
    return keys
