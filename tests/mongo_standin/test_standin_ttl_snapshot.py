"""Stand-in-only: the TTL monitor and snapshots.

Skipped when TEST_MONGO_URI points the suite at a real MongoDB.
"""

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from bson import Binary, Decimal128, ObjectId
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError

from include.mongo_standin.server import start_standin
from include.mongo_standin.snapshot import SnapshotError, load_snapshot
from include.mongo_standin.storage import Storage

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_MONGO_URI")), reason="tests the stand-in itself, not a real MongoDB"
)


def connect(server):
    return MongoClient(server.uri, serverSelectionTimeoutMS=5_000, tz_aware=True)


def seed_expiring(server):
    """Insert one expired, one live and one non-date document under a TTL index."""
    now = datetime.now(UTC)
    with connect(server) as client:
        links = client.exchange.links
        links.create_index("expires_at", expireAfterSeconds=0)
        links.insert_many([
            {"_id": "expired", "expires_at": now - timedelta(minutes=5)},
            {"_id": "live", "expires_at": now + timedelta(hours=1)},
            {"_id": "no-date", "expires_at": "tomorrow"},
        ])


def stored_ids(server):
    """Read ids from the server's storage directly, without sending a request."""
    with server.storage.lock:
        return sorted(doc["_id"] for doc in server.storage.collection("exchange", "links").find())


def test_ttl_monitor_removes_expired_without_requests():
    server = start_standin(port=0, ttl_interval_seconds=0.2)
    try:
        seed_expiring(server)

        deadline = time.monotonic() + 5
        while "expired" in stored_ids(server) and time.monotonic() < deadline:
            time.sleep(0.05)

        assert stored_ids(server) == ["live", "no-date"]
    finally:
        server.stop()


def test_expired_document_stays_until_monitor_pass():
    server = start_standin(port=0, ttl_interval_seconds=3600)
    try:
        seed_expiring(server)
        with connect(server) as client:
            assert client.exchange.links.count_documents({}) == 3

            assert server.storage.remove_expired_documents() == 1

            assert sorted(client.exchange.links.distinct("_id")) == ["live", "no-date"]
    finally:
        server.stop()


def test_dropped_ttl_index_stops_expiry():
    server = start_standin(port=0, ttl_interval_seconds=3600)
    try:
        seed_expiring(server)
        with connect(server) as client:
            client.exchange.links.drop_indexes()

        assert server.storage.remove_expired_documents() == 0
        assert stored_ids(server) == ["expired", "live", "no-date"]
    finally:
        server.stop()


def sample_document():
    return {
        "_id": ObjectId(),
        "at": datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=UTC),
        "blob": Binary(b"\x00\x01\xff", 0),
        "uuid": Binary.from_uuid(uuid.UUID("12345678-1234-5678-1234-567812345678")),
        "amount": Decimal128(Decimal("12.50")),
        "nested": {"list": [1, "two", {"three": 3.0}], "none": None},
    }


def test_snapshot_survives_restart(tmp_path):
    path = tmp_path / "mongo.bson"
    original = sample_document()
    server = start_standin(port=0, snapshot_path=path)
    with connect(server) as client:
        client.exchange.records.insert_one(dict(original))
        client.exchange.records.create_index("at", unique=True)
        client.exchange.sessions.create_index("expires_at", expireAfterSeconds=60)
        client.exchange.create_collection("empty")
    server.stop()

    assert path.exists()
    server = start_standin(port=0, snapshot_path=path)
    try:
        with connect(server) as client:
            restored = client.exchange.records.find_one({"_id": original["_id"]})
            indexes = {index["name"]: index for index in client.exchange.sessions.list_indexes()}
            names = sorted(client.exchange.list_collection_names())
            with pytest.raises(DuplicateKeyError):
                client.exchange.records.insert_one({"at": original["at"]})
    finally:
        server.stop()

    # pymongo decodes binary subtype 0 as bytes.
    assert restored == dict(original, blob=b"\x00\x01\xff")
    assert restored["at"].tzinfo is not None
    assert indexes["expires_at_1"]["expireAfterSeconds"] == 60
    assert names == ["empty", "records", "sessions"]


def test_snapshot_saved_periodically_while_running(tmp_path):
    path = tmp_path / "mongo.bson"
    server = start_standin(port=0, snapshot_path=path, snapshot_interval_seconds=0.2)
    try:
        with connect(server) as client:
            client.exchange.items.insert_one({"_id": "saved"})

        deadline = time.monotonic() + 5
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        storage = Storage()
        assert load_snapshot(storage, path) == 1
        assert storage.collection("exchange", "items").find_one() == {"_id": "saved"}
    finally:
        server.stop()


def test_snapshot_write_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "mongo.bson"
    server = start_standin(port=0, snapshot_path=path)
    with connect(server) as client:
        client.exchange.items.insert_one({"_id": 1})
    server.stop()

    assert [entry.name for entry in tmp_path.iterdir()] == ["mongo.bson"]


def test_missing_snapshot_starts_empty(tmp_path):
    server = start_standin(port=0, snapshot_path=tmp_path / "new.bson")
    try:
        with connect(server) as client:
            assert client.list_database_names() == []
    finally:
        server.stop()


def test_corrupt_snapshot_is_rejected(tmp_path):
    path = tmp_path / "mongo.bson"
    path.write_bytes(b"this is not BSON")

    with pytest.raises(SnapshotError, match="mongo.bson"):
        start_standin(port=0, snapshot_path=path)


def test_truncated_snapshot_is_rejected(tmp_path):
    path = tmp_path / "mongo.bson"
    server = start_standin(port=0, snapshot_path=path)
    with connect(server) as client:
        client.exchange.items.insert_many([{"n": n} for n in range(10)])
    server.stop()
    path.write_bytes(path.read_bytes()[:-40])

    with pytest.raises(SnapshotError):
        start_standin(port=0, snapshot_path=path)
