"""Failure callback of the ingestion tasks: one log line and one audit event.

Runs in the task's process after a task failed for good (no retry left).
It records only ids, the task and the error's class and message; ingestion
errors name buckets, keys and version ids, never credentials.
"""

from __future__ import annotations

import logging
from typing import Any

from include import registry

log = logging.getLogger(__name__)

AUDIT_ACTION = "ingestion"


def failed_client_id(context: dict[str, Any]) -> str:
    """Return the client a failed task worked for, from its mapped argument or the run's params."""
    task = context.get("task")
    op_kwargs = getattr(task, "op_kwargs", None) or {}
    client = op_kwargs.get("client")
    if isinstance(client, dict) and client.get("client_id"):
        return str(client["client_id"])
    params = context.get("params") or {}
    return str(params.get("client_id") or "all-clients")


def on_task_failure(context: dict[str, Any]) -> None:
    """Log the failure and append an audit event; a failed audit write is logged, not raised."""
    ti = context.get("ti") or context.get("task_instance")
    task_id = getattr(ti, "task_id", "unknown")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(ti, "run_id", None) or str(context.get("run_id", "unknown"))
    client_id = failed_client_id(context)
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if error else "unknown error"
    log.error(
        "ingestion task %s (map index %s) failed for client %s in run %s: %s",
        task_id,
        map_index,
        client_id,
        run_id,
        error_text,
    )
    try:
        from include.ingestion.tasks import exchange_db

        with exchange_db() as db:
            registry.append_audit_event(
                db,
                client_id,
                AUDIT_ACTION,
                "failed",
                {"task_id": task_id, "error": error_text},
                run_id,
            )
    except Exception:  # A callback must not hide the task's own failure.
        log.exception("audit event for failed task %s of client %s not written", task_id, client_id)
