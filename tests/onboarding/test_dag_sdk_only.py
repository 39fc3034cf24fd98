"""The onboarding DAG with SDK access only, on a private moto server.

An in-memory fake replaces the one-time secret service, so these runs check
the DAG's wiring, idempotency and failure handling quickly. The end-to-end
runs on the full local stack are in test_dag_end_to_end.py.
"""

from __future__ import annotations

import uuid

import pytest

from include.naming import client_names
from tests.onboarding import fakes
from tests.onboarding.helpers import (
    audit_actions,
    operator,
    registry_record,
    run_dag,
    secret_json,
    sent_emails,
    suspend_versioning_before_verify,
    task_states,
)

pytestmark = [pytest.mark.airflow]


@pytest.fixture
def sdk_env(moto_env, mongo_uri, airflow_db, monkeypatch):
    """Private moto, the MongoDB stand-in, a fresh database and the fake secret service."""
    monkeypatch.setenv("MONGO_URI", mongo_uri)
    monkeypatch.setenv("MONGO_DB", f"onboarding_{uuid.uuid4().hex[:8]}")
    monkeypatch.setattr(
        "include.secret_service.client.SecretServiceClient", fakes.FakeSecretService
    )
    return moto_env


def _conf(client_id: str, **overrides) -> dict:
    conf = {
        "client_id": client_id,
        "display_name": "Acme Health",
        "contact_emails": ["it@acme.example"],
        "access_methods": ["sdk"],
        "link_lifetime_seconds": 3600,
        "noncurrent_version_retention_days": 30,
        "reissue": False,
    }
    return {**conf, **overrides}


def _emails_to(address: str) -> list[dict]:
    return [m for m in sent_emails() if any(address in d for d in m["destinations"])]


def test_sdk_run_succeeds_and_records(sdk_env):
    dag_run = run_dag(_conf("acme-sdk-run"))
    record = registry_record("acme-sdk-run")

    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert record["status"] == "active"
    assert record["verification"]["all_passed"] is True
    assert set(record["receipt_ids"]) == {"sdk"}
    assert [a for a, _ in audit_actions("acme-sdk-run")] == [
        "validate",
        "provision",
        "credential",
        "verify",
        "share",
        "notify",
        "record",
    ]


def test_sdk_run_email_link_reveals_key(sdk_env):
    run_dag(_conf("acme-sdk-mail", contact_emails=["ops@mail.example"]))
    names = client_names("acme-sdk-mail")
    stored = secret_json(names.sdk_secret)
    (message,) = _emails_to("ops@mail.example")
    link = next(w.split('"')[1] for w in message["body"].split("href=")[1:])
    service = fakes.FakeSecretService()

    revealed = service.reveal(link)
    assert stored["SecretAccessKey"] in revealed
    assert stored["AccessKeyId"] in revealed
    assert names.bucket in message["body"]
    assert stored["SecretAccessKey"] not in message["body"]


def test_second_run_without_reissue_rejected(sdk_env):
    run_dag(_conf("acme-sdk-again"))
    dag_run = run_dag(_conf("acme-sdk-again"))
    keys = operator("iam").list_access_keys(UserName=client_names("acme-sdk-again").sdk_user)

    assert task_states(dag_run)["validate"] == "failed"
    assert len(keys["AccessKeyMetadata"]) == 1
    assert len(_emails_to("it@acme.example")) >= 1


def test_tampered_versioning_fails_verify(sdk_env, monkeypatch):
    suspend_versioning_before_verify(monkeypatch)
    monkeypatch.setenv("OPS_ALERT_EMAIL", "ops@exchange.example")
    dag_run = run_dag(_conf("acme-sdk-tamper", contact_emails=["tamper@acme.example"]))
    states = task_states(dag_run)
    record = registry_record("acme-sdk-tamper")

    assert states["verify"] == "failed"
    assert states["share"] == "upstream_failed"
    assert record["status"] == "verification_failed"
    failed = [r["check"] for r in record["verification"]["rows"] if r["status"] == "fail"]
    assert failed == ["bucket: versioning"]
    assert _emails_to("tamper@acme.example") == []
    assert ("verify", "failed") in audit_actions("acme-sdk-tamper")
    alerts = [m for m in _emails_to("ops@exchange.example") if "acme-sdk-tamper" in m["subject"]]
    assert len(alerts) == 1
    assert "verify" in alerts[0]["subject"]
