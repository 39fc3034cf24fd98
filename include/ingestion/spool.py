"""Prepared batches of BSON documents, kept on local disk until the file is accepted.

The parse pass writes every valid record here as BSON, so the file is parsed
once, nothing reaches MongoDB before the whole file has been checked, and
the loader sends the bytes as they are. Layout of one batch::

    header   BSON {"ids": [...], "hashes": [...], "lines": [...]}
    docs     one BSON document per id, in the same order

The file is an anonymous temporary file (``tempfile.TemporaryFile``), so
the operating system removes it even when the worker is killed.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

import bson

_INT32 = struct.Struct("<i")
# Flush a batch before it reaches this size, so a batch of large documents
# stays well below pymongo's 48 MB message size and the worker's memory.
DEFAULT_MAX_BATCH_BYTES = 32 * 1024 * 1024


@dataclass
class SpoolBatch:
    """One batch read back from the spool: ids, record hashes, source lines and BSON documents."""

    ids: list[str]
    hashes: list[str]
    lines: list[int]
    documents: list[bytes]


class Spool:
    """Batches of up to ``batch_size`` documents on an anonymous temporary file.

    ``after_flush`` runs after each batch is written (the pipeline renews
    its ledger lease there during long parses).

    Within one batch a repeated ``_id`` replaces the earlier document (the
    later line wins) and is counted in ``duplicates``. Across batches the
    loader writes batches in order, so the later line wins there too.

    NOTE: ``duplicates`` counts repeats within a batch only. Counting across
    the whole file would need memory growing with the number of keys.
    """

    def __init__(
        self,
        batch_size: int,
        directory: str | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        after_flush: Callable[[], None] | None = None,
    ):
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="cdx-ingest-", dir=directory)
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._pending: dict[str, tuple[str, int, int, int]] = {}
        self._buffer = bytearray()
        self._superseded = 0
        self._after_flush = after_flush
        self.documents = 0
        self.duplicates = 0
        self.batches = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close and thereby delete the spool file."""
        self._file.close()

    def add(self, key: str, record_hash: str, line: int, document: bytes) -> None:
        """Append one document to the current batch, writing the batch when it is full."""
        pending = self._pending
        buffer = self._buffer
        if key in pending:
            self.duplicates += 1
            self._superseded += 1
        # Documents are copied into one buffer instead of being kept as
        # separate objects. The dict keeps the first position of a key and
        # its latest (hash, line, start, end).
        start = len(buffer)
        buffer += document
        end = start + len(document)
        pending[key] = (record_hash, line, start, end)
        if end >= self._max_batch_bytes or len(pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the current batch, if any, to the file."""
        pending = self._pending
        if not pending:
            return
        entries = pending.values()
        header = {
            "ids": list(pending),
            "hashes": [entry[0] for entry in entries],
            "lines": [entry[1] for entry in entries],
        }
        self._file.write(bson.encode(header))
        if self._superseded:
            view = memoryview(self._buffer)
            self._file.write(b"".join(view[entry[2] : entry[3]] for entry in entries))
        else:
            self._file.write(self._buffer)
        self.documents += len(pending)
        self.batches += 1
        self._pending = {}
        self._buffer = bytearray()
        self._superseded = 0
        if self._after_flush is not None:
            self._after_flush()

    def read_batches(self) -> Iterator[SpoolBatch]:
        """Flush, then yield the batches in the order they were written."""
        self.flush()
        self._file.flush()
        self._file.seek(0)
        while True:
            header_bytes = _read_bson(self._file)
            if header_bytes is None:
                return
            header = bson.decode(header_bytes)
            documents = []
            for _ in header["ids"]:
                document = _read_bson(self._file)
                if document is None:
                    raise ValueError("the spool file ends inside a batch")
                documents.append(document)
            yield SpoolBatch(header["ids"], header["hashes"], header["lines"], documents)


def _read_bson(file: IO[bytes]) -> bytes | None:
    prefix = file.read(4)
    if not prefix:
        return None
    if len(prefix) < 4:
        raise ValueError("the spool file ends inside a document length")
    (length,) = _INT32.unpack(prefix)
    rest = file.read(length - 4)
    if len(rest) != length - 4:
        raise ValueError("the spool file ends inside a document")
    return prefix + rest
