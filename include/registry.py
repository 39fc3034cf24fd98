"""The MongoDB client registry and its audit trail.

One document per client in ``clients`` (``_id`` is the client id) and one
append-only document per event in ``audit_events``. Only ids, ARNs, states
and receipt ids are stored here, never a credential or a one-time link.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

log = logging.getLogger(__name__)

CLIENTS = "clients"
AUDIT_EVENTS = "audit_events"

STATUS_PROVISIONING = "provisioning"
STATUS_VERIFICATION_FAILED = "verification_failed"
STATUS_ACTIVE = "active"
STATUS_OFFBOARDED = "offboarded"


def ensure_indexes(db: Database) -> None:
    """Create the registry's indexes; safe to call on every run."""
    db[CLIENTS].create_index([("status", ASCENDING)], name="status")
    db[AUDIT_EVENTS].create_index(
        [("client_id", ASCENDING), ("at", ASCENDING)], name="client_id_at"
    )


def get_client_record(db: Database, client_id: str) -> dict[str, Any] | None:
    """Return the registry document of ``client_id``, or None."""
    return db[CLIENTS].find_one({"_id": client_id})


def list_active_clients(db: Database) -> list[dict[str, Any]]:
    """Return the active clients' documents, sorted by client id."""
    return list(db[CLIENTS].find({"status": STATUS_ACTIVE}).sort("_id", ASCENDING))


def upsert_client(db: Database, client_id: str, fields: dict[str, Any]) -> None:
    """Set ``fields`` on the client's document, creating it when missing."""
    now = datetime.now(UTC)
    db[CLIENTS].update_one(
        {"_id": client_id},
        {
            "$set": {**fields, "client_id": client_id, "updated_at": now},
            "$setOnInsert": {"created_at": now},
        },
        upsert=True,
    )
    log.info("registry updated for client %s: fields %s", client_id, sorted(fields))


def append_audit_event(
    db: Database,
    client_id: str,
    action: str,
    outcome: str,
    details: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> None:
    """Append one audit event; ``details`` must hold no secret values."""
    db[AUDIT_EVENTS].insert_one(
        {
            "client_id": client_id,
            "action": action,
            "outcome": outcome,
            "details": details or {},
            "run_id": run_id,
            "at": datetime.now(UTC),
        }
    )
    log.info("audit event for client %s: %s %s (run %s)", client_id, action, outcome, run_id)
