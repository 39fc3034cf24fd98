"""Upsert statements: the stored document with _id, client_id and _provenance, and its filter."""

from datetime import UTC, datetime

import bson
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from include.ingestion import report
from include.ingestion.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_KEY_BYTES,
    DocumentEncoder,
    Provenance,
)
from include.ingestion.records import BadRecord

PROVENANCE = Provenance(
    client_id="acme-health",
    bucket="cdx-acme-health",
    key="incoming/Patient.000.ndjson",
    version_id="3HL4kqtJlcpXroDTDmJ",
    etag='"9b2cf535f27731c974343645a3985328"',
    ingested_at=datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=UTC),
    dag_run_id="scheduled__2025-03-04T05:00:00+00:00",
)


def _expected(record: dict, key: str, line: int, record_hash: str) -> bytes:
    document = {
        "_id": key,
        **record,
        "client_id": PROVENANCE.client_id,
        "_provenance": {**PROVENANCE.to_dict(), "line": line, "record_hash": record_hash},
    }
    return bson.encode(
        {
            "q": {"_id": key, "_provenance.record_hash": {"$ne": record_hash}},
            "u": document,
            "upsert": True,
        }
    )


def test_statement_equals_plain_encoding():
    record = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ames", "given": ["Ana"]}]}
    key, record_hash = "acme-health/Patient/p1", "ab" * 32
    data = DocumentEncoder(PROVENANCE).upsert(record, key, 7, record_hash.encode())

    assert data == _expected(record, key, 7, record_hash)
    assert list(bson.decode(data)["u"])[0] == "_id"
    assert "_id" not in record


def test_varied_key_and_hash_lengths():
    encoder = DocumentEncoder(PROVENANCE)
    cases = [("acme-health/t/\u00e9", "h"), ("acme-health/t/long-" + "x" * 300, "ab" * 32)] * 2
    for line, (key, record_hash) in enumerate(cases, start=1):
        record = {"name": "Zo\u00eb \u6771\u4eac", "n": 1.5, "ok": True, "none": None}
        data = encoder.upsert(record, key, line, record_hash.encode())
        assert data == _expected(record, key, line, record_hash)


def test_ingested_at_stored_as_naive_utc():
    data = DocumentEncoder(PROVENANCE).upsert({"a": 1}, "k", 1, b"h")
    stored = bson.decode(data)["u"]["_provenance"]["ingested_at"]
    assert stored == PROVENANCE.ingested_at.replace(tzinfo=None)


@pytest.mark.parametrize("field", ["_id", "client_id", "_provenance"])
def test_reserved_fields_rejected(field):
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).upsert({field: "x"}, "k", 1, b"h")
    assert raised.value.reason == report.RESERVED_FIELD


@pytest.mark.parametrize(
    "record",
    [{"n": 2**64}, {"bad\x00key": 1}, {"text": "\ud800"}],
    ids=["huge-integer", "nul-in-key", "lone-surrogate"],
)
def test_unstorable_values_rejected(record):
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).upsert(record, "k", 1, b"h")
    assert raised.value.reason == report.UNSTORABLE


def test_deep_nesting_is_unstorable():
    record: dict = {}
    inner = record
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).upsert(record, "k", 1, b"h")
    assert raised.value.reason == report.UNSTORABLE


def test_document_over_limit_rejected():
    record = {"note": "a" * MAX_DOCUMENT_BYTES}
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).upsert(record, "k", 1, b"h")
    assert raised.value.reason == report.RECORD_TOO_LARGE


def test_document_at_limit_accepted():
    encoder = DocumentEncoder(PROVENANCE)
    raw = CodecOptions(document_class=RawBSONDocument)
    empty = bson.decode(encoder.upsert({"note": ""}, "k", 1, b"h"), raw)["u"].raw
    record = {"note": "a" * (MAX_DOCUMENT_BYTES - len(empty))}
    data = encoder.upsert(record, "k", 1, b"h")
    assert bson.decode(data)["u"]["note"] == record["note"]


def test_key_over_limit_rejected():
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).upsert({"a": 1}, "k" * (MAX_KEY_BYTES + 1), 1, b"h")
    assert raised.value.reason == report.RECORD_TOO_LARGE
    assert "INGESTION_KEY_COLUMNS" in raised.value.message
