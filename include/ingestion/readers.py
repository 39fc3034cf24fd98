"""Streaming readers: checksum, gzip, BOM, strict UTF-8, lines, JSON values, CSV rows.

Every reader pulls fixed-size chunks, so memory depends on the longest
record (bounded by ``max_record_bytes``), never on the file size.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import msgspec

from include.ingestion.formats import GZIP_MAGIC, UTF8_BOM
from include.ingestion.report import (
    CORRUPT_GZIP,
    EMPTY_FILE,
    INVALID_CSV,
    INVALID_ENCODING,
    INVALID_JSON_DOCUMENT,
    NOT_GZIP,
    RECORD_TOO_LARGE,
    FileRejected,
)

CHUNK_BYTES = 1024 * 1024
# Enough for the format checks: BOM, NUL bytes, the first line or header.
HEAD_BYTES = 64 * 1024
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
_JSON_WHITESPACE = re.compile(r"[ \t\r\n]*")


class HashingReader(io.RawIOBase):
    """A raw stream over ``source.read`` that counts bytes and computes SHA-256.

    ``source`` is anything with ``read(size)``, such as the body of a boto3
    ``get_object`` response.
    """

    def __init__(self, source: Any):
        super().__init__()
        self._source = source
        self._sha256 = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        """SHA-256 of the bytes read so far, in hex."""
        return self._sha256.hexdigest()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self._sha256.update(data)
        self.size += count
        return count


class Content:
    """The decompressed bytes of one object, positioned after any UTF-8 BOM.

    ``head`` is a preview of the first bytes for format checks; ``stream``
    yields the same bytes again. ``raw`` counts and hashes the stored
    (possibly compressed) bytes.
    """

    def __init__(self, raw: HashingReader, announced_gzip: bool):
        self.raw = raw
        buffered = io.BufferedReader(raw, CHUNK_BYTES)
        magic = buffered.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)]
        if not magic:
            raise FileRejected(EMPTY_FILE, "the object is empty (0 bytes)")
        self.compressed = magic == GZIP_MAGIC
        if announced_gzip and not self.compressed:
            raise FileRejected(NOT_GZIP, "the name ends in .gz but the content has no gzip header")

        # A BufferedReader over GzipFile fills its whole buffer per read, so
        # the head below holds up to HEAD_BYTES of decompressed data.
        self.stream: IO[bytes] = (
            io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), CHUNK_BYTES)
            if self.compressed
            else buffered
        )
        with gzip_errors():
            head = self.stream.peek(HEAD_BYTES)[:HEAD_BYTES]
            if not head:
                raise FileRejected(EMPTY_FILE, "the gzip content is empty (0 bytes)")
            self.bom = head.startswith(UTF8_BOM)
            if self.bom:
                self.stream.read(len(UTF8_BOM))
                head = head[len(UTF8_BOM) :]
        self.head = head


def drain(raw: HashingReader) -> None:
    """Read the rest of the stored object so that its size and checksum are complete."""
    while raw.read(CHUNK_BYTES):
        pass


@contextmanager
def gzip_errors() -> Iterator[None]:
    """Turn the errors of a truncated or corrupt gzip stream into a file rejection."""
    try:
        yield
    except GZIP_ERRORS as exc:
        raise FileRejected(CORRUPT_GZIP, f"the gzip stream is truncated or corrupt: {exc}") from exc


def describe_decode_error(exc: UnicodeDecodeError, line_no: int) -> FileRejected:
    """Build the rejection for invalid UTF-8 in line ``line_no``."""
    byte = exc.object[exc.start]
    hint = ""
    if byte >= 0x80:
        hint = (
            "; single bytes such as this are how Latin-1 or Windows-1252 text "
            "stores accented letters"
        )
    return FileRejected(
        INVALID_ENCODING,
        f"invalid UTF-8 at line {line_no}, byte {exc.start + 1} of the line "
        f"(0x{byte:02X}: {exc.reason}){hint}; re-export the file as UTF-8",
        line=line_no,
    )


def iter_lines(stream: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line_number, line)`` with the line ending kept.

    A line longer than ``max_bytes`` is skipped without being held in memory
    and yielded as ``None``.
    """
    readline = stream.readline
    limit = max_bytes + 1
    line_no = 0
    while True:
        line = readline(limit)
        if not line:
            return
        line_no += 1
        if len(line) == limit and not line.endswith(b"\n"):
            skip_rest_of_line(stream)
            yield line_no, None
            continue
        yield line_no, line


def skip_rest_of_line(stream: IO[bytes]) -> None:
    """Read past the end of the current line without holding it in memory."""
    while True:
        chunk = stream.readline(CHUNK_BYTES)
        if not chunk or chunk.endswith(b"\n"):
            return


# In every case the reader tests compare, msgspec's JSON decoder gives the
# result of json.loads or fails. It keeps integers beyond 64 bits as int, as
# json does (BSON then rejects them as unstorable). It fails where json may
# still succeed: NaN, Infinity, numbers that overflow to infinity and lone
# surrogate escapes.
FAST_LOADS = msgspec.json.Decoder().decode
FAST_ERRORS = (msgspec.DecodeError, RecursionError)


def loads_line(line: bytes, line_no: int) -> Any:
    """Parse one line of NDJSON with the result of ``json.loads(line.decode("utf-8"))``.

    msgspec parses the line, about three times faster than ``json`` on the
    benchmark's FHIR lines. A line it rejects goes to
    :func:`loads_line_with_json`. Raise :class:`FileRejected` for invalid
    UTF-8 and ``ValueError`` for invalid JSON.
    """
    try:
        return FAST_LOADS(line)
    except FAST_ERRORS:
        return loads_line_with_json(line, line_no)


