"""Server-side cursors for find, aggregate, listIndexes and listCollections.

A cursor keeps its whole result, BSON-encoded when the command ran, and hands
it out in batches through getMore. Later writes therefore do not show up in
an open cursor (mongod may or may not show them).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

from include.mongo_standin.errors import BAD_VALUE, CURSOR_NOT_FOUND, CommandError
from include.mongo_standin.wire import MAX_BSON_OBJECT_SIZE

# mongod's default first batch for find and aggregate.
DEFAULT_FIRST_BATCH_SIZE = 101
# Keep each reply under the 16 MiB document limit, with room for the envelope.
MAX_BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 64 * 1024
# mongod's cursorTimeoutMillis default: 10 minutes without a getMore.
DEFAULT_IDLE_TIMEOUT_SECONDS = 600.0


@dataclass
class _Cursor:
    namespace: str
    documents: deque[bytes]
    last_used: float = field(default_factory=time.monotonic)


def _take_batch(documents: deque[bytes], batch_size: int) -> list[RawBSONDocument]:
    """Pop up to ``batch_size`` documents (0: no count limit) within MAX_BATCH_BYTES.

    A batch always takes at least one document, so a large document cannot stall a cursor.
    """
    batch: list[RawBSONDocument] = []
    total = 0
    while documents and (batch_size <= 0 or len(batch) < batch_size):
        size = len(documents[0])
        if batch and total + size > MAX_BATCH_BYTES:
            break
        batch.append(RawBSONDocument(documents.popleft()))
        total += size
    return batch


def _validate_batch_size(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int | float) or value < 0:
        raise CommandError(BAD_VALUE, f"batchSize must be a non-negative number, got {value!r}")
    return int(value)


class CursorRegistry:
    """The open cursors, by id. Safe to use from several threads."""

    def __init__(self) -> None:
        self._cursors: dict[int, _Cursor] = {}
        self._lock = threading.Lock()

    def open(
        self,
        namespace: str,
        documents: Iterable[dict[str, Any]],
        batch_size: Any = None,
        single_batch: bool = False,
    ) -> dict[str, Any]:
        """Return the ``cursor`` reply field with the first batch, keeping the rest open."""
        if batch_size is None:
            size = DEFAULT_FIRST_BATCH_SIZE
        else:
            size = _validate_batch_size(batch_size)
        pending = deque(bson.encode(document) for document in documents)
        # As on mongod, an explicit batchSize of 0 opens the cursor with an empty first batch.
        first_batch = _take_batch(pending, size) if size else []

        cursor_id = 0
        if pending and not single_batch:
            cursor_id = self._new_id()
            with self._lock:
                self._cursors[cursor_id] = _Cursor(namespace, pending)
        return {"firstBatch": first_batch, "id": Int64(cursor_id), "ns": namespace}

    def _new_id(self) -> int:
        # Positive, non-zero int64 ids that clients cannot guess.
        while True:
            cursor_id = secrets.randbits(63)
            if cursor_id and cursor_id not in self._cursors:
                return cursor_id

    def get_more(self, cursor_id: int, namespace: str, batch_size: Any = None) -> dict[str, Any]:
        """Return the ``cursor`` reply field with the next batch.

        :raises CommandError: CursorNotFound for an unknown, exhausted or killed
            cursor, or a cursor opened on another namespace.
        """
        size = _validate_batch_size(batch_size)
        with self._lock:
            cursor = self._cursors.get(cursor_id)
            if cursor is None or cursor.namespace != namespace:
                raise CommandError(
                    CURSOR_NOT_FOUND, f"cursor id {cursor_id} not found on namespace {namespace}"
                )
            batch = _take_batch(cursor.documents, size)
            cursor.last_used = time.monotonic()
            if not cursor.documents:
                del self._cursors[cursor_id]
                cursor_id = 0
        return {"nextBatch": batch, "id": Int64(cursor_id), "ns": namespace}

    def kill(self, cursor_ids: Iterable[int]) -> tuple[list[Int64], list[Int64]]:
        """Close cursors and return the ids closed and the ids not found."""
        killed: list[Int64] = []
        not_found: list[Int64] = []
        with self._lock:
            for cursor_id in cursor_ids:
                if self._cursors.pop(int(cursor_id), None) is None:
                    not_found.append(Int64(cursor_id))
                else:
                    killed.append(Int64(cursor_id))
        return killed, not_found

    def remove_idle(self, max_idle_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS) -> int:
        """Close cursors without a getMore for ``max_idle_seconds`` and return how many."""
        deadline = time.monotonic() - max_idle_seconds
        with self._lock:
            idle = [cid for cid, cursor in self._cursors.items() if cursor.last_used < deadline]
            for cursor_id in idle:
                del self._cursors[cursor_id]
        return len(idle)

    def __len__(self) -> int:
        with self._lock:
            return len(self._cursors)
