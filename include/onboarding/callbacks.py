"""Failure callback of the onboarding tasks: audit event and ops alert.

Runs in the task's process after the task failed for good (no retry left).
It writes only the task id, run id, client id and the error's class and
message, which onboarding code keeps free of secret values.
"""

from __future__ import annotations

import logging
from typing import Any

from include import registry
from include.onboarding.notify import alert_ops

log = logging.getLogger(__name__)

VERIFY_TASK_ID = "verify"


def on_task_failure(context: dict[str, Any]) -> None:
    """Record the failure in the audit trail and alert ops; never raise."""
    ti = context.get("ti") or context.get("task_instance")
    task_id = getattr(ti, "task_id", "unknown")
    run_id = getattr(ti, "run_id", None) or str(context.get("run_id", "unknown"))
    params = context.get("params") or {}
    client_id = str(params.get("client_id") or "unknown")
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}" if error else "unknown error"

    try:
        from include.onboarding.run import registry_db

        with registry_db() as db:
            if registry.get_client_record(db, client_id) is not None:
                if task_id == VERIFY_TASK_ID:
                    registry.upsert_client(
                        db, client_id, {"status": registry.STATUS_VERIFICATION_FAILED}
                    )
                registry.append_audit_event(
                    db,
                    client_id,
                    "task_failed",
                    "failed",
                    {"task_id": task_id, "error": error_text},
                    run_id,
                )
    except Exception:  # A callback must not hide the task's own failure.
        log.exception("audit event for failed task %s of client %s not written", task_id, client_id)

    try:
        alert_ops(client_id, task_id, run_id, error_text)
    except Exception:
        log.exception("ops alert for failed task %s of client %s not sent", task_id, client_id)
