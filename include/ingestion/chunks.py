"""FHIR NDJSON in chunks of whole lines, so worker processes can parse them in parallel.

The task's process reads the object and cuts it into chunks of whole
lines, one batch's worth each (:func:`iter_line_chunks`). Each chunk is
parsed on its own by :class:`FhirChunkParser`, in a worker process or in
the task's process. The upsert statements of its valid records go to a
spool file as batches. A :class:`ChunkResult` records where they are and
lists the bad records with their line numbers. The task applies the
results to the spool's index and the error report in chunk order, so the
outcome is the same whichever process parsed a chunk.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from include.ingestion.documents import DocumentEncoder, Provenance
from include.ingestion.readers import FAST_ERRORS, FAST_LOADS, is_blank, loads_line_with_json
from include.ingestion.records import BadRecord, check_fhir_resource
from include.ingestion.report import INVALID_JSON, RECORD_TOO_LARGE, FileRejected
from include.ingestion.spool import BatchWriter

# A chunk contains one batch's worth of lines, at most about 4 MiB, so the
# chunks in flight between the task and its workers use little memory even
# when records are large.
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
READ_BYTES = 1024 * 1024


def too_long_message(max_bytes: int) -> str:
    """Return the error report's message for a line over ``max_bytes``."""
    return f"the line is longer than {max_bytes} bytes"


@dataclass
class ChunkResult:
    """Outcome of parsing one chunk.

    ``valid`` records were spooled as ``documents`` statements (a key
    repeated within a batch keeps only its later statement and counts in
    ``duplicates``), in the batches at ``(start, end)`` positions
    ``batches`` of spool file ``file_number``. ``bad`` lists ``(line, reason, message)`` of bad
    records in line order. ``rejection`` is ``(reason, message, line)``
    when a line rejects the whole file; parsing stopped there.
    """

    valid: int = 0
    documents: int = 0
    duplicates: int = 0
    file_number: int = 0
    batches: list[tuple[int, int]] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)
    rejection: tuple[str, str, int | None] | None = None
    # Where a worker left ``bad`` in its spool file: (offset, length).
    bad_at: tuple[int, int] | None = None
    # Processes parsing the object: 1 for the task's own, else the workers.
    processes: int = 1


@dataclass(frozen=True)
class FhirChunkParser:
    """Parse chunks of one FHIR NDJSON object whose file names ``resource_type``.

    ``prefix`` is ``<client_id>/<dataset>/``, and a record's key is the
    prefix followed by its ``id``. Lines over ``max_bytes`` are bad records.
    """

    resource_type: str
    prefix: str
    provenance: Provenance
    max_bytes: int

    def encoder(self) -> DocumentEncoder:
        """Return a new encoder for this object's statements."""
        return DocumentEncoder(self.provenance)

    def parse(
        self, first_line: int, data: bytes, encoder: DocumentEncoder, writer: BatchWriter
    ) -> ChunkResult:
        """Parse ``data``, whose first line is line ``first_line``, into batches of ``writer``.

        The chunk's last batch is written even if it is not full.
        """
        result = ChunkResult()
        documents, duplicates = writer.documents, writer.duplicates
        try:
            result.valid = self._parse_lines(first_line, data, encoder, writer.add, result.bad)
        except FileRejected as rejection:
            result.rejection = (rejection.reason, rejection.message, rejection.line)
        writer.flush()
        result.batches, writer.batches = writer.batches, []
        result.documents = writer.documents - documents
        result.duplicates = writer.duplicates - duplicates
        return result

    def _parse_lines(
        self,
        first_line: int,
        data: bytes,
        encoder: DocumentEncoder,
        add: Callable[[str, int, bytes], None],
        bad: list[tuple[int, str, str]],
    ) -> int:
        """Spool each valid line with ``add``, list the bad ones in ``bad``, return the valid count.

        This is the hot loop of large exports, so it stays flat and binds
        what it calls to local names.
        """
        resource_type, prefix, max_bytes = self.resource_type, self.prefix, self.max_bytes
        fast_loads, fast_errors = FAST_LOADS, FAST_ERRORS
        sha256, upsert = hashlib.sha256, encoder.upsert
        find = data.find
        size = len(data)
        start = 0
        line_no = first_line - 1
        valid = 0
        while start < size:
            end = find(b"\n", start)
            if end < 0:
                end = size
            line = data[start:end]
            start = end + 1
            line_no += 1
            if len(line) > max_bytes:
                bad.append((line_no, RECORD_TOO_LARGE, too_long_message(max_bytes)))
                continue
            try:
                record = fast_loads(line)
            except fast_errors:
                try:
                    record = loads_line_with_json(line, line_no)
                except ValueError as exc:
                    if not is_blank(line):
                        bad.append((line_no, INVALID_JSON, f"invalid JSON: {exc}"))
                    continue
            try:
                key = prefix + check_fhir_resource(record, resource_type)
                record_hash = hexlify(sha256(line.rstrip(b"\r\n")).digest())
                add(key, line_no, upsert(record, key, line_no, record_hash))
            except BadRecord as bad_record:
                bad.append((line_no, bad_record.reason, bad_record.message))
                continue
            valid += 1
        return valid


@dataclass(frozen=True)
class LongLine:
    """A line over the size limit, skipped by the reader without holding it."""

    line: int


def iter_line_chunks(
    stream: IO[bytes], max_bytes: int, max_lines: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[tuple[int, memoryview] | LongLine]:
    """Yield ``(first_line, data)`` chunks of ``stream`` that end at a line end.

    ``data`` is a view of the reader's buffer, so a chunk is not copied
    until a consumer copies it.

    A chunk contains ``max_lines`` lines, fewer if they would pass
    ``chunk_bytes`` (a longer single line makes a chunk of its own), and
    the rest of the stream at its end. Only the last chunk may end without
    a newline. A line that grows past ``max_bytes`` before its newline
    arrives is yielded as :class:`LongLine` and skipped, so memory stays
    near ``max_bytes``. A longer line that arrives whole is left to the
    parser, which reports it the same way.
    """
    buffer = b""
    line_no = 1  # number of the buffer's first line
    skipping = False
    while block := stream.read(READ_BYTES):
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block, skipping, line_no = block[newline + 1 :], False, line_no + 1
        buffer = buffer + block if buffer else block
        start = 0
        while True:
            end, lines, full = _cut(buffer, start, max_lines, chunk_bytes)
            if not full:
                break
            yield line_no, memoryview(buffer)[start:end]
            line_no += lines
            start = end
        buffer = buffer[start:]
        tail = len(buffer) - buffer.rfind(b"\n") - 1  # the unfinished line
        if tail > max_bytes:
            complete = len(buffer) - tail
            if complete:
                yield line_no, memoryview(buffer)[:complete]
                line_no += buffer.count(b"\n", 0, complete)
            yield LongLine(line_no)
            buffer, skipping = b"", True
    if buffer and not skipping:
        yield line_no, memoryview(buffer)


def _cut(buffer: bytes, start: int, max_lines: int, chunk_bytes: int) -> tuple[int, int, bool]:
    """Find the next chunk in ``buffer`` from ``start``: ``(end, lines, full)``.

    ``full`` is true when the chunk cannot grow: it has ``max_lines`` lines,
    or its next line would pass ``chunk_bytes``.
    """
    find = buffer.find
    end = start
    lines = 0
    while lines < max_lines:
        newline = find(b"\n", end)
        if newline < 0:
            return end, lines, False
        if lines and newline + 1 - start > chunk_bytes:
            return end, lines, True
        end = newline + 1
        lines += 1
    return end, lines, True
