"""MongoDB storage of one-time secrets and their receipts.

One document per secret in ``secrets``, ``_id`` is the secret id. While the
secret is pending the document contains the ciphertext, the nonce and the hashes
needed to hand it out. Every state change is one atomic ``find_one_and_update``
with ``state: pending`` and ``expires_at > now`` in its filter, and it unsets
the ciphertext, so two readers can never both win and an expired secret is
never returned. What remains is the receipt: state and times, kept until
``retain_until`` (expiry plus the retention period), when the TTL index
deletes the document.

NOTE: MongoDB's TTL index can only delete whole documents, so the ciphertext
of an expired, unviewed secret is removed by :meth:`SecretStore.purge`, which
the service runs periodically. While the service is down, expired ciphertext
stays in storage; reads still treat the secret as expired.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database

from include.secret_service.crypto import b64url_encode, sha256_hex
from include.secret_service.limits import PASSPHRASE_MAX_FAILURES

log = logging.getLogger(__name__)

SECRETS = "secrets"
Clock = Callable[[], datetime]

# Fields that only a pending secret needs. They go in the same atomic update
# that ends the pending state, so storage keeps no ciphertext after it.
_PENDING_ONLY = {
    "ciphertext": "",
    "nonce": "",
    "access_token_hash": "",
    "passphrase": "",
}
_NO_CIPHERTEXT = {"ciphertext": False, "nonce": False}


class State(StrEnum):
    """States of a secret as its receipt reports them."""

    PENDING = "pending"
    VIEWED = "viewed"
    EXPIRED = "expired"
    BURNED = "burned"


def utc_now() -> datetime:
    """Return the current time, truncated to MongoDB's millisecond precision."""
    return truncate_ms(datetime.now(UTC))


def truncate_ms(moment: datetime) -> datetime:
    """Drop the microseconds below a millisecond, which BSON dates cannot store."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def new_id() -> str:
    """Return a 128-bit random id, base64url without padding (22 characters)."""
    return b64url_encode(os.urandom(16))


def new_token() -> str:
    """Return a 256-bit random bearer token, base64url without padding (43 characters)."""
    return b64url_encode(os.urandom(32))


@dataclass(frozen=True)
class NewSecret:
    """Ids and receipt token of a new secret, returned once; the token itself is not stored."""

    secret_id: str
    receipt_id: str
    receipt_token: str
    expires_at: datetime


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def effective_state(document: dict[str, Any], now: datetime) -> State:
    """Return the state, treating a pending secret past its expiry as expired."""
    state = State(document["state"])
    if state is State.PENDING and _as_utc(document["expires_at"]) <= now:
        return State.EXPIRED
    return state


def iso_time(moment: datetime | None) -> str | None:
    """Format a datetime as ISO 8601 in UTC with a ``Z`` suffix, as the API returns it."""
    moment = _as_utc(moment)
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def receipt_view(document: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Return the receipt fields of a secret's document, with no secret values."""
    return {
        "receipt_id": document["receipt_id"],
        "state": effective_state(document, now).value,
        "created_at": iso_time(document["created_at"]),
        "expires_at": iso_time(document["expires_at"]),
        "viewed_at": iso_time(document.get("viewed_at")),
        "burned_at": iso_time(document.get("burned_at")),
        "burn_reason": document.get("burn_reason"),
        "passphrase_protected": bool(document.get("passphrase_protected")),
    }


