"""Prepared batches of upsert statements, kept on local disk until the file is accepted.

The parse pass writes the statement of every valid record here as BSON
(see include.ingestion.documents), so the file is parsed once, nothing
reaches MongoDB before the whole file has been checked, and the loader
sends the bytes as they are. Statements are written as they come, so a
batch is never held in memory, and the batch's index follows them::

    statements    the statements, one after another (a statement replaced by
                  a later one with the same key stays, but is not indexed)
    lines         count int64: the source line of each indexed statement
    starts, ends  count int64 each: where it starts and ends, counted from
                  the batch's first byte
    count, size   two int64: indexed statements, bytes of all statements

The files are anonymous temporary files (``tempfile.TemporaryFile``), so
the operating system removes them even when the task is killed. The spool
reads a batch back with ``os.pread`` at its recorded position, so the
parse workers (include.ingestion.workers) each append to a file of their
own.
"""

from __future__ import annotations

import os
import struct
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

_TRAILER = struct.Struct("<qq")
_FILE_BUFFER_BYTES = 1024 * 1024
# One update command carries one batch. pymongo and MongoDB accept a
# command 16 KiB above the 16 MiB document limit, so a batch is flushed
# before its statements pass 16 MiB; a single larger statement goes alone.
DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024


@dataclass
class SpoolBatch:
    """One batch read back from the spool: the source lines and the statements' BSON.

    The statements are views of one buffer that contains the whole batch,
    so a batch is in memory once.
    """

    lines: list[int]
    statements: list[memoryview]


class BatchWriter:
    """Group statements into batches of up to ``batch_size`` and append them to ``file``.

    Within one batch a repeated key replaces the earlier statement (the
    later line wins) and is counted in ``duplicates``. ``batches`` lists
    the ``(start, end)`` file positions of the batches written so far. The
    spool uses one writer for its own file, and each parse worker one for
    the file it was given. No other writer may write to that file.
    """

    def __init__(self, file: IO[bytes], batch_size: int, max_batch_bytes: int):
        self._file = file
        self._batch_size = batch_size
        self._max_batch_bytes = max_batch_bytes
        self._position = file.seek(0, os.SEEK_END)
        self._start = self._position  # where the current batch begins
        # key -> (line, start, end) counted from _start. The dict keeps each
        # key's first position and its latest statement.
        self._pending: dict[str, tuple[int, int, int]] = {}
        self.batches: list[tuple[int, int]] = []
        self.documents = 0
        self.duplicates = 0

    def add(self, key: str, line: int, statement: bytes) -> None:
        """Append one statement to the current batch, closing the batch when it is full."""
        pending = self._pending
        size = self._position - self._start
        if pending and size + len(statement) > self._max_batch_bytes:
            self.flush()
            pending = self._pending
            size = 0
        if key in pending:
            self.duplicates += 1
        self._file.write(statement)
        self._position += len(statement)
        pending[key] = (line, size, size + len(statement))
        if len(pending) >= self._batch_size:
            self.flush()

    def flush(self) -> bool:
        """Close the current batch by writing its index; return False if it was empty."""
        pending = self._pending
        if not pending:
            return False
        entries = pending.values()
        size = self._position - self._start
        write = self._file.write
        write(array("q", [entry[0] for entry in entries]).tobytes())
        write(array("q", [entry[1] for entry in entries]).tobytes())
        write(array("q", [entry[2] for entry in entries]).tobytes())
        write(_TRAILER.pack(len(pending), size))
        self._position += 24 * len(pending) + _TRAILER.size
        self.batches.append((self._start, self._position))
        self.documents += len(pending)
        self._pending = {}
        self._start = self._position
        return True

    def append(self, data: bytes) -> int:
        """Write ``data`` outside any batch and return its position.

        The current batch must be closed (see :meth:`flush`) first.
        """
        if self._pending:
            raise RuntimeError("cannot append data while a batch is open: call flush() first")
        position = self._position
        self._file.write(data)
        self._position += len(data)
        self._start = self._position
        return position


