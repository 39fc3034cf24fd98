"""Stored documents: the record's own fields, ``client_id`` and ``_provenance``.

A FHIR resource is stored as itself and a CSV row as its columns, plus::

    _id          deterministic key (see include.ingestion.records)
    client_id    the client the record came from
    _provenance  {client_id, bucket, key, version_id, etag, line,
                  ingested_at, dag_run_id, record_hash}

``record_hash`` is the SHA-256 of the record's source text, or of its
canonical JSON for CSV rows and JSON arrays. The loader compares it to skip
records that did not change, so ``_provenance`` keeps pointing at the first
object version that delivered the current content.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import bson
from bson.errors import InvalidDocument

from include.ingestion.records import RESERVED_FIELDS, BadRecord
from include.ingestion.report import RECORD_TOO_LARGE, RESERVED_FIELD, UNSTORABLE

# MongoDB's maximum BSON document size.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_INT32 = struct.Struct("<i").pack


@dataclass(frozen=True)
class Provenance:
    """Origin of the records of one object version: client, object and DAG run."""

    client_id: str
    bucket: str
    key: str
    version_id: str
    etag: str
    ingested_at: datetime
    dag_run_id: str

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as stored in ``_provenance``, before line and hash."""
        return asdict(self)


class DocumentEncoder:
    """Encode validated records of one object version into BSON documents.

    ``client_id`` and ``_provenance`` are the same for every record of a
    file except ``line`` and ``record_hash``, so their BSON is built once
    here and only those two values are spliced in per record. On large
    files that saves a dict copy and a nested encode per record.
    """

    def __init__(self, provenance: Provenance):
        self._client_element = _string_element("client_id", provenance.client_id)
        self._fixed_provenance = bson.encode(provenance.to_dict())[4:-1]
        self._tails: dict[int, tuple[bytes, bytes, int]] = {}

    def _tail(self, hash_length: int) -> tuple[bytes, bytes, int]:
        """Build and cache the bytes spliced around the line number and the record hash.

        Returns the bytes before the line number, the bytes between it and
        the hash value, and how many bytes the splice adds to the record's
        own BSON.
        """
        after_line = b"\x02record_hash\x00" + _INT32(hash_length + 1)
        # _provenance: length, fixed fields, line (6 + 4 bytes), the hash
        # element, its value and NUL, and the closing NUL.
        length = 4 + len(self._fixed_provenance) + 10 + len(after_line) + hash_length + 2
        before_line = (
            self._client_element
            + b"\x03_provenance\x00"
            + _INT32(length)
            + self._fixed_provenance
            + b"\x10line\x00"
        )
        # The record's closing NUL (1 byte) moves behind the splice: the line
        # number (4), the hash value and the three closing NULs.
        added = len(before_line) + 4 + len(after_line) + hash_length + 3 - 1
        tail = self._tails[hash_length] = (before_line, after_line, added)
        return tail

    def encode(self, record: dict[str, Any], key: str, line: int, record_hash: str) -> bytes:
        """Return the BSON of ``record`` with ``_id`` (first), ``client_id`` and ``_provenance``.

        ``record`` gets ``_id`` set in place: records come straight from the
        parser and are dropped after encoding. Raise :class:`BadRecord` when
        the record already has one of the added fields, contains values BSON
        cannot store (integers beyond 64 bits, NUL in field names, lone
        surrogates in strings) or would exceed 16 MiB.
        """
        if "_id" in record or "client_id" in record or "_provenance" in record:
            names = [name for name in RESERVED_FIELDS if name in record]
            raise BadRecord(
                RESERVED_FIELD, f"field(s) {names} are reserved for the exchange's own metadata"
            )
        record["_id"] = key
        try:
            body = bson.encode(record)
        except (InvalidDocument, OverflowError, UnicodeEncodeError) as exc:
            raise BadRecord(UNSTORABLE, f"the record cannot be stored as BSON: {exc}") from None

        hash_bytes = record_hash.encode("ascii")
        tail = self._tails.get(len(hash_bytes)) or self._tail(len(hash_bytes))
        before_line, after_line, added = tail
        total = len(body) + added
        if total > MAX_DOCUMENT_BYTES:
            raise BadRecord(
                RECORD_TOO_LARGE,
                f"the stored document would be {total} bytes, above MongoDB's "
                f"{MAX_DOCUMENT_BYTES}-byte limit",
            )
        # The body's own length prefix is replaced and its closing NUL moves
        # to the end, after the spliced fields.
        return b"".join(
            (
                _INT32(total),
                memoryview(body)[4:-1],
                before_line,
                _INT32(line),
                after_line,
                hash_bytes,
                b"\x00\x00\x00",  # ends of the hash string, of _provenance, of the document
            )
        )


def _string_element(name: str, value: str) -> bytes:
    """Return one BSON UTF-8 string element (type 0x02)."""
    data = value.encode("utf-8")
    return b"\x02" + name.encode("utf-8") + b"\x00" + _INT32(len(data) + 1) + data + b"\x00"
