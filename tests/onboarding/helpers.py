"""Helpers of the onboarding DAG tests: running the DAG and reading what it left."""

from __future__ import annotations

import email
import json
import os
import urllib.request
from email import policy as email_policy
from pathlib import Path
from typing import Any

import boto3

from include.mongo import get_client, get_database
from tests.fixtures.airflow import load_dag as load_dag_file


def load_dag():
    """Parse the onboarding DAG file and return its DAG."""
    return load_dag_file("client_onboarding.py", "client_onboarding")


def run_dag(conf: dict[str, Any]):
    """Run the onboarding DAG once with ``dag.test`` and return the DagRun."""
    return load_dag().test(run_conf=conf)


def task_states(dag_run) -> dict[str, str]:
    """Return task id to final state of a DagRun."""
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def operator(service: str):
    """Return a boto3 client with the operator's keys from the environment."""
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def secret_json(secret_id: str) -> dict[str, Any]:
    """Read a JSON secret as the operator."""
    value = operator("secretsmanager").get_secret_value(SecretId=secret_id)
    return json.loads(value["SecretString"])


def sent_emails() -> list[dict[str, Any]]:
    """Return the SES messages moto stored, parsed: source, destinations, subject, body."""
    url = f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/data.json"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        data = json.load(response)
    messages = []
    for raw in data.get("ses", {}).get("RawMessage", []):
        parsed = email.message_from_string(raw["raw_data"], policy=email_policy.default)
        body_parts = [
            part.get_content()
            for part in parsed.walk()
            if part.get_content_type() in ("text/html", "text/plain")
        ]
        messages.append(
            {
                "id": raw.get("id"),
                "source": raw.get("source"),
                "destinations": raw.get("destinations"),
                "subject": str(parsed["Subject"]),
                "body": "\n".join(body_parts),
            }
        )
    return messages


def registry_record(client_id: str) -> dict[str, Any] | None:
    """Return the client's registry document."""
    client = get_client()
    try:
        return get_database(client)["clients"].find_one({"_id": client_id})
    finally:
        client.close()


def audit_actions(client_id: str) -> list[tuple[str, str]]:
    """Return (action, outcome) of the client's audit events in order."""
    client = get_client()
    try:
        events = get_database(client)["audit_events"].find({"client_id": client_id})
        return [(e["action"], e["outcome"]) for e in sorted(events, key=lambda e: e["at"])]
    finally:
        client.close()


def files_containing(root: Path, needles: list[str]) -> list[str]:
    """Return the files under ``root`` whose bytes contain any of ``needles``."""
    encoded = [n.encode() for n in needles if n]
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(n in content for n in encoded):
                hits.append(str(path))
    return hits


def suspend_versioning_before_verify(monkeypatch) -> None:
    """Make the next verification find the bucket's versioning suspended."""
    from include.onboarding import verification

    original = verification.verify_client

    def tamper_then_verify(request, names, *args, **kwargs):
        operator("s3").put_bucket_versioning(
            Bucket=names.bucket, VersioningConfiguration={"Status": "Suspended"}
        )
        return original(request, names, *args, **kwargs)

    monkeypatch.setattr(verification, "verify_client", tamper_then_verify)
