"""Ingest what clients dropped into ``incoming/``: parse, validate, load into MongoDB, move.

The logic lives in ``include.ingestion``; this file declares the schedule,
the manual-run form and the wiring. One mapped task group runs per active
client, so a client with nothing new is skipped without affecting others.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task, task_group

from include.ingestion.config import schedule_from_env
from include.ingestion.notify import on_task_failure

DOC_MD = """
### Exchange ingestion

For every active client in the registry (read when the run starts, so newly
onboarded clients are picked up without a deploy):

1. **find_new_objects** lists every object version under `incoming/` of the
   client's bucket that the ingestion ledger has not finished. Nothing new
   means the client's branch is skipped; no worker slot waits for files.
2. **load_objects** claims each version in the ledger, parses it once
   (FHIR Bulk NDJSON, NDJSON/JSONL, JSON, CSV, TSV, optionally gzip),
   validates every record, loads accepted files with bulk upserts into one
   collection per dataset, copies the object to `processed/` or
   `quarantine/` (with `<name>.error.json`) and removes it from `incoming/`.

Trigger with **client_id** to ingest for one client only. Settings are the
`INGESTION_*` environment variables; see `docs/ingestion.md`.
"""

default_args = {
    "owner": "data-exchange-ops",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=10),
    "on_failure_callback": on_task_failure,
}


@dag(
    dag_id="exchange_ingestion",
    schedule=schedule_from_env(),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    # Overlapping runs are safe (the ledger claims each object version once);
    # two at a time lets a slow run finish while the next one starts.
    max_active_runs=2,
    default_args=default_args,
    params={
        "client_id": Param(
            None,
            type=["null", "string"],
            title="Client id",
            description="Ingest for this client only; leave empty for every active client.",
        )
    },
    tags=["exchange", "ingestion"],
    doc_md=DOC_MD,
)
def exchange_ingestion():
    @task(execution_timeout=timedelta(minutes=5))
    def list_clients() -> list[dict]:
        """Read the active clients (id and bucket) from the registry."""
        from include.ingestion import tasks

        return tasks.list_clients(get_current_context()["params"].get("client_id"))

    @task_group
    def client_branch(client: dict):
        @task
        def find_new_objects(client: dict) -> list[dict]:
            """List unprocessed versions under incoming/; skip the branch when there are none."""
            from include.ingestion import tasks

            return tasks.find_new_objects(client)

        @task(execution_timeout=timedelta(hours=3))
        def load_objects(client: dict, versions: list[dict]) -> dict:
            """Claim, parse, load and move each version; return the counts."""
            from include.ingestion import tasks

            return tasks.load_objects(client, versions, get_current_context()["run_id"])

        load_objects(client, find_new_objects(client))

    client_branch.expand(client=list_clients())


exchange_ingestion()
