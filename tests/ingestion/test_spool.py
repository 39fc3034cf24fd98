"""Spooled batches of upsert statements."""

import bson

from include.ingestion.spool import BatchWriter, Spool


def _statement(key: str, value: int, pad: str = "") -> bytes:
    return bson.encode({"q": {"_id": key}, "u": {"_id": key, "value": value, "pad": pad}})


def _keys(batch) -> list[str]:
    return [bson.decode(statement)["q"]["_id"] for statement in batch.statements]


def test_batches_in_order_with_lines():
    with Spool(batch_size=2) as spool:
        for number in range(5):
            spool.add(f"k{number}", number + 1, _statement(f"k{number}", number))
        batches = list(spool.read_batches())
    assert [_keys(batch) for batch in batches] == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert [batch.lines for batch in batches] == [[1, 2], [3, 4], [5]]
    assert bson.decode(batches[2].statements[0])["u"]["value"] == 4
    assert spool.documents == 5
    assert spool.batches == 3


def test_repeated_key_in_batch_keeps_later_line():
    with Spool(batch_size=10) as spool:
        spool.add("k", 1, _statement("k", 1, pad="first"))
        spool.add("other", 2, _statement("other", 2))
        spool.add("k", 3, _statement("k", 3))
        (batch,) = list(spool.read_batches())
    assert _keys(batch) == ["k", "other"]
    assert batch.lines == [3, 2]
    assert bson.decode(batch.statements[0])["u"]["value"] == 3
    assert spool.duplicates == 1


def test_batch_flushed_before_byte_limit():
    big = _statement("x", 0, pad="a" * 1000)
    with Spool(batch_size=1000, max_batch_bytes=3 * len(big)) as spool:
        for number in range(7):
            spool.add(f"k{number}", number, big)
        sizes = [len(batch.statements) for batch in spool.read_batches()]
    assert sizes == [3, 3, 1]


def test_repeated_key_respects_byte_limit():
    big = _statement("x", 0, pad="a" * 1000)
    with Spool(batch_size=1000, max_batch_bytes=3 * len(big)) as spool:
        for line in range(10):
            spool.add("same", line, big)
        batches = list(spool.read_batches())
    assert [batch.lines for batch in batches] == [[2], [5], [8], [9]]
    assert spool.duplicates == 6


def test_statement_above_byte_limit_goes_alone():
    small, big = _statement("s", 0), _statement("b", 0, pad="a" * 5000)
    with Spool(batch_size=1000, max_batch_bytes=1000) as spool:
        spool.add("s1", 1, small)
        spool.add("b", 2, big)
        spool.add("s2", 3, small)
        sizes = [len(batch.statements) for batch in spool.read_batches()]
    assert sizes == [1, 1, 1]


def test_empty_spool_has_no_batches():
    with Spool(batch_size=10) as spool:
        assert list(spool.read_batches()) == []


def test_worker_file_batches_keep_order():
    with Spool(batch_size=2) as spool:
        spool.add("own", 1, _statement("own", 1))
        spool.flush()
        writers = []
        for _ in range(2):
            number, file = spool.new_file()
            writers.append((number, BatchWriter(file, 2, spool.max_batch_bytes)))
        for key, line, (number, writer) in [("a", 2, writers[1]), ("b", 3, writers[0])]:
            writer.add(key, line, _statement(key, line))
            writer.add(key, line + 10, _statement(key, line + 10))
            writer.flush()
            spool.add_written(number, writer.batches, 1, writer.duplicates)
            writer.batches = []
        batches = list(spool.read_batches())
    assert [_keys(batch) for batch in batches] == [["own"], ["a"], ["b"]]
    assert [batch.lines for batch in batches] == [[1], [12], [13]]
    assert (spool.documents, spool.duplicates, spool.batches) == (3, 2, 3)
