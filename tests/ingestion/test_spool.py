"""Spooled BSON batches."""

import bson

from include.ingestion.spool import Spool


def _doc(key: str, value: int) -> bytes:
    return bson.encode({"_id": key, "value": value})


def test_batches_in_order_with_metadata():
    with Spool(batch_size=2) as spool:
        for number in range(5):
            spool.add(f"k{number}", f"h{number}", number + 1, _doc(f"k{number}", number))
        batches = list(spool.read_batches())
    assert [batch.ids for batch in batches] == [["k0", "k1"], ["k2", "k3"], ["k4"]]
    assert batches[1].hashes == ["h2", "h3"]
    assert batches[1].lines == [3, 4]
    assert bson.decode(batches[2].documents[0]) == {"_id": "k4", "value": 4}
    assert spool.documents == 5
    assert spool.batches == 3


def test_repeated_key_in_batch_keeps_later_line():
    with Spool(batch_size=10) as spool:
        spool.add("k", "h1", 1, _doc("k", 1))
        spool.add("other", "h2", 2, _doc("other", 2))
        spool.add("k", "h3", 3, _doc("k", 3))
        (batch,) = list(spool.read_batches())
    assert batch.ids == ["k", "other"]
    assert batch.hashes == ["h3", "h2"]
    assert batch.lines == [3, 2]
    assert bson.decode(batch.documents[0])["value"] == 3
    assert spool.duplicates == 1


def test_batch_flushed_at_byte_limit():
    big = bson.encode({"_id": "x", "pad": "a" * 1000})
    with Spool(batch_size=1000, max_batch_bytes=2500) as spool:
        for number in range(7):
            spool.add(f"k{number}", "h", number, big)
        sizes = [len(batch.ids) for batch in spool.read_batches()]
    assert sizes == [3, 3, 1]


def test_empty_spool_has_no_batches():
    with Spool(batch_size=10) as spool:
        assert list(spool.read_batches()) == []
