"""Save the stand-in's data to a file and load it back.

The file is a stream of BSON documents, so datetimes, ObjectIds, binary and
every other BSON type round-trip exactly:

1. a header ``{format: "mongo-standin-snapshot", version: 1, savedAt}``;
2. for each collection, ``{database, collection, indexes, count}`` followed
   by ``count`` documents of that collection.

A save writes a temporary file next to the target, flushes it to disk and
renames it over the target, so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson

from include.mongo_standin.storage import Storage
from include.mongo_standin.wire import DECODE_OPTIONS

log = logging.getLogger(__name__)

FORMAT = "mongo-standin-snapshot"
VERSION = 1
INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")


class SnapshotError(Exception):
    """A snapshot file that cannot be read."""


def save_snapshot(storage: Storage, path: str | os.PathLike[str]) -> int:
    """Write every database of ``storage`` to ``path`` and return the number of documents."""
    target = Path(path)
    chunks = [bson.encode({"format": FORMAT, "version": VERSION, "savedAt": datetime.now(UTC)})]
    document_count = 0
    # Encode under the lock for a consistent copy, then write to disk without it.
    with storage.lock:
        for database, collection, indexes, documents in storage.dump():
            header = {
                "database": database,
                "collection": collection,
                "indexes": indexes,
                "count": len(documents),
            }
            chunks.append(bson.encode(header))
            chunks.extend(bson.encode(document) for document in documents)
            document_count += len(documents)

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as temp_file:
            for chunk in chunks:
                temp_file.write(chunk)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    log.info("snapshot saved to %s: %d documents", target, document_count)
    return document_count


def _restore_collection(storage: Storage, header: dict[str, Any], documents: list[dict]) -> None:
    collection = storage.collection(header["database"], header["collection"])
    # Insert the documents before creating the indexes, because a unique index
    # checks every insert against the whole collection and loading would be quadratic.
    if documents:
        collection.insert_many(documents)
    for index in header["indexes"]:
        options = {key: index[key] for key in INDEX_OPTIONS if key in index}
        collection.create_index(list(index["key"].items()), name=index["name"], **options)
    if not documents and not header["indexes"]:
        storage.client[header["database"]].create_collection(header["collection"])


def load_snapshot(storage: Storage, path: str | os.PathLike[str]) -> int:
    """Load ``path`` into ``storage`` and return the number of documents (0 if there is no file).

    :raises SnapshotError: if the file cannot be read, is not a snapshot or is truncated.
    """
    source = Path(path)
    if not source.exists():
        log.info("no snapshot at %s yet, starting with no data", source)
        return 0

    document_count = 0
    try:
        with source.open("rb") as snapshot_file, storage.lock:
            stream = bson.decode_file_iter(snapshot_file, codec_options=DECODE_OPTIONS)
            header = next(stream, None)
            if not header or header.get("format") != FORMAT or header.get("version") != VERSION:
                raise SnapshotError(f"{source} is not a version {VERSION} stand-in snapshot")
            for collection_header in stream:
                documents = [next(stream) for _ in range(collection_header["count"])]
                _restore_collection(storage, collection_header, documents)
                document_count += len(documents)
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {source}: {exc}") from exc
    except (bson.errors.InvalidBSON, StopIteration, KeyError) as exc:
        raise SnapshotError(f"snapshot {source} is corrupt or truncated: {exc!r}") from exc
    log.info("snapshot loaded from %s: %d documents", source, document_count)
    return document_count
