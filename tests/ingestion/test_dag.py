"""The ingestion DAG with dag.test() on the local stack (moto with IAM auth, MongoDB stand-in)."""

from __future__ import annotations

import json
import uuid

import psutil
import pytest

from include import registry
from include.ingestion import ledger
from include.ingestion.tasks import exchange_db
from include.naming import client_names
from tests.ingestion.expected import distinct_keys
from tests.ingestion.inputs import bad_files, good_files
from tests.ingestion.stack_helpers import (
    collection_counts,
    keys_under,
    operator_s3,
    provision_active_client,
    run_ingestion,
    task_states,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture
def stack_db(local_stack, airflow_db, monkeypatch):
    """Give the test its own database on the stack's MongoDB."""
    monkeypatch.setenv("MONGO_DB", f"ingest_{uuid.uuid4().hex[:10]}")
    with exchange_db() as db:
        yield db
        db.client.drop_database(db.name)


def _client_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"


def test_run_loads_one_client_and_skips_idle_one(stack_db):
    busy, idle = _client_id("busy"), _client_id("idle")
    provision_active_client(busy)
    provision_active_client(idle)
    bucket = client_names(busy).bucket
    s3 = operator_s3()
    files = good_files()
    bad = bad_files()
    upload(s3, bucket, files)
    upload(s3, bucket, {name: data for name, (data, _) in bad.items()})

    dag_run = run_ingestion()

    states = task_states(dag_run)
    assert states[("list_clients", -1)] == "success"
    branch_states = sorted(
        state for (task_id, _), state in states.items() if task_id != "list_clients"
    )
    assert branch_states == ["skipped", "skipped", "success", "success"], states
    assert str(dag_run.state) == "success"
    for collection, keys in distinct_keys(files, busy).items():
        assert set(stack_db[collection].distinct("_id")) == keys, collection
    assert keys_under(s3, bucket, "incoming/") == set()
    for name, (_, reason) in bad.items():
        entry = stack_db[ledger.LEDGER].find_one({"bucket": bucket, "key": f"incoming/{name}"})
        assert entry["state"] == ledger.QUARANTINED, name
        assert entry["reason"] == reason, name
        error_report = s3.get_object(Bucket=bucket, Key=f"quarantine/{name}.error.json")
        assert json.loads(error_report["Body"].read())["reason"] == reason
    processed = s3.head_object(Bucket=bucket, Key="processed/Patient.000.ndjson")
    assert processed["ServerSideEncryption"] == "aws:kms"
    assert processed["SSEKMSKeyId"] == registry.get_client_record(stack_db, busy)["kms_key_arn"]
    outcomes = [e["outcome"] for e in stack_db.audit_events.find({"client_id": busy})]
    assert outcomes == ["succeeded"]


def test_second_run_skips_and_adds_nothing(stack_db):
    client_id = _client_id("again")
    provision_active_client(client_id)
    upload(operator_s3(), client_names(client_id).bucket, good_files())
    run_ingestion({"client_id": client_id})
    before = collection_counts(stack_db)

    dag_run = run_ingestion({"client_id": client_id})

    states = task_states(dag_run)
    assert states[("client_branch.find_new_objects", 0)] == "skipped"
    assert states[("client_branch.load_objects", 0)] == "skipped"
    assert collection_counts(stack_db) == before


def test_manual_run_for_inactive_client_fails(stack_db):
    dag_run = run_ingestion({"client_id": "not-onboarded"}, retries=0)
    assert task_states(dag_run)[("list_clients", -1)] == "failed"
    events = list(stack_db.audit_events.find({"client_id": "not-onboarded"}))
    assert [event["outcome"] for event in events] == ["failed"]
    assert "not an active client" in events[0]["details"]["error"]


def test_failed_load_audited_then_next_run_completes(stack_db, monkeypatch):
    client_id = _client_id("flaky")
    provision_active_client(client_id)
    bucket = client_names(client_id).bucket
    s3 = operator_s3()
    upload(s3, bucket, good_files())

    def copy_fails(*args, **kwargs):
        raise ConnectionError("simulated network error during CopyObject")

    monkeypatch.setattr("include.ingestion.pipeline.copy_version", copy_fails)
    failed_run = run_ingestion({"client_id": client_id}, retries=0)
    monkeypatch.undo()
    monkeypatch.setenv("MONGO_DB", stack_db.name)

    assert task_states(failed_run)[("client_branch.load_objects", 0)] == "failed"
    states = {entry["state"] for entry in stack_db[ledger.LEDGER].find({"bucket": bucket})}
    assert states == {ledger.FAILED}
    events = list(stack_db.audit_events.find({"client_id": client_id}))
    assert [event["outcome"] for event in events] == ["failed"]
    assert "CopyObject" in events[0]["details"]["error"]
    assert len(keys_under(s3, bucket, "incoming/")) == len(good_files())

    run_ingestion({"client_id": client_id})

    states = {entry["state"] for entry in stack_db[ledger.LEDGER].find({"bucket": bucket})}
    assert states == {ledger.LOADED, ledger.IGNORED}
    assert keys_under(s3, bucket, "incoming/") == set()
    for collection, keys in distinct_keys(good_files(), client_id).items():
        assert stack_db[collection].count_documents({}) == len(keys), collection


def test_large_fhir_file_uses_workers(stack_db, monkeypatch, worker_pids):
    client_id = _client_id("large")
    provision_active_client(client_id)
    bucket = client_names(client_id).bucket
    records = [
        {"resourceType": "Patient", "id": f"p{number}", "gender": "unknown"}
        for number in range(2_600)
    ]
    records[1_234] = {"resourceType": "Patient", "id": "p7", "gender": "female"}
    data = b"".join(json.dumps(record).encode() + b"\n" for record in records)
    upload(operator_s3(), bucket, {"Patient.000.ndjson": data})
    monkeypatch.setenv("INGESTION_BATCH_SIZE", "500")
    monkeypatch.setenv("INGESTION_PARSE_PROCESSES", "2")
    run_ingestion({"client_id": client_id})

    assert len(worker_pids) == 2
    assert not any(psutil.pid_exists(pid) for pid in worker_pids)
    patients = stack_db["fhir_Patient"]
    assert patients.count_documents({"client_id": client_id}) == 2_599
    repeated = patients.find_one({"_id": f"{client_id}/Patient/p7"})
    assert repeated["gender"] == "female"
    assert repeated["_provenance"]["line"] == 1_235
    entry = stack_db[ledger.LEDGER].find_one({"bucket": bucket})
    assert entry["state"] == ledger.LOADED
    assert entry["parse_processes"] == 2
