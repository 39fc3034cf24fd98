"""Indexes, collections, databases and bulk writes through pymongo.

Like test_crud, these tests rely only on documented server behaviour and
also pass against a real MongoDB (TEST_MONGO_URI).
"""

import uuid

import pytest
from pymongo import ASCENDING, DeleteOne, InsertOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure


def test_create_index_unique_rejects_duplicate(mongo_db):
    mongo_db.users.create_index("email", unique=True)
    mongo_db.users.insert_one({"email": "a@example.com"})

    with pytest.raises(DuplicateKeyError) as raised:
        mongo_db.users.insert_one({"email": "a@example.com"})

    assert raised.value.code == 11000
    assert "index: email_1" in str(raised.value)
    assert raised.value.details["keyValue"] == {"email": "a@example.com"}
    assert mongo_db.users.count_documents({}) == 1


def test_duplicate_id_raises_duplicate_key(mongo_db):
    mongo_db.users.insert_one({"_id": "u1"})

    with pytest.raises(DuplicateKeyError) as raised:
        mongo_db.users.insert_one({"_id": "u1"})

    assert "index: _id_" in str(raised.value)


def test_update_into_duplicate_raises_duplicate_key(mongo_db):
    mongo_db.users.create_index("email", unique=True)
    mongo_db.users.insert_many([{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}])

    with pytest.raises(DuplicateKeyError):
        mongo_db.users.update_one({"_id": 2}, {"$set": {"email": "a"}})

    assert mongo_db.users.find_one({"_id": 2})["email"] == "b"


def test_find_one_and_update_duplicate_raises(mongo_db):
    mongo_db.users.create_index("email", unique=True)
    mongo_db.users.insert_many([{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}])

    with pytest.raises(DuplicateKeyError):
        mongo_db.users.find_one_and_update({"_id": 2}, {"$set": {"email": "a"}})


def test_create_unique_index_over_duplicates_fails(mongo_db):
    mongo_db.users.insert_many([{"email": "a"}, {"email": "a"}])

    with pytest.raises(OperationFailure) as raised:
        mongo_db.users.create_index("email", unique=True)

    assert raised.value.code == 11000


def test_partial_unique_index_ignores_other_documents(mongo_db):
    mongo_db.links.create_index(
        "token", unique=True, partialFilterExpression={"state": "active"}
    )
    mongo_db.links.insert_many([
        {"token": "t1", "state": "used"},
        {"token": "t1", "state": "used"},
        {"token": "t1", "state": "active"},
    ])

    with pytest.raises(DuplicateKeyError):
        mongo_db.links.insert_one({"token": "t1", "state": "active"})


def test_list_indexes_shows_options(mongo_db):
    mongo_db.sessions.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
    mongo_db.sessions.create_index(
        [("client_id", ASCENDING), ("at", ASCENDING)], name="client_id_at", unique=True
    )

    indexes = {index["name"]: index for index in mongo_db.sessions.list_indexes()}

    assert set(indexes) == {"_id_", "expires_at_1", "client_id_at"}
    assert dict(indexes["expires_at_1"]["key"]) == {"expires_at": 1}
    assert indexes["expires_at_1"]["expireAfterSeconds"] == 0
    assert list(indexes["client_id_at"]["key"].items()) == [("client_id", 1), ("at", 1)]
    assert indexes["client_id_at"]["unique"] is True


def test_create_index_twice_is_a_no_op(mongo_db):
    first = mongo_db.users.create_index("email", unique=True)
    second = mongo_db.users.create_index("email", unique=True)

    assert first == second == "email_1"
    assert len(list(mongo_db.users.list_indexes())) == 2


def test_create_index_same_name_other_options_fails(mongo_db):
    mongo_db.users.create_index("email", name="email")

    with pytest.raises(OperationFailure) as raised:
        mongo_db.users.create_index("email", name="email", unique=True)

    assert raised.value.code in (85, 86)


def test_list_indexes_missing_collection_is_empty(mongo_db):
    assert list(mongo_db.nothing_here.list_indexes()) == []


def test_drop_index_removes_it(mongo_db):
    mongo_db.users.create_index("email", unique=True)

    mongo_db.users.drop_index("email_1")

    assert [index["name"] for index in mongo_db.users.list_indexes()] == ["_id_"]
    mongo_db.users.insert_many([{"email": "a"}, {"email": "a"}])


def test_drop_indexes_keeps_id_index(mongo_db):
    mongo_db.sessions.create_index("expires_at", expireAfterSeconds=0)
    mongo_db.sessions.create_index("email", unique=True)

    mongo_db.sessions.drop_indexes()

    assert [index["name"] for index in mongo_db.sessions.list_indexes()] == ["_id_"]


def test_drop_index_by_key_document(mongo_db):
    mongo_db.users.create_index([("a", ASCENDING), ("b", ASCENDING)])

    mongo_db.command("dropIndexes", "users", index={"a": 1, "b": 1})

    assert [index["name"] for index in mongo_db.users.list_indexes()] == ["_id_"]


