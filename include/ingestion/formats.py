"""File formats, detected from the object name first and checked against the content.

Names follow the exports clients send. FHIR Bulk Data files are
``<ResourceType>.<n>.ndjson`` (for example ``Patient.000.ndjson``) and the
exporter's own log is ``log.ndjson``. Other data is ``*.ndjson``/``*.jsonl``,
``*.json``, ``*.csv`` or ``*.tsv``, and each may end in ``.gz``. The content
then has the final word: a gzip header means gzip whatever the name, and
content that contradicts the name is rejected with a reason, not guessed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, replace
from enum import StrEnum

from include.ingestion.report import (
    BINARY_CONTENT,
    INVALID_ENCODING,
    JSON_ARRAY_IN_NDJSON,
    UNSUPPORTED_FORMAT,
    FileRejected,
)

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order marks of encodings the exchange does not accept; longest first
# because the UTF-32 LE mark starts with the UTF-16 LE one.
OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "UTF-32 BE"),
    (b"\xff\xfe", "UTF-16 LE"),
    (b"\xfe\xff", "UTF-16 BE"),
)

FHIR_FILE_NAME = re.compile(r"^(?P<type>[A-Z][A-Za-z]{1,63})\.(?P<part>\d+)\.ndjson$")
FHIR_EXPORT_LOG_NAME = "log.ndjson"
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ldjson")
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_DATASET_UNSAFE = re.compile(r"[^a-z0-9_]+")
_WHITESPACE = b" \t\r\n"


class Kind(StrEnum):
    """Record framing of a file."""

    FHIR_NDJSON = "fhir_ndjson"
    NDJSON = "ndjson"
    JSON = "json"
    CSV = "csv"
    TSV = "tsv"
    FHIR_EXPORT_LOG = "fhir_export_log"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class FileFormat:
    """The format of one object and the dataset its records belong to.

    ``dataset`` is the FHIR resource type for FHIR files and the table or
    file stem otherwise; ``compressed`` is whether the content is gzip.
    """

    kind: Kind
    dataset: str
    compressed: bool = False

    @property
    def loads_records(self) -> bool:
        """Whether records of this file go into MongoDB (the export log does not)."""
        return self.kind is not Kind.FHIR_EXPORT_LOG

    @property
    def collection(self) -> str:
        """The MongoDB collection of the dataset: one per resource type or table."""
        if self.kind is Kind.FHIR_NDJSON:
            return f"fhir_{self.dataset}"
        if self.kind in (Kind.CSV, Kind.TSV):
            return f"csv_{self.dataset}"
        return f"json_{self.dataset}"


def dataset_name(file_name: str) -> str:
    """Derive a collection-safe dataset name ("Lab Results.csv" -> "lab_results")."""
    stem = file_name.split(".", 1)[0].lower()
    name = _DATASET_UNSAFE.sub("_", stem).strip("_")
    return name or "data"


def format_from_name(key: str) -> FileFormat:
    """Return the format the object name announces; ``Kind.UNKNOWN`` when it announces none."""
    name = posixpath.basename(key)
    compressed = name.lower().endswith(".gz")
    if compressed:
        name = name[: -len(".gz")]
    lower = name.lower()

    if lower == FHIR_EXPORT_LOG_NAME:
        return FileFormat(Kind.FHIR_EXPORT_LOG, "log", compressed)
    match = FHIR_FILE_NAME.match(name)
    if match:
        return FileFormat(Kind.FHIR_NDJSON, match["type"], compressed)
    if lower.endswith(NDJSON_SUFFIXES):
        return FileFormat(Kind.NDJSON, dataset_name(name), compressed)
    if lower.endswith(".json"):
        return FileFormat(Kind.JSON, dataset_name(name), compressed)
    if lower.endswith(".csv"):
        return FileFormat(Kind.CSV, dataset_name(name), compressed)
    if lower.endswith((".tsv", ".tab")):
        return FileFormat(Kind.TSV, dataset_name(name), compressed)
    return FileFormat(Kind.UNKNOWN, dataset_name(name), compressed)


def check_text_head(head: bytes) -> None:
    """Reject content that is not UTF-8 text: other byte-order marks, NUL bytes.

    ``head`` is the start of the decompressed content, after any UTF-8 BOM.
    """
    for bom, encoding in OTHER_BOMS:
        if head.startswith(bom):
            raise FileRejected(
                INVALID_ENCODING,
                f"the file starts with a {encoding} byte-order mark; only UTF-8 is "
                "accepted, re-export the file as UTF-8",
                line=1,
            )
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise FileRejected(
            BINARY_CONTENT,
            f"binary content: NUL byte at offset {offset} of the decompressed data; "
            "expected UTF-8 text (NDJSON, JSON, CSV or TSV)",
            line=head.count(b"\n", 0, offset) + 1,
        )


def resolve_with_content(fmt: FileFormat, head: bytes) -> FileFormat:
    """Check the announced format against the first bytes and settle unknown ones.

    ``head`` is the start of the decompressed content, after any UTF-8 BOM.
    Raise :class:`FileRejected` when content and name disagree.
    """
    check_text_head(head)
    first = head.lstrip(_WHITESPACE)[:1]

    if fmt.kind in (Kind.FHIR_NDJSON, Kind.NDJSON) and first == b"[":
        raise FileRejected(
            JSON_ARRAY_IN_NDJSON,
            "the content is a JSON array but the name says NDJSON (one JSON object "
            "per line); send one object per line or name the file *.json",
            line=1,
        )
    if fmt.kind is Kind.NDJSON:
        return _fhir_by_content(fmt, head)
    if fmt.kind is not Kind.UNKNOWN:
        return fmt

    if first == b"{":
        return _fhir_by_content(replace(fmt, kind=Kind.NDJSON), head)
    if first == b"[":
        return replace(fmt, kind=Kind.JSON)
    header = head.split(b"\n", 1)[0]
    if b"\t" in header:
        return replace(fmt, kind=Kind.TSV)
    if b"," in header:
        return replace(fmt, kind=Kind.CSV)
    raise FileRejected(
        UNSUPPORTED_FORMAT,
        "unrecognised format: the name has no known extension (.ndjson, .jsonl, "
        ".json, .csv, .tsv, optionally .gz) and the content is neither JSON nor "
        "delimited text with a header row",
        line=1,
    )


def _fhir_by_content(fmt: FileFormat, head: bytes) -> FileFormat:
    """Treat NDJSON whose first record is a FHIR resource as FHIR of that type."""
    first_line = head.lstrip(_WHITESPACE).split(b"\n", 1)[0]
    try:
        record = json.loads(first_line)
    except ValueError:
        return fmt
    if not isinstance(record, dict):
        return fmt
    resource_type = record.get("resourceType")
    if isinstance(resource_type, str) and RESOURCE_TYPE.match(resource_type) and "id" in record:
        return replace(fmt, kind=Kind.FHIR_NDJSON, dataset=resource_type)
    return fmt
