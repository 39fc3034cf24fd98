"""Streaming readers: gzip, BOM, checksums, lines, JSON values, CSV rows."""

import gzip
import hashlib
import io
import json
import math
import random
import struct
import tracemalloc

import pytest

from include.ingestion import readers, report
from include.ingestion.readers import (
    Content,
    HashingReader,
    drain,
    gzip_errors,
    iter_csv_rows,
    iter_json_values,
    iter_lines,
    iter_text_lines,
)
from include.ingestion.report import FileRejected


class GeneratedStream(io.RawIOBase):
    """A raw stream of ``count`` copies of ``line``, produced on demand."""

    def __init__(self, line: bytes, count: int):
        self._line = line
        self._left = count
        self._pending = b""

    def readable(self):
        return True

    def readinto(self, buffer):
        while len(self._pending) < len(buffer) and self._left:
            take = min(self._left, 1024)
            self._pending += self._line * take
            self._left -= take
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def test_content_plain_checksum_and_size():
    data = b'{"a": 1}\n' * 1000
    content = Content(HashingReader(io.BytesIO(data)), announced_gzip=False)
    assert not content.compressed
    assert content.stream.read() == data
    drain(content.raw)
    assert content.raw.size == len(data)
    assert content.raw.sha256 == hashlib.sha256(data).hexdigest()


def test_content_detects_gzip_without_gz_name():
    data = b"a,b\n1,2\n"
    stored = gzip.compress(data)
    content = Content(HashingReader(io.BytesIO(stored)), announced_gzip=False)
    assert content.compressed
    assert content.head == data
    assert content.stream.read() == data
    drain(content.raw)
    assert content.raw.sha256 == hashlib.sha256(stored).hexdigest()


def test_content_strips_utf8_bom():
    content = Content(
        HashingReader(io.BytesIO(b"\xef\xbb\xbfId,NAME\n1,x\n")), announced_gzip=False
    )
    assert content.bom
    assert content.head.startswith(b"Id,")
    assert content.stream.readline() == b"Id,NAME\n"


@pytest.mark.parametrize(
    ("stored", "gz_name", "reason"),
    [
        (b"", False, report.EMPTY_FILE),
        (gzip.compress(b""), True, report.EMPTY_FILE),
        (b"a,b\n", True, report.NOT_GZIP),
    ],
)
def test_content_rejections(stored, gz_name, reason):
    with pytest.raises(FileRejected) as raised:
        Content(HashingReader(io.BytesIO(stored)), announced_gzip=gz_name)
    assert raised.value.reason == reason


def test_truncated_gzip_rejected_while_reading():
    stored = gzip.compress(b'{"a": 1}\n' * 50_000)[:-100]
    with pytest.raises(FileRejected) as raised, gzip_errors():
        content = Content(HashingReader(io.BytesIO(stored)), announced_gzip=True)
        for _ in iter_lines(content.stream, 1024):
            pass
    assert raised.value.reason == report.CORRUPT_GZIP


def test_iter_lines_skips_overlong_line():
    stream = io.BufferedReader(io.BytesIO(b"short\n" + b"x" * 5000 + b"\nafter\r\nlast"))
    lines = list(iter_lines(stream, max_bytes=100))
    assert lines == [(1, b"short\n"), (2, None), (3, b"after\r\n"), (4, b"last")]


def test_iter_lines_memory_independent_of_size():
    # 40 MB of lines; the reader must hold no more than a chunk and a line.
    stream = io.BufferedReader(GeneratedStream(b'{"resourceType": "Patient"}\n', 1_500_000))
    tracemalloc.start()
    count = sum(1 for _ in iter_lines(stream, 1024))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 1_500_000
    assert peak < 4 * 1024 * 1024


def test_iter_text_lines_reports_latin1_with_hint():
    stream = io.BufferedReader(io.BytesIO("ok\nJos\u00e9\n".encode("latin-1")))
    with pytest.raises(FileRejected) as raised:
        list(iter_text_lines(stream, 1024))
    assert raised.value.reason == report.INVALID_ENCODING
    assert raised.value.line == 2
    assert "0xE9" in raised.value.message
    assert "Latin-1" in raised.value.message


def test_iter_text_lines_rejects_overlong_line():
    stream = io.BufferedReader(io.BytesIO(b"a,b\n" + b"1" * 300 + b"\n"))
    with pytest.raises(FileRejected) as raised:
        list(iter_text_lines(stream, 100))
    assert raised.value.reason == report.RECORD_TOO_LARGE
    assert raised.value.line == 2


def test_csv_rows_with_quoted_newlines_keep_start_lines():
    data = b'Id,NOTE\n1,"two\nlines"\n\n2,plain\n'
    rows = list(iter_csv_rows(io.BufferedReader(io.BytesIO(data)), ",", 1024))
    assert rows == [(1, ["Id", "NOTE"]), (2, ["1", "two\nlines"]), (5, ["2", "plain"])]


def test_csv_rows_tab_delimited():
    data = b"Id\tNAME\n1\tA, B\n"
    rows = list(iter_csv_rows(io.BufferedReader(io.BytesIO(data)), "\t", 1024))
    assert rows[1] == (2, ["1", "A, B"])


def test_csv_syntax_error_rejects_file():
    data = b'Id,NOTE\n1,"unterminated\n'
    with pytest.raises(FileRejected) as raised:
        list(iter_csv_rows(io.BufferedReader(io.BytesIO(data)), ",", 1024))
    assert raised.value.reason == report.INVALID_CSV


