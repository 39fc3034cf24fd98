"""Helpers of the ingestion DAG tests on the local stack: clients, uploads, runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3

from include import registry
from include.ingestion.tasks import exchange_db
from include.naming import client_names, exchange_names
from tests.fixtures.airflow import load_dag as load_dag_file

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_dag():
    """Parse the ingestion DAG file and return its DAG."""
    return load_dag_file("exchange_ingestion.py", "exchange_ingestion")


def run_ingestion(conf: dict[str, Any] | None = None, retries: int | None = None):
    """Run the ingestion DAG once with ``dag.test`` and return the DagRun.

    ``retries`` overrides every task's retries; dag.test() waits out retry
    delays, so tests of failures pass 0 to end in seconds.
    """
    dag = load_dag()
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    return dag.test(run_conf=conf or {})


def task_states(dag_run) -> dict[tuple[str, int], str]:
    """Return ``(task_id, map_index)`` to final state of a DagRun."""
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def operator_s3():
    """Return an S3 client with the operator's keys at the stack's endpoint."""
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def provision_active_client(client_id: str) -> dict[str, Any]:
    """Create the client's KMS key and bucket baseline as onboarding does, and mark it active."""
    from include.onboarding.provisioning import provision_client

    names = client_names(client_id)
    resources = provision_client(names, exchange_names(), retention_days=30)
    with exchange_db() as db:
        registry.upsert_client(
            db,
            client_id,
            {
                "status": registry.STATUS_ACTIVE,
                "bucket": names.bucket,
                "kms_key_arn": resources["kms_key_arn"],
            },
        )
    return resources


def upload(s3, bucket: str, files: dict[str, bytes]) -> None:
    """Put each file under ``incoming/`` with the bucket's default encryption."""
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"incoming/{name}", Body=data)


def keys_under(s3, bucket: str, prefix: str) -> set[str]:
    """Return the current keys under ``prefix``, leaving out folder placeholders."""
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys |= {item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")}
    return keys


def collection_counts(db) -> dict[str, int]:
    """Return document counts of the dataset collections (fhir_*, csv_*, json_*)."""
    return {
        name: db[name].count_documents({})
        for name in db.list_collection_names()
        if name.startswith(("fhir_", "csv_", "json_"))
    }
