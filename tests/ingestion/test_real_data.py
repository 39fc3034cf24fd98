"""Every file of the shared sample exports through the DAG on the local stack.

The exports are read from the shared data folder next to the repository and
are never copied into it. Without that folder the tests are skipped.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from include.ingestion import ledger
from include.ingestion.tasks import exchange_db
from include.naming import client_names
from tests.ingestion.expected import distinct_keys
from tests.ingestion.stack_helpers import (
    collection_counts,
    keys_under,
    operator_s3,
    provision_active_client,
    run_ingestion,
    upload,
)

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXPORT_FOLDERS = ("fhir-bulk-10-patients", "synthea-csv")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.airflow,
    pytest.mark.skipif(
        not SHARED_DATA.is_dir(),
        reason="../shared/data is absent: the real-data tests read the sample exports there",
    ),
]


def _shared_files() -> dict[str, dict[str, bytes]]:
    return {
        folder: {path.name: path.read_bytes() for path in sorted((SHARED_DATA / folder).iterdir())}
        for folder in EXPORT_FOLDERS
    }


@pytest.fixture(scope="module")
def loaded_client(local_stack, airflow_db):
    """Provision a client, upload every shared file, run the DAG once; yield its names."""
    database = f"ingest_real_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MONGO_DB", database)
        client_id = f"real-{uuid.uuid4().hex[:6]}"
        provision_active_client(client_id)
        bucket = client_names(client_id).bucket
        s3 = operator_s3()
        exports = _shared_files()
        for folder, files in exports.items():
            upload(s3, bucket, {f"{folder}/{name}": data for name, data in files.items()})
        run_ingestion({"client_id": client_id})
        with exchange_db() as db:
            yield {"client_id": client_id, "bucket": bucket, "s3": s3, "db": db, "exports": exports}
            db.client.drop_database(database)


def _expected(loaded_client) -> dict[str, set[str]]:
    files = {
        name: data for export in loaded_client["exports"].values() for name, data in export.items()
    }
    return distinct_keys(files, loaded_client["client_id"])


def test_counts_equal_distinct_keys(loaded_client):
    db = loaded_client["db"]
    expected = _expected(loaded_client)
    assert collection_counts(db) == {name: len(keys) for name, keys in expected.items()}
    for collection, keys in expected.items():
        assert set(db[collection].distinct("_id")) == keys, collection


def test_every_file_processed_none_quarantined(loaded_client):
    db, s3, bucket = loaded_client["db"], loaded_client["s3"], loaded_client["bucket"]
    entries = list(db[ledger.LEDGER].find({"bucket": bucket}))
    uploaded = sum(len(files) for files in loaded_client["exports"].values())
    assert len(entries) == uploaded
    by_state = {entry["key"].rsplit("/", 1)[1]: entry["state"] for entry in entries}
    assert by_state.pop("log.ndjson") == ledger.IGNORED
    assert set(by_state.values()) == {ledger.LOADED}
    assert all(entry["bad_records"] == 0 for entry in entries)
    assert keys_under(s3, bucket, "incoming/") == set()
    assert len(keys_under(s3, bucket, "processed/")) == uploaded


def test_second_run_adds_nothing(loaded_client, monkeypatch):
    db = loaded_client["db"]
    monkeypatch.setenv("MONGO_DB", db.name)
    before = collection_counts(db)
    entries_before = db[ledger.LEDGER].count_documents({})

    run_ingestion({"client_id": loaded_client["client_id"]})

    assert collection_counts(db) == before
    assert db[ledger.LEDGER].count_documents({}) == entries_before


def test_resent_patient_file_updates_one_document(loaded_client, monkeypatch):
    db, s3, bucket = loaded_client["db"], loaded_client["s3"], loaded_client["bucket"]
    monkeypatch.setenv("MONGO_DB", db.name)
    original = loaded_client["exports"]["fhir-bulk-10-patients"]["Patient.000.ndjson"]
    lines = original.splitlines()
    patient = json.loads(lines[4])
    patient["gender"] = "unknown" if patient.get("gender") != "unknown" else "other"
    lines[4] = json.dumps(patient, separators=(",", ":")).encode()
    before = {doc["_id"]: doc for doc in db.fhir_Patient.find()}

    upload(s3, bucket, {"fhir-bulk-10-patients/Patient.000.ndjson": b"\n".join(lines) + b"\n"})
    run_ingestion({"client_id": loaded_client["client_id"]})

    after = {doc["_id"]: doc for doc in db.fhir_Patient.find()}
    changed_id = f"{loaded_client['client_id']}/Patient/{patient['id']}"
    assert after.keys() == before.keys()
    assert after[changed_id]["gender"] == patient["gender"]
    assert [key for key in after if after[key] != before[key]] == [changed_id]
    entry = db[ledger.LEDGER].find_one(
        {"key": "incoming/fhir-bulk-10-patients/Patient.000.ndjson", "state": ledger.LOADED},
        sort=[("finished_at", -1)],
    )
    assert entry["load"]["updated"] == 1
    assert entry["load"]["inserted"] == 0
    assert entry["load"]["unchanged"] == len(lines) - 1
