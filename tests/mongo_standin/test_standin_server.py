"""Stand-in-only behaviour: errors for what it does not implement, protocol details.

Skipped when TEST_MONGO_URI points the suite at a real MongoDB.
"""

import os
import socket
import struct

import bson
import pytest
from bson.int64 import Int64
from pymongo import MongoClient
from pymongo.errors import CursorNotFound, OperationFailure

from include.mongo_standin.server import start_standin
from include.mongo_standin.wire import OP_QUERY, OP_REPLY

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_MONGO_URI")), reason="tests the stand-in itself, not a real MongoDB"
)


@pytest.fixture
def standin():
    server = start_standin(host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(standin):
    mongo = MongoClient(standin.uri, serverSelectionTimeoutMS=5_000)
    try:
        yield mongo
    finally:
        mongo.close()


def test_unsupported_command_raises_command_not_found(mongo_db):
    with pytest.raises(OperationFailure) as raised:
        mongo_db.command("fsync")

    assert raised.value.code == 59
    assert raised.value.details["codeName"] == "CommandNotFound"
    assert raised.value.details["errmsg"] == "no such command: 'fsync'"


def test_unknown_field_is_rejected(mongo_db):
    with pytest.raises(OperationFailure) as raised:
        mongo_db.command({"find": "items", "filter": {}, "frobnicate": True})

    assert raised.value.code == 40415
    assert "find.frobnicate" in raised.value.details["errmsg"]


def test_transaction_is_rejected(mongo_client, mongo_db):
    with pytest.raises(OperationFailure) as raised:
        with mongo_client.start_session() as session:
            with session.start_transaction():
                mongo_db.items.insert_one({"a": 1}, session=session)

    assert raised.value.code == 20
    assert "transactions" in raised.value.details["errmsg"]
    assert mongo_db.items.count_documents({}) == 0


def test_session_without_transaction_works(mongo_client, mongo_db):
    with mongo_client.start_session() as session:
        mongo_db.items.insert_one({"_id": 1}, session=session)
        found = mongo_db.items.find_one({"_id": 1}, session=session)

    assert found == {"_id": 1}


def test_array_filters_are_rejected_as_not_implemented(mongo_db):
    mongo_db.items.insert_one({"_id": 1, "grades": [1, 5]})

    with pytest.raises(OperationFailure) as raised:
        mongo_db.items.update_one(
            {"_id": 1}, {"$set": {"grades.$[g]": 0}}, array_filters=[{"g": {"$gt": 2}}]
        )

    assert raised.value.code == 238
    assert mongo_db.items.find_one({"_id": 1})["grades"] == [1, 5]


def test_collation_is_rejected_as_not_implemented(mongo_db):
    with pytest.raises(OperationFailure) as raised:
        list(mongo_db.items.find({}, collation={"locale": "en", "strength": 2}))

    assert raised.value.code == 238


def test_text_index_is_rejected_as_not_implemented(mongo_db):
    with pytest.raises(OperationFailure) as raised:
        mongo_db.items.create_index([("body", "text")])

    assert raised.value.code == 238


def test_hello_advertises_standalone_wire_version(mongo_client):
    reply = mongo_client.admin.command("hello")

    assert reply["isWritablePrimary"] is True
    assert reply["maxWireVersion"] == 21
    assert "setName" not in reply
    assert "topologyVersion" not in reply


def test_cursor_id_is_positive_int64(mongo_db):
    mongo_db.items.insert_many([{"n": n} for n in range(3)])

    reply = mongo_db.command("find", "items", batchSize=1)

    cursor_id = reply["cursor"]["id"]
    assert isinstance(cursor_id, Int64)
    assert cursor_id > 0
    mongo_db.command("killCursors", "items", cursors=[cursor_id])


def test_get_more_on_other_collection_is_not_found(mongo_db):
    mongo_db.items.insert_many([{"n": n} for n in range(3)])
    cursor_id = mongo_db.command("find", "items", batchSize=1)["cursor"]["id"]

    with pytest.raises(CursorNotFound):
        mongo_db.command("getMore", cursor_id, collection="other")


def test_idle_cursor_is_closed(standin, client):
    client.t.items.insert_many([{"n": n} for n in range(3)])
    cursor_id = client.t.command("find", "items", batchSize=1)["cursor"]["id"]

    assert standin.cursors.remove_idle(max_idle_seconds=0) == 1

    with pytest.raises(CursorNotFound):
        client.t.command("getMore", cursor_id, collection="items")


def test_deleting_every_document_keeps_collection(mongo_db):
    mongo_db.items.insert_one({"_id": 1})

    mongo_db.items.delete_one({"_id": 1})

    assert mongo_db.list_collection_names() == ["items"]


def _op_query(request_id, full_name, command):
    payload = struct.pack("<i", 0) + full_name.encode() + b"\x00"
    payload += struct.pack("<ii", 0, -1) + bson.encode(command)
    return struct.pack("<iiii", 16 + len(payload), request_id, 0, OP_QUERY) + payload


def _read_op_reply(sock):
    header = b""
    while len(header) < 16:
        header += sock.recv(16 - len(header))
    length, _request_id, response_to, op_code = struct.unpack("<iiii", header)
    body = b""
    while len(body) < length - 16:
        body += sock.recv(length - 16 - len(body))
    _flags, _cursor_id, _start, count = struct.unpack_from("<iqii", body)
    return response_to, op_code, count, bson.decode(body[20:])


def test_legacy_op_query_handshake(standin):
    with socket.create_connection((standin.host, standin.port), timeout=5) as sock:
        sock.sendall(_op_query(7, "admin.$cmd", {"isMaster": 1}))
        response_to, op_code, count, reply = _read_op_reply(sock)

    assert response_to == 7
    assert op_code == OP_REPLY
    assert count == 1
    assert reply["ismaster"] is True
    assert reply["ok"] == 1.0


def test_malformed_message_closes_only_that_connection(standin, client):
    with socket.create_connection((standin.host, standin.port), timeout=5) as sock:
        sock.sendall(struct.pack("<iiii", 16, 1, 0, 9999))
        assert sock.recv(16) == b""

    assert client.admin.command("ping")["ok"] == 1.0


def test_truncated_op_msg_closes_only_that_connection(standin, client):
    with socket.create_connection((standin.host, standin.port), timeout=5) as sock:
        sock.sendall(struct.pack("<iiiiB", 17, 1, 0, 2013, 0))
        assert sock.recv(16) == b""

    assert client.admin.command("ping")["ok"] == 1.0


def test_non_loopback_host_is_rejected():
    with pytest.raises(ValueError, match="not a loopback address"):
        start_standin(host="0.0.0.0", port=0)  # noqa: S104 - the bind must be rejected
