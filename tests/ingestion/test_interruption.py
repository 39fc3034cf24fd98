"""A load killed between two bulk writes, then run again: nothing lost, nothing doubled."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from include.ingestion import ledger
from include.ingestion.tasks import exchange_db
from include.naming import client_names
from tests.ingestion.stack_helpers import (
    REPO_ROOT,
    keys_under,
    operator_s3,
    provision_active_client,
    run_ingestion,
    upload,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

RECORDS = 5000
BATCH_SIZE = 500
KILL_AFTER_BATCHES = 3
LEASE_SECONDS = 2


def _conditions() -> bytes:
    line = '{"resourceType":"Condition","id":"c%05d","subject":{"reference":"Patient/p%d"}}\n'
    return "".join(line % (n, n % 50) for n in range(RECORDS)).encode()


@pytest.fixture
def interrupted_env(local_stack, airflow_db, monkeypatch):
    monkeypatch.setenv("MONGO_DB", f"ingest_kill_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("INGESTION_BATCH_SIZE", str(BATCH_SIZE))
    monkeypatch.setenv("INGESTION_LEASE_SECONDS", str(LEASE_SECONDS))
    with exchange_db() as db:
        yield db
        db.client.drop_database(db.name)


def test_killed_load_rerun_leaves_distinct_records(interrupted_env):
    db = interrupted_env
    client_id = f"kill-{uuid.uuid4().hex[:6]}"
    provision_active_client(client_id)
    bucket = client_names(client_id).bucket
    s3 = operator_s3()
    data = _conditions()
    upload(s3, bucket, {"Condition.000.ndjson": data})

    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.ingestion.killed_load",
            client_id,
            bucket,
            str(KILL_AFTER_BATCHES),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        timeout=300,
        check=False,
    )

    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    (entry,) = db[ledger.LEDGER].find({"bucket": bucket})
    assert entry["state"] == ledger.CLAIMED
    assert db.fhir_Condition.count_documents({}) == KILL_AFTER_BATCHES * BATCH_SIZE
    assert keys_under(s3, bucket, "incoming/") == {"incoming/Condition.000.ndjson"}
    assert keys_under(s3, bucket, "processed/") == set()

    time.sleep(LEASE_SECONDS + 1)
    run_ingestion({"client_id": client_id})

    (entry,) = db[ledger.LEDGER].find({"bucket": bucket})
    assert entry["state"] == ledger.LOADED
    assert entry["attempts"] == 2
    assert entry["load"]["inserted"] == RECORDS - KILL_AFTER_BATCHES * BATCH_SIZE
    assert entry["load"]["unchanged"] == KILL_AFTER_BATCHES * BATCH_SIZE
    assert db.fhir_Condition.count_documents({}) == RECORDS
    assert len(db.fhir_Condition.distinct("_id")) == RECORDS
    assert keys_under(s3, bucket, "incoming/") == set()
    processed = s3.get_object(Bucket=bucket, Key="processed/Condition.000.ndjson")["Body"].read()
    assert hashlib.sha256(processed).hexdigest() == hashlib.sha256(data).hexdigest()
    original = s3.get_object(
        Bucket=bucket, Key="incoming/Condition.000.ndjson", VersionId=entry["version_id"]
    )["Body"].read()
    assert original == data
