"""Per-record validation and deterministic keys.

Keys become MongoDB ``_id`` values, prefixed with the client id so that two
clients never share a document:

* FHIR resources: ``<client>/<resourceType>/<id>``, so a later export of the
  same resource replaces it;
* CSV/TSV rows and other JSON records with configured key columns:
  ``<client>/<dataset>/<value>[/<value>...]``, each value percent-encoded;
* tables without key columns: ``<client>/<dataset>/<sha256 of the row>``, so
  identical rows are one document and a changed row is a new document.

NOTE: for row-hash tables a corrected row is stored next to the old one,
which stays; configure key columns (INGESTION_KEY_COLUMNS) where a table has them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from include.ingestion.report import (
    COLUMN_COUNT,
    DUPLICATE_COLUMN,
    EMPTY_KEY,
    INVALID_HEADER,
    INVALID_ID,
    NOT_AN_OBJECT,
    REPEATED_HEADER,
    WRONG_RESOURCE_TYPE,
    FileRejected,
)

# Fields the exchange adds to every stored document.
RESERVED_FIELDS = ("_id", "client_id", "_provenance")

# FHIR R4 "id" datatype: https://hl7.org/fhir/R4/datatypes.html#id
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class BadRecord(Exception):
    """One record fails validation; it is reported and skipped."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def check_fhir_resource(record: Any, resource_type: str) -> str:
    """Return the id of a valid FHIR resource of ``resource_type``, else raise BadRecord."""
    if type(record) is not dict:
        raise BadRecord(NOT_AN_OBJECT, f"expected a JSON object, found {_json_type(record)}")
    found = record.get("resourceType")
    if found != resource_type:
        raise BadRecord(
            WRONG_RESOURCE_TYPE,
            f"resourceType {found!r} does not match the file's type {resource_type!r}",
        )
    resource_id = record.get("id")
    if type(resource_id) is not str or not FHIR_ID.fullmatch(resource_id):
        raise BadRecord(
            INVALID_ID,
            f"missing or invalid id {resource_id!r}: FHIR ids are 1 to 64 letters, "
            "digits, '-' or '.'",
        )
    return resource_id


def check_json_record(record: Any) -> dict[str, Any]:
    """Return ``record`` if it is a JSON object, else raise BadRecord.

    Reserved field names are rejected by the document encoder.
    """
    if type(record) is not dict:
        raise BadRecord(NOT_AN_OBJECT, f"expected a JSON object, found {_json_type(record)}")
    return record


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def canonical_hash(value: Any) -> str:
    """Return the SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_id(prefix: str, values: Sequence[Any]) -> str:
    """Join percent-encoded key values onto ``prefix`` (which ends in '/')."""
    return prefix + "/".join(quote(str(value), safe="") for value in values)


def json_record_key(
    record: Mapping[str, Any], key_fields: Sequence[str], prefix: str
) -> tuple[str, str]:
    """Return ``(_id, record_hash)`` of a JSON record: by key fields, else by content hash."""
    record_hash = canonical_hash(record)
    if not key_fields:
        return prefix + record_hash, record_hash
    values = []
    for name in key_fields:
        value = record.get(name)
        if value is None or value == "" or isinstance(value, dict | list):
            raise BadRecord(EMPTY_KEY, f"key field {name!r} is missing, empty or not a scalar")
        values.append(value)
    return key_id(prefix, values), record_hash


class CsvTable:
    """The header of one CSV/TSV file and the rules derived from it."""

    def __init__(self, header: list[str], key_columns: Sequence[str], line: int = 1):
        check_header(header, line)
        missing = [column for column in key_columns if column not in header]
        if missing:
            raise FileRejected(
                INVALID_HEADER,
                f"key column(s) {missing} configured for this table are missing from "
                f"the header {header}",
                line,
            )
        self.header = header
        self.width = len(header)
        self.key_columns = tuple(key_columns)
        self._key_indexes = [header.index(column) for column in key_columns]

    def row_record(self, row: list[str], prefix: str) -> tuple[dict[str, str], str, str]:
        """Return ``(record, _id, record_hash)`` for a data row, or raise BadRecord."""
        if len(row) != self.width:
            raise BadRecord(COLUMN_COUNT, f"row has {len(row)} fields, the header has {self.width}")
        if row == self.header:
            raise BadRecord(REPEATED_HEADER, "the header row appears again as data")
        record = dict(zip(self.header, row, strict=True))
        record_hash = canonical_hash(sorted(record.items()))
        if not self._key_indexes:
            return record, prefix + record_hash, record_hash
        values = [row[index] for index in self._key_indexes]
        for column, value in zip(self.key_columns, values, strict=True):
            if value == "":
                raise BadRecord(EMPTY_KEY, f"key column {column!r} is empty")
        return record, key_id(prefix, values), record_hash


def check_header(header: list[str], line: int = 1) -> None:
    """Reject a header with empty, duplicate, reserved or unaddressable column names."""
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if name.strip() == "":
            raise FileRejected(INVALID_HEADER, f"column {position} of the header has no name", line)
        if name in seen:
            raise FileRejected(
                DUPLICATE_COLUMN,
                f"duplicate column name {name!r} in the header (column {position})",
                line,
            )
        if name in RESERVED_FIELDS:
            raise FileRejected(
                INVALID_HEADER,
                f"column name {name!r} is reserved for the exchange's own metadata",
                line,
            )
        if "." in name or name.startswith("$"):
            raise FileRejected(
                INVALID_HEADER,
                f"column name {name!r} contains '.' or starts with '$', which MongoDB "
                "queries cannot address as a field",
                line,
            )
        seen.add(name)
