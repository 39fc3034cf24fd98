"""One client's ingestion: find new object versions, then claim, parse, load and move each.

Order for one version, chosen so that no step can lose data:

1. claim the ledger entry (another run holding it means skip);
2. parse the whole object into a local spool; nothing is written yet;
3. load the spool (bulk upserts) when the file is accepted;
4. copy the object to ``processed/`` or ``quarantine/`` and write the
   error report beside it, and only then hide it in ``incoming/``;
5. record the outcome in the ledger.

A crash anywhere before step 5 leaves the entry claimed or failed. Once the
lease expires a later run repeats every step, which is safe because each
step is idempotent: upserts skip unchanged documents, copies add a version.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from include.ingestion import ledger
from include.ingestion.config import PROCESSED_PREFIX, QUARANTINE_PREFIX, IngestionSettings
from include.ingestion.documents import DocumentEncoder, Provenance
from include.ingestion.loader import LoadCounts, ensure_collection_indexes, load_spool
from include.ingestion.objects import (
    ObjectVersion,
    bucket_kms_key,
    copy_version,
    error_report_key,
    list_incoming_versions,
    open_version,
    put_json,
    remove_from_incoming,
    target_key,
)
from include.ingestion.prepare import IGNORE, LOAD, QUARANTINE, PreparedFile, prepare_object
from include.ingestion.spool import Spool

log = logging.getLogger(__name__)

# Errors kept in the ledger entry; the full list is in <name>.error.json.
LEDGER_ERROR_SAMPLE = 20
OUTCOME_STATES = {LOAD: ledger.LOADED, QUARANTINE: ledger.QUARANTINED, IGNORE: ledger.IGNORED}


@dataclass(frozen=True)
class RunContext:
    """Client, bucket, DAG run and settings of one task run."""

    client_id: str
    bucket: str
    dag_run_id: str
    settings: IngestionSettings

    @property
    def owner(self) -> str:
        """Ledger claim owner: the same for retries of this run's task for this client."""
        return f"{self.dag_run_id}/{self.client_id}"


