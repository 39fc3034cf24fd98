"""Cutting NDJSON into chunks of whole lines, and parsing a chunk into spool batches."""

import io
import random
from datetime import UTC, datetime

import bson
import pytest

from include.ingestion import chunks
from include.ingestion.chunks import FhirChunkParser, LongLine, iter_line_chunks
from include.ingestion.documents import Provenance
from include.ingestion.report import INVALID_ENCODING, INVALID_JSON, RECORD_TOO_LARGE
from include.ingestion.spool import BatchWriter, Spool

PROVENANCE = Provenance(
    "acme-health", "cdx-acme-health", "incoming/Patient.000.ndjson", "v1", '"e"',
    datetime(2025, 1, 2, tzinfo=UTC), "run-1",
)  # fmt: skip


def _chunks(data: bytes, max_bytes=1000, max_lines=3, chunk_bytes=10_000):
    got = iter_line_chunks(io.BytesIO(data), max_bytes, max_lines, chunk_bytes)
    return [item if isinstance(item, LongLine) else (item[0], bytes(item[1])) for item in got]


@pytest.fixture(params=[1, 2, 7, 1024])
def read_bytes(request, monkeypatch):
    """Read the stream in blocks of this many bytes, to move the block edges around."""
    monkeypatch.setattr(chunks, "READ_BYTES", request.param)
    return request.param


def test_chunks_hold_max_lines(read_bytes):
    data = b"".join(b"line %d\n" % number for number in range(1, 8))
    got = _chunks(data)
    assert [first for first, _ in got] == [1, 4, 7]
    assert [part.count(b"\n") for _, part in got] == [3, 3, 1]
    assert b"".join(part for _, part in got) == data


def test_last_line_without_newline_is_kept(read_bytes):
    assert _chunks(b"a\nb\nc\nd") == [(1, b"a\nb\nc\n"), (4, b"d")]


def test_chunk_stops_before_byte_limit(read_bytes):
    data = b"aaaa\nbbbb\ncccccccccccc\nd\n"
    got = _chunks(data, max_lines=10, chunk_bytes=10)
    assert got == [(1, b"aaaa\nbbbb\n"), (3, b"cccccccccccc\n"), (4, b"d\n")]


def _lines_seen(got, max_bytes):
    """Map line numbers to their bytes, or to None for a line too long to keep.

    The reader skips a long line when it notices one before the newline. A
    long line that arrives whole in a read stays in its chunk for the parser
    to report, so both count as too long here.
    """
    seen = {}
    for item in got:
        if isinstance(item, LongLine):
            seen[item.line] = None
            continue
        first, part = item
        for offset, line in enumerate(part.split(b"\n")[: part.count(b"\n")]):
            seen[first + offset] = None if len(line) > max_bytes else line
        if not part.endswith(b"\n"):
            seen[first + part.count(b"\n")] = part.rsplit(b"\n", 1)[-1]
    return seen


def test_long_lines_skipped_and_numbered(read_bytes):
    data = b"a\n" + b"x" * 50 + b"\nb\n" + b"y" * 60
    got = _chunks(data, max_bytes=20, max_lines=10)
    assert _lines_seen(got, 20) == {1: b"a", 2: None, 3: b"b", 4: None}
    if read_bytes < 20:
        assert got == [(1, b"a\n"), LongLine(2), (3, b"b\n"), LongLine(4)]


def test_long_line_at_start_of_stream(read_bytes):
    got = _chunks(b"z" * 40 + b"\nok\n", max_bytes=20)
    assert _lines_seen(got, 20) == {1: None, 2: b"ok"}


def test_random_input_keeps_every_short_line(read_bytes):
    generator = random.Random(read_bytes)
    lines = [b"r" * generator.choice([0, 1, 5, 9, 30]) for _ in range(300)]
    data = b"\n".join(lines) + b"\n"
    got = _chunks(data, max_bytes=12, max_lines=7, chunk_bytes=40)
    seen = _lines_seen(got, 12)
    assert sorted(seen) == list(range(1, len(lines) + 1))
    for number, line in enumerate(lines, start=1):
        assert seen[number] == (None if len(line) > 12 else line)


def _parse(data: bytes, batch_size=1000, max_bytes=1000):
    parser = FhirChunkParser("Patient", "acme-health/Patient/", PROVENANCE, max_bytes)
    with Spool(batch_size) as spool:
        number, file = spool.new_file()
        writer = BatchWriter(file, batch_size, spool.max_batch_bytes)
        result = parser.parse(5, data, parser.encoder(), writer)
        spool.add_written(number, result.batches, result.documents, result.duplicates)
        batches = list(spool.read_batches())
    return result, batches


def test_chunk_parse_numbers_bad_lines():
    data = (
        b'{"resourceType":"Patient","id":"a"}\n'
        b"not json\n"
        b"\n"
        b'{"resourceType":"Patient","id":"' + b"x" * 2000 + b'"}\n'
        b'{"resourceType":"Patient","id":"b"}'
    )
    result, batches = _parse(data)
    assert result.valid == result.documents == 2
    assert [(line, reason) for line, reason, _ in result.bad] == [
        (6, INVALID_JSON),
        (8, RECORD_TOO_LARGE),
    ]
    assert [batch.lines for batch in batches] == [[5, 9]]
    assert bson.decode(batches[0].statements[1])["u"]["_id"] == "acme-health/Patient/b"


def test_chunk_parse_batches_and_remainder():
    data = b"".join(b'{"resourceType":"Patient","id":"p%d"}\n' % n for n in range(5))
    result, batches = _parse(data, batch_size=2)
    assert [batch.lines for batch in batches] == [[5, 6], [7, 8], [9]]
    assert len(result.batches) == 3


def test_chunk_parse_stops_at_rejecting_line():
    data = b'{"resourceType":"Patient","id":"a"}\nnot json\n{"id": "\xff"}\n{}\n'
    result, batches = _parse(data)
    assert result.rejection is not None
    reason, _, line = result.rejection
    assert (reason, line) == (INVALID_ENCODING, 7)
    assert [line for line, _, _ in result.bad] == [6]
    assert [batch.lines for batch in batches] == [[5]]
