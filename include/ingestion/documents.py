"""Stored documents and the upsert statements that write them.

A FHIR resource is stored as itself and a CSV row as its columns, plus::

    _id          deterministic key (see include.ingestion.records)
    client_id    the client the record came from
    _provenance  {client_id, bucket, key, version_id, etag, line,
                  ingested_at, dag_run_id, record_hash}

``record_hash`` is the SHA-256 of the record's source text, or of its
canonical JSON for CSV rows and JSON arrays. The loader compares it to skip
records that did not change, so ``_provenance`` keeps pointing at the first
object version that delivered the current content.

The parse pass turns each record into the BSON of one statement of
MongoDB's ``update`` command, ready to send::

    {q: {_id: <key>, "_provenance.record_hash": {$ne: <hash>}},
     u: <document>,
     upsert: true}

(include.ingestion.loader explains the filter.)
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
# A statement contains the document plus a filter that repeats the key.
# pymongo sends a command up to 16,382 bytes above the document limit
# (_COMMAND_OVERHEAD in pymongo.message), so keys are kept below 4 KiB and a
# command with one statement always fits.
MAX_KEY_BYTES = 4 * 1024
RECORD_HASH_FIELD = "_provenance.record_hash"
_INT32 = struct.Struct("<i").pack
_UNSTORABLE_ERRORS = (InvalidDocument, OverflowError, UnicodeEncodeError, RecursionError)


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


_ID = b"\x02_id\x00"
_FILTER = b"\x03q\x00"
_FILTER_TO_DOCUMENT = b"\x00\x00\x03u\x00"  # closes {$ne: ...} and q, opens u
_HASH_ELEMENT = b"\x02record_hash\x00"
# Closes the hash string, _provenance and u, adds upsert: true, closes the statement.
_END = b"\x00\x00\x00\x08upsert\x00\x01\x00"


class _Layout:
    """Precompiled packing of the statement around a record, for one key and hash length.

    ``head`` packs the statement up to the record's fields: the statement
    length, the filter ``q`` and the start of the document ``u`` with
    ``_id``. ``tail`` packs the line, the record hash and the closing bytes.
    """

    def __init__(self, key_length: int, hash_length: int, provenance_head_bytes: int):
        id_element = len(_ID) + 4 + key_length + 1
        hash_string = 4 + hash_length + 1
        not_equal = 4 + len(b"\x02$ne\x00") + hash_string + 1
        filter_name = b"\x03" + RECORD_HASH_FIELD.encode("ascii") + b"\x00"
        self.filter_tail = filter_name + _INT32(not_equal) + b"\x02$ne\x00"
        self.filter_bytes = 4 + id_element + len(self.filter_tail) + hash_string + 2
        # Without the record's fields: length, _id, provenance head, line,
        # record_hash element and the two closing NULs.
        self.document_bytes = (
            4 + id_element + provenance_head_bytes + 4 + len(_HASH_ELEMENT) + hash_string + 2
        )
        # Without the document: length, q header, filter, u header, upsert
        # element (9 bytes) and closing NUL.
        self.statement_bytes = 4 + len(_FILTER) + self.filter_bytes + 3 + 9 + 1
        key = f"{len(_ID)}si{key_length}sx"
        self.head = struct.Struct(
            f"<i{len(_FILTER)}si{key}{len(self.filter_tail)}si{hash_length}sx"
            f"{len(_FILTER_TO_DOCUMENT)}si{key}"
        )
        self.tail = struct.Struct(f"<i{len(_HASH_ELEMENT)}si{hash_length}s{len(_END)}s")


class DocumentEncoder:
    """Encode validated records of one object version into upsert statements.

    ``client_id`` and ``_provenance`` are the same for every record of a
    file except ``line`` and ``record_hash``. Their BSON, and the rest of
    the statement around the record, is built once per file (and key and
    hash length). Per record only the record itself is encoded, and
    ``_id``, the line and the hash are packed around it.
    """

    def __init__(self, provenance: Provenance):
        self.provenance = provenance
        self._client_element = _string_element("client_id", provenance.client_id)
        self._fixed_provenance = bson.encode(provenance.to_dict())[4:-1]
        self._layouts: dict[tuple[int, int], _Layout] = {}
        self._heads: dict[int, bytes] = {}

    def _provenance_head(self, hash_length: int) -> bytes:
        """Return ``client_id`` and ``_provenance`` up to the value of ``line``."""
        head = self._heads.get(hash_length)
        if head is None:
            # length, fixed fields, line element (6 + 4), record_hash element
            # (type, name, length, hash, NUL), closing NUL
            length = 4 + len(self._fixed_provenance) + 10 + len(_HASH_ELEMENT) + 4
            length += hash_length + 1 + 1
            head = self._heads[hash_length] = (
                self._client_element
                + b"\x03_provenance\x00"
                + _INT32(length)
                + self._fixed_provenance
                + b"\x10line\x00"
            )
        return head

    def _layout(self, key_length: int, hash_length: int) -> _Layout:
        provenance_bytes = len(self._provenance_head(hash_length))
        layout = self._layouts[key_length, hash_length] = _Layout(
            key_length, hash_length, provenance_bytes
        )
        return layout

    def upsert(self, record: dict[str, Any], key: str, line: int, record_hash: bytes) -> bytes:
        """Return the upsert statement of ``record``, whose document starts with ``_id``.

        ``record_hash`` is ASCII text as bytes (a hex digest). Raise
        :class:`BadRecord` when the record already has one of the added
        fields, or contains values BSON cannot store: integers beyond 64
        bits, NUL in field names, lone surrogates in strings, nesting too
        deep. Raise it too when the key would exceed 4 KiB or the document
        16 MiB.
        """
        if "_id" in record or "client_id" in record or "_provenance" in record:
            names = [name for name in RESERVED_FIELDS if name in record]
            raise BadRecord(
                RESERVED_FIELD, f"field(s) {names} are reserved for the exchange's own metadata"
            )
        try:
            body = bson.encode(record)
            key_bytes = key.encode("utf-8")
        except _UNSTORABLE_ERRORS as exc:
            raise BadRecord(UNSTORABLE, f"the record cannot be stored as BSON: {exc}") from None
        if len(key_bytes) > MAX_KEY_BYTES:
            raise BadRecord(
                RECORD_TOO_LARGE,
                f"the key is {len(key_bytes)} bytes long, above the {MAX_KEY_BYTES}-byte "
                "limit; choose shorter key columns (INGESTION_KEY_COLUMNS)",
            )

        sizes = (len(key_bytes), len(record_hash))
        layout = self._layouts.get(sizes) or self._layout(*sizes)
        # The record's own length prefix and closing NUL (5 bytes) are dropped.
        document = layout.document_bytes + len(body) - 5
        if document > MAX_DOCUMENT_BYTES:
            raise BadRecord(
                RECORD_TOO_LARGE,
                f"the stored document would be {document} bytes, above MongoDB's "
                f"{MAX_DOCUMENT_BYTES}-byte limit",
            )
        id_length = len(key_bytes) + 1
        return b"".join(
            (
                layout.head.pack(
                    layout.statement_bytes + document,
                    _FILTER,
                    layout.filter_bytes,
                    _ID,
                    id_length,
                    key_bytes,
                    layout.filter_tail,
                    len(record_hash) + 1,
                    record_hash,
                    _FILTER_TO_DOCUMENT,
                    document,
                    _ID,
                    id_length,
                    key_bytes,
                ),
                memoryview(body)[4:-1],
                self._heads[len(record_hash)],
                layout.tail.pack(line, _HASH_ELEMENT, len(record_hash) + 1, record_hash, _END),
            )
        )


def _string_element(name: str, value: str) -> bytes:
    """Return one BSON UTF-8 string element (type 0x02)."""
    data = value.encode("utf-8")
    return b"\x02" + name.encode("utf-8") + b"\x00" + _INT32(len(data) + 1) + data + b"\x00"
