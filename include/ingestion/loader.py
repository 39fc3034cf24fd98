"""Bulk upserts of spooled batches into one collection per dataset.

Each document is written with one upsert statement whose filter is
``{_id, _provenance.record_hash: {$ne: <hash>}}``:

* no document with that ``_id``: inserted;
* a document with different content: replaced;
* the same content already stored: the filter matches nothing, the upsert
  collides with the existing ``_id`` and MongoDB reports E11000, which is
  counted as unchanged.

So re-running a file rewrites nothing, and a re-sent file with one changed
record modifies exactly that document.

One batch is one unordered ``update`` command, so one bad document does not
stop the others. The parse pass already encoded every statement, so the
loader sends the spooled BSON as it is (``RawBSONDocument``) through
``Database.command``. This is the command ``Collection.bulk_write`` would
send for the same ``ReplaceOne`` upserts, without encoding each document
again. Unlike ``bulk_write``, ``Database.command`` does not retry, so a
batch is sent once more after a network error or a primary change: the
statements are idempotent, and a statement applied by the first attempt
then counts as unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, WriteConcernError

from include.ingestion.report import WRITE_REJECTED, ErrorReport
from include.ingestion.spool import Spool, SpoolBatch

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000

# Collections whose indexes this process already created; create_index is
# idempotent, this only saves a round trip per file.
_indexed: set[tuple[str, str]] = set()


@dataclass
class LoadCounts:
    """Result counts of the bulk writes of one file."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    batches: int = 0
    bulk_writes: int = 0

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a dict."""
        return asdict(self)


def ensure_collection_indexes(collection: Collection) -> None:
    """Create the indexes every dataset collection needs; safe to repeat.

    ``client_id`` serves the per-client queries; the provenance index finds
    the documents one object version delivered.
    """
    marker = (collection.database.name, collection.name)
    if marker in _indexed:
        return
    collection.create_index([("client_id", ASCENDING)], name="client_id")
    collection.create_index(
        [
            ("_provenance.bucket", ASCENDING),
            ("_provenance.key", ASCENDING),
            ("_provenance.version_id", ASCENDING),
        ],
        name="provenance_object_version",
    )
    _indexed.add(marker)


def batch_statements(batch: SpoolBatch) -> list[RawBSONDocument]:
    """Wrap the spooled statements of one batch for pymongo, which copies their bytes."""
    return [RawBSONDocument(statement) for statement in batch.statements]


def send_update(collection: Collection, statements: list[RawBSONDocument]) -> dict:
    """Send one unordered ``update`` command, once more after a network error.

    Raise :class:`WriteConcernError` when the server reports one.
    """
    command = {"update": collection.name, "updates": statements, "ordered": False}
    if not collection.write_concern.is_server_default:
        command["writeConcern"] = collection.write_concern.document
    try:
        reply = collection.database.command(command)
    except AutoReconnect as exc:
        log.warning(
            "collection %s: update of %s statements interrupted (%s), sending it again",
            collection.name,
            len(statements),
            type(exc).__name__,
        )
        reply = collection.database.command(command)
    concern_error = reply.get("writeConcernError")
    if concern_error:
        raise WriteConcernError(
            concern_error.get("errmsg", "write concern error"),
            concern_error.get("code"),
            concern_error,
        )
    return reply


def write_batch(collection: Collection, batch: SpoolBatch) -> tuple[LoadCounts, list[dict]]:
    """Upsert one batch with a single unordered update command.

    Return the counts and the write errors other than E11000, each with
    the source line of the document that failed.
    """
    reply = send_update(collection, batch_statements(batch))
    write_errors = reply.get("writeErrors", [])
    rejected = [
        {
            "line": batch.lines[error["index"]],
            "code": error.get("code"),
            "message": error.get("errmsg", ""),
        }
        for error in write_errors
        if error.get("code") != DUPLICATE_KEY
    ]
    counts = LoadCounts(
        inserted=len(reply.get("upserted", [])),
        updated=reply.get("nModified", 0),
        unchanged=len(write_errors) - len(rejected),
        rejected=len(rejected),
        batches=1,
        bulk_writes=1,
    )
    return counts, rejected


def load_spool(
    collection: Collection,
    spool: Spool,
    report: ErrorReport,
    after_batch: Callable[[int], None] | None = None,
) -> LoadCounts:
    """Write every spooled batch to ``collection``, in order.

    Documents MongoDB rejects are added to ``report`` with their line.
    ``after_batch`` runs after each batch with the batch number (the
    pipeline renews its ledger lease there).
    """
    total = LoadCounts()
    for number, batch in enumerate(spool.read_batches(), start=1):
        counts, rejected = write_batch(collection, batch)
        for error in rejected:
            report.add(
                error["line"], WRITE_REJECTED, f"MongoDB error {error['code']}: {error['message']}"
            )
        for name, value in counts.to_dict().items():
            setattr(total, name, getattr(total, name) + value)
        if rejected:
            log.warning(
                "collection %s: %s documents of batch %s rejected by MongoDB",
                collection.name,
                len(rejected),
                number,
            )
        if after_batch is not None:
            after_batch(number)
    return total