def test_drop_unknown_index_fails(mongo_db):
    mongo_db.users.insert_one({})

    with pytest.raises(OperationFailure) as raised:
        mongo_db.users.drop_index("nope_1")

    assert raised.value.code == 27


def test_list_collection_names_with_filter(mongo_db):
    mongo_db.alpha.insert_one({})
    mongo_db.beta.insert_one({})
    mongo_db.create_collection("gamma")

    assert sorted(mongo_db.list_collection_names()) == ["alpha", "beta", "gamma"]
    assert mongo_db.list_collection_names(filter={"name": "beta"}) == ["beta"]


def test_drop_collection_removes_documents_and_indexes(mongo_db):
    mongo_db.users.create_index("email", unique=True)
    mongo_db.users.insert_one({"email": "a"})

    mongo_db.users.drop()

    assert "users" not in mongo_db.list_collection_names()
    assert mongo_db.users.count_documents({}) == 0
    mongo_db.users.insert_many([{"email": "a"}, {"email": "a"}])


def test_drop_missing_collection_succeeds(mongo_db):
    mongo_db.never_created.drop()

    assert "never_created" not in mongo_db.list_collection_names()


def test_drop_database_removes_it(mongo_client):
    name = f"test_drop_{uuid.uuid4().hex[:12]}"
    mongo_client[name].things.insert_one({"a": 1})
    assert name in mongo_client.list_database_names()

    mongo_client.drop_database(name)

    assert name not in mongo_client.list_database_names()
    assert mongo_client[name].list_collection_names() == []


def test_insert_many_unordered_reports_duplicates(mongo_db):
    mongo_db.users.create_index("email", unique=True)
    documents = [
        {"email": "a"},
        {"email": "b"},
        {"email": "a"},
        {"email": "c"},
        {"email": "b"},
    ]

    with pytest.raises(BulkWriteError) as raised:
        mongo_db.users.insert_many(documents, ordered=False)

    details = raised.value.details
    assert details["nInserted"] == 3
    assert [error["index"] for error in details["writeErrors"]] == [2, 4]
    assert {error["code"] for error in details["writeErrors"]} == {11000}
    assert all("E11000" in error["errmsg"] for error in details["writeErrors"])
    assert sorted(mongo_db.users.distinct("email")) == ["a", "b", "c"]


def test_insert_many_ordered_stops_at_first_error(mongo_db):
    documents = [{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}]

    with pytest.raises(BulkWriteError) as raised:
        mongo_db.items.insert_many(documents, ordered=True)

    details = raised.value.details
    assert details["nInserted"] == 2
    assert [error["index"] for error in details["writeErrors"]] == [2]
    assert sorted(mongo_db.items.distinct("_id")) == [1, 2]


def test_bulk_write_unordered_mixed_operations(mongo_db):
    mongo_db.items.insert_many([{"_id": 1, "n": 0}, {"_id": 2, "n": 0}])
    requests = [
        InsertOne({"_id": 3}),
        InsertOne({"_id": 1}),
        UpdateOne({"_id": 2}, {"$inc": {"n": 5}}),
        UpdateOne({"_id": 9}, {"$set": {"n": 9}}, upsert=True),
        InsertOne({"_id": 4}),
        DeleteOne({"_id": 3}),
    ]

    with pytest.raises(BulkWriteError) as raised:
        mongo_db.items.bulk_write(requests, ordered=False)

    details = raised.value.details
    assert details["nInserted"] == 2
    assert details["nMatched"] == 1
    assert details["nModified"] == 1
    assert details["nUpserted"] == 1
    assert details["nRemoved"] == 1
    assert len(details["writeErrors"]) == 1
    assert details["writeErrors"][0]["index"] == 1
    assert details["writeErrors"][0]["code"] == 11000
    assert sorted(mongo_db.items.distinct("_id")) == [1, 2, 4, 9]
    assert mongo_db.items.find_one({"_id": 2})["n"] == 5


def test_bulk_write_without_errors(mongo_db):
    result = mongo_db.items.bulk_write([
        InsertOne({"_id": 1, "n": 1}),
        UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
        DeleteOne({"_id": 404}),
    ])

    assert result.inserted_count == 1
    assert result.modified_count == 1
    assert result.deleted_count == 0
    assert mongo_db.items.find_one({"_id": 1})["n"] == 2


def test_create_zero_ttl_index_twice(mongo_db):
    first = mongo_db.sessions.create_index("expires_at", expireAfterSeconds=0)
    second = mongo_db.sessions.create_index("expires_at", expireAfterSeconds=0)

    assert first == second
    indexes = {index["name"]: index for index in mongo_db.sessions.list_indexes()}
    assert indexes[first]["expireAfterSeconds"] == 0
