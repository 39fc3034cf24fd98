"""Atomic single-document operations under concurrent clients.

Runs against the stand-in or, with TEST_MONGO_URI, a real MongoDB.
"""

import threading

from pymongo import MongoClient, ReturnDocument

THREADS = 50


def run_in_threads(target, count=THREADS):
    """Run ``target(index)`` in ``count`` threads released together and return the results."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def worker(index):
        try:
            barrier.wait(timeout=10)
            results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    return results


def test_state_claim_has_exactly_one_winner(mongo_uri, mongo_db):
    mongo_db.links.insert_one({"_id": "link-1", "state": "unread", "reads": 0})
    client = MongoClient(mongo_uri, maxPoolSize=THREADS)
    links = client[mongo_db.name].links

    def claim(index):
        return links.find_one_and_update(
            {"_id": "link-1", "state": "unread"},
            {"$set": {"state": "read", "reader": index}, "$inc": {"reads": 1}},
            return_document=ReturnDocument.AFTER,
        )

    try:
        results = run_in_threads(claim)
    finally:
        client.close()

    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    stored = mongo_db.links.find_one({"_id": "link-1"})
    assert stored["state"] == "read"
    assert stored["reads"] == 1
    assert stored["reader"] == winners[0]["reader"]


def test_concurrent_increments_are_not_lost(mongo_uri, mongo_db):
    mongo_db.counters.insert_one({"_id": "c", "n": 0})
    client = MongoClient(mongo_uri, maxPoolSize=THREADS)
    counters = client[mongo_db.name].counters

    def increment(_index):
        for _ in range(10):
            counters.update_one({"_id": "c"}, {"$inc": {"n": 1}})

    try:
        run_in_threads(increment)
    finally:
        client.close()

    assert mongo_db.counters.find_one({"_id": "c"})["n"] == THREADS * 10
