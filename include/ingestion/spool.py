"""Prepared batches of upsert statements, kept on local disk until the file is accepted.

The parse pass writes the statement of every valid record here as BSON
(see include.ingestion.documents), so the file is parsed once, nothing
reaches MongoDB before the whole file has been checked, and the loader
sends the bytes as they are. Layout of one batch::

    count, size   two int64: statements in the batch, bytes of statements
    lines         count int64: the source line of each statement
    ends          count int64: where each statement ends in the statements
    statements    the statements, one after another

The file is an anonymous temporary file (``tempfile.TemporaryFile``), so
the operating system removes it even when the worker is killed.
"""

from __future__ import annotations

import struct
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import IO

_HEADER = struct.Struct("<qq")
# One update command carries one batch. pymongo and MongoDB accept a
# command 16 KiB above the 16 MiB document limit, so a batch is flushed
# before its statements pass 16 MiB; a single larger statement goes alone.
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class SpoolBatch:
    """One batch read back from the spool: the source lines and the statements' BSON."""

    lines: list[int]
    statements: list[bytes]


class Spool:
    """Batches of up to ``batch_size`` statements on an anonymous temporary file.

    ``after_flush`` runs after each batch is written (the pipeline renews
    its ledger lease there during long parses).

    Within one batch a repeated key replaces the earlier statement (the
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
        # key -> (line, start, end) in _buffer; the dict keeps each key's
        # first position and its latest statement.
        self._pending: dict[str, tuple[int, int, int]] = {}
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

    def add(self, key: str, line: int, statement: bytes) -> None:
        """Append one statement to the current batch, writing the batch when it is full."""
        pending = self._pending
        buffer = self._buffer
        if pending and len(buffer) + len(statement) > self._max_batch_bytes:
            self.flush()
            pending = self._pending
            buffer = self._buffer
        if key in pending:
            self.duplicates += 1
            self._superseded += 1
        start = len(buffer)
        buffer += statement
        pending[key] = (line, start, start + len(statement))
        if len(pending) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the current batch, if any, to the file."""
        pending = self._pending
        if not pending:
            return
        entries = pending.values()
        lines = array("q", [entry[0] for entry in entries])
        if self._superseded:
            view = memoryview(self._buffer)
            statements = b"".join(view[entry[1] : entry[2]] for entry in entries)
            ends = array("q", accumulate(entry[2] - entry[1] for entry in entries))
        else:
            statements = self._buffer
            ends = array("q", [entry[2] for entry in entries])
        write = self._file.write
        write(_HEADER.pack(len(lines), len(statements)))
        write(lines.tobytes())
        write(ends.tobytes())
        write(statements)
        self.documents += len(lines)
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
            header = self._file.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise ValueError("the spool file ends inside a batch header")
            count, size = _HEADER.unpack(header)
            lines = _read_int64s(self._file, count)
            ends = _read_int64s(self._file, count)
            data = self._file.read(size)
            if len(data) != size or (count and ends[-1] != size):
                raise ValueError("the spool file ends inside a batch")
            starts = [0, *ends[:-1]]
            statements = [data[start:end] for start, end in zip(starts, ends, strict=True)]
            yield SpoolBatch(lines.tolist(), statements)


def _read_int64s(file: IO[bytes], count: int) -> array:
    values = array("q")
    data = file.read(8 * count)
    if len(data) != 8 * count:
        raise ValueError("the spool file ends inside a batch header")
    values.frombytes(data)
    return values