class SecretStore:
    """Atomic operations on the ``secrets`` collection, with an injectable clock."""

    def __init__(self, database: Database, retention: timedelta, clock: Clock = utc_now):
        self.collection: Collection = database[SECRETS]
        self.retention = retention
        self._clock = clock

    def now(self) -> datetime:
        """Return the store's current time (UTC, millisecond precision)."""
        return truncate_ms(self._clock())

    def ensure_indexes(self) -> None:
        """Create the indexes; safe to call on every start."""
        self.collection.create_index(
            [("receipt_token_hash", ASCENDING)], name="receipt_token_hash", unique=True
        )
        # expireAfterSeconds=0 deletes a document once retain_until has passed.
        self.collection.create_index(
            [("retain_until", ASCENDING)], name="retain_until_ttl", expireAfterSeconds=0
        )
        self.collection.create_index(
            [("state", ASCENDING), ("expires_at", ASCENDING)], name="state_expires_at"
        )

    def create(
        self,
        ciphertext: bytes,
        nonce: bytes,
        ttl_seconds: int,
        access_token_hash: str,
        passphrase: dict[str, Any] | None,
    ) -> NewSecret:
        """Store a pending secret and return its ids and receipt token."""
        now = self.now()
        expires_at = now + timedelta(seconds=ttl_seconds)
        secret = NewSecret(
            secret_id=new_id(),
            receipt_id=new_id(),
            receipt_token=new_token(),
            expires_at=expires_at,
        )
        self.collection.insert_one(
            {
                "_id": secret.secret_id,
                "receipt_id": secret.receipt_id,
                "receipt_token_hash": sha256_hex(secret.receipt_token.encode()),
                "state": State.PENDING.value,
                "created_at": now,
                "expires_at": expires_at,
                "retain_until": expires_at + self.retention,
                "ciphertext": ciphertext,
                "nonce": nonce,
                "access_token_hash": access_token_hash,
                "passphrase": passphrase,
                "passphrase_protected": passphrase is not None,
                "passphrase_failures": 0,
            }
        )
        log.info(
            "stored secret with receipt %s, expires %s", secret.receipt_id, iso_time(expires_at)
        )
        return secret

    def find_pending(self, secret_id: str) -> dict[str, Any] | None:
        """Return the pending, unexpired document without its ciphertext, or None."""
        document = self.collection.find_one({"_id": secret_id}, projection=_NO_CIPHERTEXT)
        if document is None or effective_state(document, self.now()) is not State.PENDING:
            return None
        return document

    def _pending_filter(self, secret_id: str, now: datetime) -> dict[str, Any]:
        return {"_id": secret_id, "state": State.PENDING.value, "expires_at": {"$gt": now}}

    def claim(self, secret_id: str, access_token_hash: str) -> dict[str, Any] | None:
        """Mark the secret viewed and return its ciphertext, exactly once.

        Returns None when the secret is not pending, has expired, was claimed
        by a concurrent request, has used up its passphrase attempts, or when
        ``access_token_hash`` does not match.
        """
        now = self.now()
        query = self._pending_filter(secret_id, now)
        query["access_token_hash"] = access_token_hash
        query["passphrase_failures"] = {"$lt": PASSPHRASE_MAX_FAILURES}
        document = self.collection.find_one_and_update(
            query,
            {"$set": {"state": State.VIEWED.value, "viewed_at": now}, "$unset": _PENDING_ONLY},
            projection={"ciphertext": True, "nonce": True, "receipt_id": True},
            return_document=ReturnDocument.BEFORE,
        )
        if document is not None:
            log.info("secret with receipt %s was viewed", document["receipt_id"])
        return document

    def record_wrong_passphrase(self, secret_id: str, access_token_hash: str) -> int:
        """Count one wrong passphrase and return the attempts left.

        The fifth wrong passphrase burns the secret. The count lives in the
        secret's document, so it covers every client and every instance.
        """
        now = self.now()
        query = self._pending_filter(secret_id, now)
        query["access_token_hash"] = access_token_hash
        document = self.collection.find_one_and_update(
            query,
            {"$inc": {"passphrase_failures": 1}},
            projection={"passphrase_failures": True, "receipt_id": True},
            return_document=ReturnDocument.AFTER,
        )
        if document is None:
            return 0
        failures = document["passphrase_failures"]
        log.info(
            "wrong passphrase %d of %d for secret with receipt %s",
            failures,
            PASSPHRASE_MAX_FAILURES,
            document["receipt_id"],
        )
        if failures >= PASSPHRASE_MAX_FAILURES:
            self._burn(self._pending_filter(secret_id, now), now, "passphrase_failures")
            log.warning(
                "secret with receipt %s burned after %d wrong passphrases",
                document["receipt_id"],
                failures,
            )
        return max(0, PASSPHRASE_MAX_FAILURES - failures)

    def _burn(self, query: dict[str, Any], now: datetime, reason: str) -> dict[str, Any] | None:
        return self.collection.find_one_and_update(
            query,
            {
                "$set": {"state": State.BURNED.value, "burned_at": now, "burn_reason": reason},
                "$unset": _PENDING_ONLY,
            },
            projection=_NO_CIPHERTEXT,
            return_document=ReturnDocument.AFTER,
        )

    def receipt(self, receipt_token: str) -> dict[str, Any] | None:
        """Return the receipt for ``receipt_token``, or None when it is unknown."""
        # The token carries 256 random bits, so an indexed lookup by its
        # SHA-256 reveals nothing useful through timing.
        token_hash = sha256_hex(receipt_token.encode())
        document = self.collection.find_one(
            {"receipt_token_hash": token_hash}, projection=_NO_CIPHERTEXT
        )
        return None if document is None else receipt_view(document, self.now())

    def burn(self, receipt_token: str) -> dict[str, Any] | None:
        """Burn the pending secret of ``receipt_token`` and return its receipt.

        A secret that is no longer pending keeps its state; the returned receipt
        shows it. Returns None when the token is unknown.
        """
        now = self.now()
        token_hash = sha256_hex(receipt_token.encode())
        query = {
            "receipt_token_hash": token_hash,
            "state": State.PENDING.value,
            "expires_at": {"$gt": now},
        }
        document = self._burn(query, now, "receipt")
        if document is not None:
            log.info("secret with receipt %s burned by its creator", document["receipt_id"])
            return receipt_view(document, now)
        return self.receipt(receipt_token)

    def purge(self) -> tuple[int, int]:
        """Expire overdue secrets and delete receipts past retention.

        Returns ``(expired, deleted)`` counts. The TTL index deletes the same
        receipts on its own schedule. Deleting them here as well keeps the
        retention exact with an injected clock and on servers without a TTL
        monitor.
        """
        now = self.now()
        expired = self.collection.update_many(
            {"state": State.PENDING.value, "expires_at": {"$lte": now}},
            {"$set": {"state": State.EXPIRED.value}, "$unset": _PENDING_ONLY},
        ).modified_count
        deleted = self.collection.delete_many({"retain_until": {"$lte": now}}).deleted_count
        if expired or deleted:
            log.info("purge expired %d secrets and deleted %d receipts", expired, deleted)
        return expired, deleted