@dataclass
class ClientSummary:
    """Outcome of one client's run: counts per outcome and one line per file."""

    client_id: str
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "loaded": 0,
            "quarantined": 0,
            "ignored": 0,
            "skipped": 0,
            "failed": 0,
        }
    )
    files: list[dict[str, Any]] = field(default_factory=list)

    def add(self, outcome: str, entry: dict[str, Any]) -> None:
        """Count one file's outcome and keep its short description."""
        self.counts[outcome] += 1
        self.files.append({"outcome": outcome, **entry})

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as plain data (for XCom)."""
        return {"client_id": self.client_id, **self.counts, "files": self.files}


class IngestionFailedError(RuntimeError):
    """Some object versions of a client failed; they are retried by the next attempt or run."""


def find_new_versions(
    s3: Any, db: Database, client_id: str, bucket: str, settings: IngestionSettings
) -> list[ObjectVersion]:
    """Return the versions under ``incoming/`` that the ledger has not finished, oldest first.

    At most ``max_objects_per_run`` are returned; the rest wait for the next run.
    """
    versions = list_incoming_versions(s3, bucket)
    finished: set[str] = set()
    for start in range(0, len(versions), 1000):
        chunk = versions[start : start + 1000]
        finished |= ledger.finished_entry_ids(db, map(ledger.version_entry_id, chunk))
    new = [version for version in versions if ledger.version_entry_id(version) not in finished]
    if len(new) > settings.max_objects_per_run:
        log.info(
            "client %s, bucket %s: %s new object versions, processing the oldest %s this run",
            client_id,
            bucket,
            len(new),
            settings.max_objects_per_run,
        )
        new = new[: settings.max_objects_per_run]
    log.info(
        "client %s, bucket %s: %s new object versions in incoming/", client_id, bucket, len(new)
    )
    return new


def process_versions(
    s3: Any, db: Database, context: RunContext, versions: list[ObjectVersion]
) -> ClientSummary:
    """Process each version; raise IngestionFailedError at the end if any failed."""
    ledger.ensure_indexes(db)
    kms_key_id = bucket_kms_key(s3, context.bucket)
    summary = ClientSummary(context.client_id)
    for version in versions:
        try:
            outcome, entry = process_version(s3, db, context, version, kms_key_id)
        except Exception as exc:
            log.exception(
                "client %s: processing s3://%s/%s version %s failed",
                context.client_id,
                version.bucket,
                version.key,
                version.version_id,
            )
            summary.add(
                "failed",
                {
                    "key": version.key,
                    "version_id": version.version_id,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            continue
        summary.add(outcome, entry)
    if summary.counts["failed"]:
        failed = [entry for entry in summary.files if entry["outcome"] == "failed"]
        raise IngestionFailedError(
            f"client {context.client_id}: {len(failed)} of {len(versions)} object versions "
            f"failed and will be retried: {failed}"
        )
    return summary


def process_version(
    s3: Any, db: Database, context: RunContext, version: ObjectVersion, kms_key_id: str | None
) -> tuple[str, dict[str, Any]]:
    """Claim and process one version; return its outcome and a short description."""
    claim = ledger.claim_version(
        db, version, context.client_id, context.owner, context.settings.lease_seconds
    )
    if claim is None:
        return "skipped", {"key": version.key, "version_id": version.version_id}
    try:
        return _process_claimed(s3, db, context, version, kms_key_id, claim)
    except BaseException as exc:
        ledger.fail(db, claim, f"{type(exc).__name__}: {exc}")
        raise


class _LeaseKeeper:
    """Renew a ledger claim at most every third of the lease, from the parse and load loops."""

    def __init__(self, db: Database, claim: ledger.Claim, lease_seconds: int):
        self._db = db
        self._claim = claim
        self._lease = lease_seconds
        self._renewed = time.monotonic()

    def __call__(self, *_batch_number: int) -> None:
        if time.monotonic() - self._renewed >= self._lease / 3:
            ledger.renew(self._db, self._claim, self._lease)
            self._renewed = time.monotonic()


def _process_claimed(
    s3: Any,
    db: Database,
    context: RunContext,
    version: ObjectVersion,
    kms_key_id: str | None,
    claim: ledger.Claim,
) -> tuple[str, dict[str, Any]]:
    settings = context.settings
    keep_lease = _LeaseKeeper(db, claim, settings.lease_seconds)
    provenance = Provenance(
        client_id=context.client_id,
        bucket=version.bucket,
        key=version.key,
        version_id=version.version_id,
        etag=version.etag,
        ingested_at=datetime.now(UTC),
        dag_run_id=context.dag_run_id,
    )
    counts = LoadCounts()
    with Spool(settings.batch_size, settings.spool_dir, after_flush=keep_lease) as spool:
        prepared = _parse(s3, version, provenance, spool, settings)
        ledger.renew(db, claim, settings.lease_seconds)
        if prepared.decision == LOAD:
            collection = db[prepared.fmt.collection]
            ensure_collection_indexes(collection)
            counts = load_spool(collection, spool, prepared.report, after_batch=keep_lease)
            log.info(
                "client %s: loaded s3://%s/%s version %s into %s (parsed by %d process(es)): %s",
                context.client_id,
                version.bucket,
                version.key,
                version.version_id,
                collection.name,
                prepared.parse_processes,
                counts.to_dict(),
            )

    moved = _move(s3, context, version, prepared, counts, kms_key_id)
    state = OUTCOME_STATES[prepared.decision]
    ledger.finish(db, claim, state, _ledger_fields(context, prepared, counts, moved))
    log.info(
        "client %s: s3://%s/%s version %s %s (%s)",
        context.client_id,
        version.bucket,
        version.key,
        version.version_id,
        state,
        prepared.reason or "ok",
    )
    outcome = {LOAD: "loaded", QUARANTINE: "quarantined", IGNORE: "ignored"}[prepared.decision]
    return outcome, {
        "key": version.key,
        "version_id": version.version_id,
        "collection": prepared.fmt.collection if prepared.decision == LOAD else None,
        "reason": prepared.reason,
        "valid_records": prepared.valid_records,
        "bad_records": prepared.bad_records,
        **counts.to_dict(),
    }


def _parse(
    s3: Any,
    version: ObjectVersion,
    provenance: Provenance,
    spool: Spool,
    settings: IngestionSettings,
) -> PreparedFile:
    body = open_version(s3, version)
    try:
        prepared = prepare_object(
            body,
            version.key,
            DocumentEncoder(provenance),
            spool,
            settings,
            f"{provenance.client_id}/",
        )
    finally:
        body.close()
    if prepared.size != version.size:
        raise RuntimeError(
            f"read {prepared.size} bytes of s3://{version.bucket}/{version.key} version "
            f"{version.version_id}, expected {version.size}"
        )
    return prepared


def _move(
    s3: Any,
    context: RunContext,
    version: ObjectVersion,
    prepared: PreparedFile,
    counts: LoadCounts,
    kms_key_id: str | None,
) -> dict[str, Any]:
    """Copy to processed/ or quarantine/, write the error report, then remove from incoming/."""
    prefix = QUARANTINE_PREFIX if prepared.decision == QUARANTINE else PROCESSED_PREFIX
    destination = target_key(version.key, prefix)
    destination_version = copy_version(s3, version, destination, kms_key_id)
    report_key = None
    if prepared.decision == QUARANTINE or prepared.report.total:
        report_key = error_report_key(destination)
        put_json(
            s3,
            version.bucket,
            report_key,
            _error_report(context, version, prepared, counts),
            kms_key_id,
        )
    removed = remove_from_incoming(s3, version)
    return {
        "destination_key": destination,
        "destination_version_id": destination_version,
        "error_report_key": report_key,
        "removed_from_incoming": removed,
    }


def _error_report(
    context: RunContext, version: ObjectVersion, prepared: PreparedFile, counts: LoadCounts
) -> dict[str, Any]:
    return {
        "client_id": context.client_id,
        "bucket": version.bucket,
        "key": version.key,
        "version_id": version.version_id,
        "etag": version.etag,
        "sha256": prepared.sha256,
        "size": prepared.size,
        "dag_run_id": context.dag_run_id,
        "checked_at": datetime.now(UTC).isoformat(),
        "max_bad_share": context.settings.max_bad_share,
        **prepared.summary(),
        "file_error": prepared.details or None,
        "load": counts.to_dict(),
        **prepared.report.to_dict(),
    }


def _ledger_fields(
    context: RunContext, prepared: PreparedFile, counts: LoadCounts, moved: dict[str, Any]
) -> dict[str, Any]:
    report = prepared.report.to_dict()
    return {
        **prepared.summary(),
        "collection": prepared.fmt.collection if prepared.decision == LOAD else None,
        "sha256": prepared.sha256,
        "read_bytes": prepared.size,
        "load": counts.to_dict(),
        "errors_by_reason": report["by_reason"],
        "error_sample": report["errors"][:LEDGER_ERROR_SAMPLE],
        "file_error": prepared.details or None,
        "dag_run_id": context.dag_run_id,
        **moved,
    }
