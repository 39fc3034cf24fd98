"""Bulk upserts: inserts, unchanged re-runs, single-document updates, write errors."""

from datetime import UTC, datetime

import bson
from pymongo.errors import BulkWriteError

from include.ingestion import loader
from include.ingestion.documents import DocumentEncoder, Provenance
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
        record_hash = bson.encode(record).hex()[-16:] + str(len(str(record)))
        spool.add(key, record_hash, line, encoder.encode(dict(record), key, line, record_hash))
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


class _RejectingCollection:
    name = "fhir_Patient"

    def bulk_write(self, operations, ordered):
        assert ordered is False
        raise BulkWriteError(
            {
                "nUpserted": 1,
                "nModified": 0,
                "writeErrors": [
                    {"index": 1, "code": 11000, "errmsg": "E11000 duplicate key"},
                    {"index": 2, "code": 2, "errmsg": "invalid field name"},
                ],
                "writeConcernErrors": [],
            }
        )


def test_write_errors_mapped_to_lines():
    batch = SpoolBatch(
        ids=["a", "b", "c"],
        hashes=["h1", "h2", "h3"],
        lines=[10, 11, 12],
        documents=[bson.encode({"_id": key}) for key in "abc"],
    )
    counts, rejected = write_batch(_RejectingCollection(), batch)
    assert (counts.inserted, counts.unchanged, counts.rejected) == (1, 1, 1)
    assert rejected == [{"line": 12, "code": 2, "message": "invalid field name"}]


def test_rejected_documents_reported(monkeypatch):
    report = ErrorReport()
    with _spool(_patients(3)) as spool:
        load_spool(_RejectingCollection(), spool, report)
    assert report.counts == {WRITE_REJECTED: 1}
    assert report.errors[0]["line"] == 3
