"""Entry points of the ``exchange_ingestion`` tasks; Airflow is imported only inside them.

Between tasks only small values travel through XCom: client ids, bucket
names, object versions (key, version id, ETag, size) and counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pymongo.database import Database

from include import registry
from include.ingestion import pipeline
from include.ingestion.config import IngestionSettings
from include.ingestion.objects import ObjectVersion
from include.mongo import get_client, get_database
from include.naming import client_names

log = logging.getLogger(__name__)

AWS_CONN_ID = os.environ.get("INGESTION_AWS_CONN_ID", "aws_default")
AUDIT_ACTION = "ingestion"


class ClientNotActiveError(ValueError):
    """The client id given to a manual run is not an active client in the registry."""


@contextmanager
def exchange_db() -> Iterator[Database]:
    """Yield the exchange database (``MONGO_URI`` or ``mongo_default``) and close the client."""
    client = get_client()
    try:
        yield get_database(client)
    finally:
        client.close()


def s3_client() -> Any:
    """Return the operator's boto3 S3 client from the amazon provider's S3Hook."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID).get_conn()


def client_target(record: dict[str, Any]) -> dict[str, str]:
    """Return ``{client_id, bucket}`` of a registry record (bucket: stored, else derived)."""
    client_id = record.get("client_id") or record["_id"]
    bucket = record.get("bucket") or client_names(client_id).bucket
    return {"client_id": client_id, "bucket": bucket}


def list_clients(client_id: str | None = None) -> list[dict[str, str]]:
    """Return the active clients to ingest for: all of them, or only ``client_id``.

    Raise ClientNotActiveError when ``client_id`` is given but not active.
    """
    with exchange_db() as db:
        targets = [client_target(record) for record in registry.list_active_clients(db)]
    if client_id:
        targets = [target for target in targets if target["client_id"] == client_id]
        if not targets:
            raise ClientNotActiveError(
                f"client {client_id!r} is not an active client in the registry; check the "
                "client id or finish its onboarding first"
            )
    log.info("ingesting for %s active clients: %s", len(targets), [t["client_id"] for t in targets])
    return targets


def find_new_objects(client: dict[str, str]) -> list[dict[str, Any]]:
    """Return the client's unprocessed object versions; skip the task when there are none."""
    from airflow.sdk.exceptions import AirflowSkipException

    settings = IngestionSettings.from_env()
    with exchange_db() as db:
        versions = pipeline.find_new_versions(
            s3_client(), db, client["client_id"], client["bucket"], settings
        )
    if not versions:
        raise AirflowSkipException(
            f"client {client['client_id']}: nothing new in s3://{client['bucket']}/incoming/"
        )
    return [version.to_dict() for version in versions]


def load_objects(
    client: dict[str, str], versions: list[dict[str, Any]], dag_run_id: str
) -> dict[str, Any]:
    """Process the client's new versions and append one audit event with the counts."""
    settings = IngestionSettings.from_env()
    context = pipeline.RunContext(client["client_id"], client["bucket"], dag_run_id, settings)
    objects = [ObjectVersion.from_dict(version) for version in versions]
    with exchange_db() as db:
        # IngestionFailedError propagates: Airflow retries the task, and the
        # failure callback writes the audit event once retries run out.
        summary = pipeline.process_versions(s3_client(), db, context, objects)
        counts = {k: v for k, v in summary.to_dict().items() if k not in ("client_id", "files")}
        registry.append_audit_event(
            db, client["client_id"], AUDIT_ACTION, "succeeded", counts, dag_run_id
        )
    return summary.to_dict()
