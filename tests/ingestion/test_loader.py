"""Bulk upserts: inserts, unchanged re-runs, single-document updates, write errors."""

from datetime import UTC, datetime

import bson
import pytest
from pymongo import MongoClient, WriteConcern, monitoring
from pymongo.errors import AutoReconnect, WriteConcernError

from include.ingestion import loader
from include.ingestion.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_KEY_BYTES,
    DocumentEncoder,
    Provenance,
)
from include.ingestion.loader import ensure_collection_indexes, load_spool, write_batch
from include.ingestion.report import WRITE_REJECTED, ErrorReport
from include.ingestion.spool import Spool, SpoolBatch


def _spool(records: list[dict], batch_size: int = 4, version: str = "v1") -> Spool:
    provenance = Provenance(
        "acme-health",
        "cdx-acme-health",
        "incoming/Patient.000.ndjson",
        version,
        '"e"',
        datetime(2025, 1, 1, tzinfo=UTC),
        "run-1",
    )
    encoder = DocumentEncoder(provenance)
    spool = Spool(batch_size)
    for line, record in enumerate(records, start=1):
        key = f"acme-health/Patient/{record['id']}"
        record_hash = (bson.encode(record).hex()[-16:] + str(len(str(record)))).encode()
        spool.add(key, line, encoder.upsert(record, key, line, record_hash))
    return spool


def _patients(count: int, changed: int | None = None) -> list[dict]:
    return [
        {"resourceType": "Patient", "id": f"p{n}", "family": "Ames" if n != changed else "Baker"}
        for n in range(count)
    ]


def test_first_load_inserts_every_document(mongo_db):
    with _spool(_patients(10)) as spool:
        counts = load_spool(mongo_db.fhir_Patient, spool, ErrorReport())
    assert counts.inserted == 10
    assert counts.batches == counts.bulk_writes == 3
    assert mongo_db.fhir_Patient.count_documents({}) == 10


def test_second_load_changes_nothing(mongo_db):
    with _spool(_patients(10)) as spool:
        load_spool(mongo_db.fhir_Patient, spool, ErrorReport())
    before = list(mongo_db.fhir_Patient.find().sort("_id"))
    with _spool(_patients(10), version="v2") as spool:
        counts = load_spool(mongo_db.fhir_Patient, spool, ErrorReport())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 0, 10)
    assert list(mongo_db.fhir_Patient.find().sort("_id")) == before


def test_changed_record_updates_one_document(mongo_db):
    with _spool(_patients(10)) as spool:
        load_spool(mongo_db.fhir_Patient, spool, ErrorReport())
    with _spool(_patients(10, changed=3), version="v2") as spool:
        counts = load_spool(mongo_db.fhir_Patient, spool, ErrorReport())
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 9)
    changed = mongo_db.fhir_Patient.find_one({"_id": "acme-health/Patient/p3"})
    assert changed["family"] == "Baker"
    assert changed["_provenance"]["version_id"] == "v2"
    other = mongo_db.fhir_Patient.find_one({"_id": "acme-health/Patient/p4"})
    assert other["_provenance"]["version_id"] == "v1"


def test_after_batch_called_per_batch(mongo_db):
    seen = []
    with _spool(_patients(9)) as spool:
        load_spool(mongo_db.fhir_Patient, spool, ErrorReport(), after_batch=seen.append)
    assert seen == [1, 2, 3]


def test_indexes_created(mongo_db):
    loader._indexed.clear()
    ensure_collection_indexes(mongo_db.csv_patients)
    ensure_collection_indexes(mongo_db.csv_patients)
    indexes = mongo_db.csv_patients.index_information()
    assert "client_id" in indexes
    assert "provenance_object_version" in indexes


class _FakeDatabase:
    def __init__(self, replies):
        self.replies = list(replies)
        self.commands = []

    def command(self, command):
        self.commands.append(command)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class _FakeCollection:
    name = "fhir_Patient"

    def __init__(self, *replies, write_concern=None):
        self.database = _FakeDatabase(replies)
        self.write_concern = write_concern or WriteConcern()