def loads_line_with_json(line: bytes, line_no: int) -> Any:
    """Parse one line of NDJSON with the standard library's ``json``.

    Used where msgspec fails: ``json`` also accepts NaN, Infinity, numbers
    that overflow to infinity and lone surrogate escapes, and its error
    message is the one reported. Raise :class:`FileRejected` for invalid
    UTF-8 and ``ValueError`` for invalid JSON, including nesting too deep
    to parse.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise describe_decode_error(exc, line_no) from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("the JSON value is nested too deeply to parse") from None


def is_blank(line: bytes) -> bool:
    """Tell whether a line that is valid UTF-8 holds only whitespace (Unicode's definition)."""
    return not line.decode("utf-8").strip()


def iter_text_lines(stream: IO[bytes], max_bytes: int) -> Iterator[str]:
    """Yield lines decoded as strict UTF-8; reject the file on bad bytes or an over-long line."""
    for line_no, line in iter_lines(stream, max_bytes):
        if line is None:
            raise FileRejected(
                RECORD_TOO_LARGE, f"line {line_no} is longer than {max_bytes} bytes", line_no
            )
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise describe_decode_error(exc, line_no) from None


def iter_csv_rows(
    stream: IO[bytes], delimiter: str, max_bytes: int
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first_line_number, row)`` for each CSV row, the header row included.

    Quoted fields may span lines. Syntax errors reject the whole file because
    the reader cannot tell where the next row starts.
    """
    # The limit is process-wide in the csv module; raising it to the record
    # limit is safe because each line is already bounded by max_bytes.
    if csv.field_size_limit() < max_bytes:
        csv.field_size_limit(max_bytes)
    reader = csv.reader(iter_text_lines(stream, max_bytes), delimiter=delimiter, strict=True)
    next_line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileRejected(
                INVALID_CSV, f"invalid CSV near line {reader.line_num}: {exc}", reader.line_num
            ) from None
        start = next_line
        next_line = reader.line_num + 1
        if row:
            yield start, row


def iter_json_values(stream: IO[bytes], max_bytes: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for each item of a JSON array or each top-level value.

    Accepts one array, one document, or documents one after another (which
    covers pretty-printed objects and NDJSON). Invalid JSON rejects the file.
    """
    values = _JsonValues(stream, max_bytes)
    yield from values


def _is_syntax_error(exc: json.JSONDecodeError, buffered: int) -> bool:
    """Tell a real syntax error from a value that only continues past the buffer."""
    if exc.msg.startswith("Unterminated string"):
        return False
    return exc.pos < buffered - 1


class _JsonValues:
    """Incremental scanner behind :func:`iter_json_values`."""

    def __init__(self, stream: IO[bytes], max_bytes: int):
        self._stream = stream
        self._max_chars = max_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._json = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._line = 1
        self._eof = False

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        self._skip_whitespace()
        in_array = self._peek() == "["
        if in_array:
            self._advance(self._pos + 1)
        first = True
        while True:
            self._skip_whitespace()
            char = self._peek()
            if char == "":
                if in_array:
                    self._reject("the JSON array is not closed with ']'")
                return
            if in_array and char == "]":
                self._advance(self._pos + 1)
                self._expect_end()
                return
            if in_array and not first:
                if char != ",":
                    self._reject(f"expected ',' or ']' between array items, found {char!r}")
                self._advance(self._pos + 1)
                self._skip_whitespace()
            first = False
            line = self._line
            yield line, self._decode_value()

    def _decode_value(self) -> Any:
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof or _is_syntax_error(exc, len(self._buffer)):
                    self._reject(f"invalid JSON: {exc.msg}", at=exc.pos)
                if len(self._buffer) - self._pos > self._max_chars:
                    raise FileRejected(
                        RECORD_TOO_LARGE,
                        f"the JSON value at line {self._line} is longer than "
                        f"{self._max_chars} characters",
                        self._line,
                    ) from None
                self._fill()
                continue
            if end == len(self._buffer) and not self._eof:
                # A number or literal may continue in the next chunk.
                self._fill()
                continue
            self._advance(end)
            return value

    def _expect_end(self) -> None:
        self._skip_whitespace()
        if self._peek() != "":
            self._reject("unexpected content after the closing ']' of the JSON array")

    def _peek(self) -> str:
        while self._pos >= len(self._buffer) and not self._eof:
            self._fill()
        return self._buffer[self._pos : self._pos + 1]

    def _skip_whitespace(self) -> None:
        while True:
            end = _JSON_WHITESPACE.match(self._buffer, self._pos).end()
            self._advance(end)
            if self._pos < len(self._buffer) or self._eof:
                return
            self._fill()

    def _advance(self, end: int) -> None:
        self._line += self._buffer.count("\n", self._pos, end)
        self._pos = end

    def _fill(self) -> None:
        if self._pos > CHUNK_BYTES:
            self._buffer = self._buffer[self._pos :]
            self._pos = 0
        data = self._stream.read(CHUNK_BYTES)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise FileRejected(
                INVALID_ENCODING,
                f"invalid UTF-8 near line {self._line} (0x{exc.object[exc.start]:02X}: "
                f"{exc.reason}); re-export the file as UTF-8",
                self._line,
            ) from None
        self._eof = not data
        self._buffer += text

    def _reject(self, message: str, at: int | None = None) -> None:
        line = self._line
        if at is not None and at > self._pos:
            line += self._buffer.count("\n", self._pos, at)
        raise FileRejected(INVALID_JSON_DOCUMENT, f"{message} (line {line})", line)
