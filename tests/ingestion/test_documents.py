"""BSON documents with _id, client_id and _provenance."""

from datetime import UTC, datetime

import bson
import pytest

from include.ingestion import report
from include.ingestion.documents import MAX_DOCUMENT_BYTES, DocumentEncoder, Provenance
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


def test_document_equals_plain_encoding():
    record = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ames", "given": ["Ana"]}]}
    data = DocumentEncoder(PROVENANCE).encode(dict(record), "acme-health/Patient/p1", 7, "ab" * 32)

    expected = {
        "_id": "acme-health/Patient/p1",
        **record,
        "client_id": "acme-health",
        "_provenance": {**PROVENANCE.to_dict(), "line": 7, "record_hash": "ab" * 32},
    }
    assert data == bson.encode(expected)
    assert list(bson.decode(data))[0] == "_id"


def test_non_ascii_values_and_short_hash():
    record = {"name": "Zo\u00eb \u6771\u4eac", "n": 1.5, "ok": True, "none": None}
    data = DocumentEncoder(PROVENANCE).encode(record, "acme-health/t/\u00e9", 1, "h")
    decoded = bson.decode(data)
    assert decoded["name"] == "Zo\u00eb \u6771\u4eac"
    assert decoded["_id"] == "acme-health/t/\u00e9"
    assert decoded["_provenance"]["record_hash"] == "h"
    assert decoded["_provenance"]["ingested_at"] == PROVENANCE.ingested_at.replace(tzinfo=None)


@pytest.mark.parametrize("field", ["_id", "client_id", "_provenance"])
def test_reserved_fields_rejected(field):
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).encode({field: "x"}, "k", 1, "h")
    assert raised.value.reason == report.RESERVED_FIELD


@pytest.mark.parametrize(
    "record",
    [{"n": 2**64}, {"bad\x00key": 1}, {"text": "\ud800"}],
    ids=["huge-integer", "nul-in-key", "lone-surrogate"],
)
def test_unstorable_values_rejected(record):
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).encode(record, "k", 1, "h")
    assert raised.value.reason == report.UNSTORABLE


def test_document_over_limit_rejected():
    record = {"note": "a" * MAX_DOCUMENT_BYTES}
    with pytest.raises(BadRecord) as raised:
        DocumentEncoder(PROVENANCE).encode(record, "k", 1, "h")
    assert raised.value.reason == report.RECORD_TOO_LARGE