class Spool:
    """Batches of upsert statements on anonymous temporary files, read back in order.

    Statements come either one by one through :meth:`add` (batches of up to
    ``batch_size``, written to the spool's own file) or as batches that a
    parse worker wrote to a file from :meth:`new_file`, recorded in order
    with :meth:`add_written`. ``after_flush`` runs after each batch is
    written or recorded (the pipeline renews its ledger lease there during
    long parses).

    NOTE: ``duplicates`` counts repeats within a batch only. Counting across
    the whole file would need memory growing with the number of keys. Across
    batches the loader writes batches in order, so the later line wins.
    """

    def __init__(
        self,
        batch_size: int,
        directory: str | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        after_flush: Callable[[], None] | None = None,
    ):
        self._directory = directory
        self._files: list[IO[bytes]] = []
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self._writer = BatchWriter(self.new_file()[1], batch_size, max_batch_bytes)
        # (file number, start, end) of every batch, in the order to load them.
        self._index: list[tuple[int, int, int]] = []
        self._after_flush = after_flush
        self._documents = 0
        self._duplicates = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def documents(self) -> int:
        """Statements in the batches written so far."""
        return self._documents + self._writer.documents

    @property
    def duplicates(self) -> int:
        """Statements replaced by a later one with the same key in the same batch."""
        return self._duplicates + self._writer.duplicates

    @property
    def batches(self) -> int:
        """Batches written so far."""
        return len(self._index)

    def new_file(self) -> tuple[int, IO[bytes]]:
        """Create another spool file and return its number and the open file."""
        file = tempfile.TemporaryFile(
            prefix="cdx-ingest-", dir=self._directory, buffering=_FILE_BUFFER_BYTES
        )
        self._files.append(file)
        return len(self._files) - 1, file

    def close(self) -> None:
        """Close and thereby delete the spool files."""
        for file in self._files:
            file.close()

    def add(self, key: str, line: int, statement: bytes) -> None:
        """Append one statement to the current batch, writing the batch when it is full."""
        writer = self._writer
        written = len(writer.batches)
        writer.add(key, line, statement)
        if len(writer.batches) != written:
            self._record_own_batches(written)

    def flush(self) -> None:
        """Close the current batch of the spool's own file, if it has statements."""
        written = len(self._writer.batches)
        if self._writer.flush():
            self._record_own_batches(written)

    def _record_own_batches(self, written: int) -> None:
        for start, end in self._writer.batches[written:]:
            self._index.append((0, start, end))
            if self._after_flush is not None:
                self._after_flush()

    def add_written(
        self, file_number: int, batches: list[tuple[int, int]], documents: int, duplicates: int
    ) -> None:
        """Record batches a worker wrote at ``(start, end)`` of file ``file_number``, in order."""
        self._index.extend((file_number, start, end) for start, end in batches)
        self._documents += documents
        self._duplicates += duplicates
        if batches and self._after_flush is not None:
            self._after_flush()

    def read_batches(self) -> Iterator[SpoolBatch]:
        """Flush, then yield the batches in the order they were written or recorded."""
        self.flush()
        for file in self._files:
            file.flush()
        for file_number, start, end in self._index:
            yield _read_batch(self._files[file_number].fileno(), start, end)


def _read_batch(fd: int, start: int, end: int) -> SpoolBatch:
    data = os.pread(fd, end - start, start)
    if len(data) != end - start or len(data) < _TRAILER.size:
        raise ValueError("the spool file ends inside a batch")
    count, size = _TRAILER.unpack_from(data, len(data) - _TRAILER.size)
    if size + 24 * count + _TRAILER.size != len(data):
        raise ValueError("invalid batch in the spool file: its sizes do not add up")
    index = array("q")
    index.frombytes(data[size : size + 24 * count])
    lines, starts, ends = index[:count], index[count : 2 * count], index[2 * count :]
    view = memoryview(data)
    statements = [view[first:last] for first, last in zip(starts, ends, strict=True)]
    return SpoolBatch(lines.tolist(), statements)