def _json_values(data: bytes, max_bytes: int = 1 << 20):
    return list(iter_json_values(io.BufferedReader(io.BytesIO(data)), max_bytes))


def test_json_array_items_with_lines(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 7)
    data = b'[\n {"id": 1},\n {"id": 2, "note": "long enough to span chunks"},\n 12345\n]\n'
    assert _json_values(data) == [
        (2, {"id": 1}),
        (3, {"id": 2, "note": "long enough to span chunks"}),
        (4, 12345),
    ]


def test_json_concatenated_documents():
    data = b'{"id": 1}\n{\n  "id": 2\n}\n'
    assert _json_values(data) == [(1, {"id": 1}), (2, {"id": 2})]


def test_json_empty_array():
    assert _json_values(b" [ ] ") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[{"id": 1}', "not closed"),
        (b'[{"id": 1} {"id": 2}]', "expected ','"),
        (b'[{"id": 1}] trailing', "after the closing"),
        (b'{"id": 1, oops}', "invalid JSON"),
    ],
)
def test_json_syntax_errors_reject_file(data, message):
    with pytest.raises(FileRejected, match=message) as raised:
        _json_values(data)
    assert raised.value.reason == report.INVALID_JSON_DOCUMENT


def test_json_syntax_error_found_without_reading_whole_file():
    data = b'[{"id": 1}, {bad}, ' + b'{"id": 2}, ' * 200_000 + b"]"
    with pytest.raises(FileRejected) as raised:
        _json_values(data, max_bytes=64)
    assert raised.value.reason == report.INVALID_JSON_DOCUMENT


def test_json_value_over_limit_rejected(monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_BYTES", 16)
    data = b'[{"note": "' + b"a" * 500 + b'"}]'
    with pytest.raises(FileRejected) as raised:
        _json_values(data, max_bytes=100)
    assert raised.value.reason == report.RECORD_TOO_LARGE


def test_json_invalid_utf8_rejected():
    with pytest.raises(FileRejected) as raised:
        _json_values(b'[{"name": "Jos\xe9"}]')
    assert raised.value.reason == report.INVALID_ENCODING


# Lines where msgspec and json differ or may differ: loads_line must give
# json's result (or raise ValueError like json does).
JSON_EDGE_LINES = [
    b'{"a": 18446744073709551616}',
    b'{"a": -9223372036854775809}',
    b'{"a": [1, 123456789012345678901234567890]}',
    b'{"a":18446744073709551615}',
    b'{"a": 9223372036854775807}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',
    b'{"a": 1e400}',
    b'{"a": "\\ud800"}',
    b'{"a": "\\ud83d\\ude00"}',
    b'{"a": 1, "b": 2, "a": 3}',
    b'{"a": -0, "b": -0.0, "c": 0.1, "d": 1E5, "e": 5e-324}',
    b'{"a": "Person seed: 6608123172186290765"}',
    b'{"a": 12345678901234567890.5}',
    b"null",
    b' {"a": 1}\r\n',
    b"12345678901234567890123",
    b'{"\\u0000": 1, "\\u00e9": "\\u00e9"}',
    b'{"a": "\xef\xbf\xbe \x7f"}',
]


@pytest.mark.parametrize("line", JSON_EDGE_LINES)
def test_loads_line_matches_json(line):
    expected = json.loads(line.decode("utf-8"))
    parsed = readers.loads_line(line, 1)
    assert repr(parsed) == repr(expected)
    if isinstance(expected, dict):
        assert list(parsed) == list(expected)


@pytest.mark.parametrize(
    "line",
    [b'{"a": 1,}', b"{broken", b"", b"\n", b"\xef\xbb\xbf{}", b'{"a": 01}', b'{"a": "x\x01"}'],
)
def test_loads_line_invalid_json_raises_json_error(line):
    with pytest.raises(ValueError) as raised:
        readers.loads_line(line, 1)
    with pytest.raises(ValueError) as expected:
        json.loads(line.decode("utf-8"))
    assert str(raised.value) == str(expected.value)


def test_loads_line_deep_nesting_matches_json():
    line = b"[" * 500 + b"]" * 500
    assert readers.loads_line(line, 1) == json.loads(line)


def test_loads_line_nesting_too_deep_is_invalid_json():
    with pytest.raises(ValueError, match="nested too deeply"):
        readers.loads_line(b"[" * 100_000 + b"]" * 100_000, 1)


def test_loads_line_invalid_utf8_rejects_file():
    with pytest.raises(FileRejected) as raised:
        readers.loads_line(b'{"name": "Jos\xe9"}', 7)
    assert raised.value.reason == report.INVALID_ENCODING
    assert "line 7, byte 14" in raised.value.message
    assert "Latin-1" in raised.value.message


def test_loads_line_random_floats_match_json():
    generator = random.Random(5)
    for _ in range(20_000):
        value = struct.unpack("<d", generator.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isnan(value) or math.isinf(value):
            continue
        for text in (repr(value), f"{value:.17g}", f"{value:.25g}", f"{value:.3e}"):
            line = b'{"v": ' + text.encode() + b"}"
            expected = json.loads(line)
            parsed = readers.loads_line(line, 1)
            assert repr(parsed) == repr(expected), text