REJECTING_REPLY = {
    "ok": 1.0,
    "n": 1,
    "nModified": 0,
    "upserted": [{"index": 0, "_id": "a"}],
    "writeErrors": [
        {"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"},
        {"index": 2, "code": 2, "errmsg": "invalid field name"},
    ],
}


def _batch() -> SpoolBatch:
    return SpoolBatch(
        lines=[10, 11, 12],
        statements=[bson.encode({"q": {"_id": key}, "u": {"_id": key}}) for key in "abc"],
    )


def test_write_errors_mapped_to_lines():
    collection = _FakeCollection(REJECTING_REPLY)
    counts, rejected = write_batch(collection, _batch())
    assert (counts.inserted, counts.unchanged, counts.rejected) == (1, 1, 1)
    assert rejected == [{"line": 12, "code": 2, "message": "invalid field name"}]
    (command,) = collection.database.commands
    assert command["update"] == "fhir_Patient"
    assert command["ordered"] is False
    assert [statement.raw for statement in command["updates"]] == _batch().statements
    assert "writeConcern" not in command


def test_rejected_documents_reported():
    report = ErrorReport()
    with _spool(_patients(3)) as spool:
        load_spool(_FakeCollection(REJECTING_REPLY), spool, report)
    assert report.counts == {WRITE_REJECTED: 1}
    assert report.errors[0]["line"] == 3


def test_batch_sent_again_after_network_error():
    collection = _FakeCollection(AutoReconnect("connection reset"), {"ok": 1.0, "nModified": 1})
    counts, rejected = write_batch(collection, _batch())
    assert (counts.updated, rejected) == (1, [])
    assert len(collection.database.commands) == 2


def test_write_concern_sent_and_error_raised():
    reply = {"ok": 1.0, "writeConcernError": {"code": 64, "errmsg": "waiting for replication"}}
    collection = _FakeCollection(reply, write_concern=WriteConcern(w="majority", wtimeout=5000))
    with pytest.raises(WriteConcernError, match="waiting for replication"):
        write_batch(collection, _batch())
    (command,) = collection.database.commands
    assert command["writeConcern"] == {"w": "majority", "wtimeout": 5000}


class _UpdateCounter(monitoring.CommandListener):
    def __init__(self):
        self.count = 0

    def started(self, event):
        self.count += event.command_name == "update"

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_one_update_command_per_batch(mongo_uri, mongo_db):
    counter = _UpdateCounter()
    client = MongoClient(mongo_uri, event_listeners=[counter])
    try:
        with _spool(_patients(10)) as spool:
            counts = load_spool(client[mongo_db.name].fhir_Patient, spool, ErrorReport())
    finally:
        client.close()
    assert counts.bulk_writes == counter.count == 3
    assert mongo_db.fhir_Patient.count_documents({}) == 10


def test_max_size_document_and_key_load(mongo_db):
    encoder = DocumentEncoder(
        Provenance("acme-health", "b", "k", "v1", '"e"', datetime(2025, 1, 1, tzinfo=UTC), "r")
    )
    key = "acme-health/t/" + "k" * (MAX_KEY_BYTES - len("acme-health/t/"))
    empty = bson.decode(encoder.upsert({"pad": ""}, key, 1, b"h" * 64))["u"]
    padding = MAX_DOCUMENT_BYTES - len(bson.encode(empty))
    with Spool(batch_size=1000) as spool:
        spool.add("small", 1, encoder.upsert({"pad": "x"}, "acme-health/t/small", 1, b"h" * 64))
        spool.add(key, 2, encoder.upsert({"pad": "a" * padding}, key, 2, b"h" * 64))
        counts = load_spool(mongo_db.csv_t, spool, ErrorReport())
    assert (counts.inserted, counts.batches) == (2, 2)
    stored = mongo_db.csv_t.find_one({"_id": key})
    assert len(bson.encode(stored)) == MAX_DOCUMENT_BYTES
