"""The ingestion ledger: one MongoDB document per S3 object version.

``_id`` is ``s3://<bucket>/<key>?versionId=<version id>``. States:

* ``claimed``: a task is processing the version; its lease expires at
  ``lease_expires_at`` unless renewed after every batch;
* ``loaded``, ``quarantined``, ``ignored``: done, never processed again;
* ``failed``: the last attempt raised; the next run claims it again.

A claim is one atomic ``findAndModify`` with upsert: it matches only an
unclaimed, failed, expired or same-owner entry, and otherwise the upsert
collides with the existing ``_id`` (E11000), so of two overlapping runs
exactly one wins. Renewals and final updates match on the claim token, so a
task whose lease was taken over cannot overwrite the new owner's result.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from include.ingestion.objects import ObjectVersion

log = logging.getLogger(__name__)

LEDGER = "ingestion_ledger"

CLAIMED = "claimed"
LOADED = "loaded"
QUARANTINED = "quarantined"
IGNORED = "ignored"
FAILED = "failed"
FINISHED_STATES = (LOADED, QUARANTINED, IGNORED)


def ledger_id(bucket: str, key: str, version_id: str) -> str:
    """Return the ledger ``_id`` of one object version."""
    return f"s3://{bucket}/{key}?versionId={version_id}"


def version_entry_id(version: ObjectVersion) -> str:
    """Return the ledger ``_id`` of ``version``."""
    return ledger_id(version.bucket, version.key, version.version_id)


@dataclass(frozen=True)
class Claim:
    """A claim on one ledger entry, valid while its token matches."""

    entry_id: str
    token: str
    owner: str
    attempt: int


class ClaimLostError(RuntimeError):
    """The lease expired and another task claimed the entry; stop working on it."""


def ensure_indexes(db: Database) -> None:
    """Create the ledger's indexes; safe to call on every run."""
    ledger = db[LEDGER]
    ledger.create_index(
        [("bucket", ASCENDING), ("key", ASCENDING), ("version_id", ASCENDING)],
        name="object_version",
        unique=True,
    )
    ledger.create_index([("client_id", ASCENDING), ("state", ASCENDING)], name="client_state")
    ledger.create_index([("finished_at", ASCENDING)], name="finished_at")


def finished_entry_ids(db: Database, entry_ids: Iterable[str]) -> set[str]:
    """Return which of ``entry_ids`` are loaded, quarantined or ignored."""
    ids = list(entry_ids)
    if not ids:
        return set()
    cursor = db[LEDGER].find(
        {"_id": {"$in": ids}, "state": {"$in": list(FINISHED_STATES)}}, projection={"_id": 1}
    )
    return {entry["_id"] for entry in cursor}


def claim_version(
    db: Database,
    version: ObjectVersion,
    client_id: str,
    owner: str,
    lease_seconds: int,
) -> Claim | None:
    """Claim ``version`` for ``owner``; return None when another task has claimed or finished it.

    ``owner`` identifies the task (DAG run and client), so a retry of the
    same task takes over its own unexpired claim at once.
    """
    now = datetime.now(UTC)
    token = uuid.uuid4().hex
    entry_id = version_entry_id(version)
    claimable = {
        "_id": entry_id,
        "$or": [
            {"state": FAILED},
            {"state": CLAIMED, "lease_expires_at": {"$lt": now}},
            {"state": CLAIMED, "owner": owner},
        ],
    }
    update = {
        "$set": {
            "state": CLAIMED,
            "owner": owner,
            "token": token,
            "claimed_at": now,
            "lease_expires_at": now + timedelta(seconds=lease_seconds),
        },
        "$setOnInsert": {
            "client_id": client_id,
            "bucket": version.bucket,
            "key": version.key,
            "version_id": version.version_id,
            "etag": version.etag,
            "size": version.size,
            "last_modified": version.last_modified,
            "first_seen_at": now,
        },
        "$inc": {"attempts": 1},
    }
    try:
        entry = db[LEDGER].find_one_and_update(
            claimable, update, upsert=True, return_document=ReturnDocument.AFTER
        )
    except DuplicateKeyError:
        log.info("client %s: %s is claimed or finished elsewhere, skipped", client_id, entry_id)
        return None
    log.info("client %s: claimed %s (attempt %s)", client_id, entry_id, entry["attempts"])
    return Claim(entry_id, token, owner, entry["attempts"])


def renew(db: Database, claim: Claim, lease_seconds: int) -> None:
    """Extend the lease of ``claim``; raise ClaimLostError if it is no longer ours."""
    expires = datetime.now(UTC) + timedelta(seconds=lease_seconds)
    result = db[LEDGER].update_one(
        {"_id": claim.entry_id, "token": claim.token, "state": CLAIMED},
        {"$set": {"lease_expires_at": expires}},
    )
    if result.matched_count != 1:
        raise ClaimLostError(f"the claim on {claim.entry_id} was taken over by another task")


def finish(db: Database, claim: Claim, state: str, fields: dict[str, Any]) -> None:
    """Record the final ``state`` and ``fields`` of a claimed entry."""
    if state not in FINISHED_STATES:
        raise ValueError(f"{state!r} is not a final ledger state {FINISHED_STATES}")
    result = db[LEDGER].update_one(
        {"_id": claim.entry_id, "token": claim.token},
        {
            "$set": {**fields, "state": state, "finished_at": datetime.now(UTC)},
            "$unset": {"token": "", "lease_expires_at": "", "error": ""},
        },
    )
    if result.matched_count != 1:
        raise ClaimLostError(f"the claim on {claim.entry_id} was taken over by another task")


def fail(db: Database, claim: Claim, error: str) -> None:
    """Mark a claimed entry failed so that any later run may claim it again."""
    db[LEDGER].update_one(
        {"_id": claim.entry_id, "token": claim.token},
        {
            "$set": {"state": FAILED, "error": error, "failed_at": datetime.now(UTC)},
            "$unset": {"token": "", "lease_expires_at": ""},
        },
    )


def get_entry(db: Database, version: ObjectVersion) -> dict[str, Any] | None:
    """Return the ledger entry of ``version``, or None."""
    return db[LEDGER].find_one({"_id": version_entry_id(version)})
