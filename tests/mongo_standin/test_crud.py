"""CRUD commands through pymongo.

These tests use only the ``mongo_db`` fixtures and documented server
behaviour, so they also pass against a real MongoDB (TEST_MONGO_URI).
"""

import time
from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.errors import CursorNotFound, OperationFailure
from pymongo.monitoring import CommandListener
from pymongo.write_concern import WriteConcern


class StartedCommands(CommandListener):
    """Record the names of started commands and the replies of succeeded ones."""

    def __init__(self):
        self.names = []
        self.succeeded_replies = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        self.succeeded_replies.append((event.command_name, event.reply))

    def failed(self, event):
        pass


@pytest.fixture
def listened_db(mongo_uri, mongo_db):
    """Return the test's database through a client that records commands, and the recorder."""
    listener = StartedCommands()
    client = MongoClient(mongo_uri, event_listeners=[listener], tz_aware=True)
    try:
        yield client[mongo_db.name], listener
    finally:
        client.close()


def seed_people(db):
    db.people.insert_many([
        {"name": "ada", "age": 36, "team": "core"},
        {"name": "bob", "age": 25, "team": "ops"},
        {"name": "cyd", "age": 41, "team": "core"},
        {"name": "dee", "age": 29, "team": "ops"},
        {"name": "eve", "age": 33, "team": "core"},
    ])


def test_insert_one_then_find_one(mongo_db):
    at = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)

    result = mongo_db.items.insert_one({"name": "x", "at": at, "tags": ["a", "b"]})

    assert isinstance(result.inserted_id, ObjectId)
    stored = mongo_db.items.find_one({"_id": result.inserted_id})
    assert stored["name"] == "x"
    assert stored["at"] == at
    assert stored["tags"] == ["a", "b"]


def test_find_by_id_applies_other_conditions(mongo_db):
    mongo_db.links.insert_one({"_id": "l1", "state": "unread"})

    assert mongo_db.links.find_one({"_id": "l1", "state": "read"}) is None
    assert mongo_db.links.find_one({"_id": "l1", "state": "unread"})["_id"] == "l1"
    assert mongo_db.links.find_one({"_id": "missing"}) is None


def test_find_numeric_id_matches_equal_numbers(mongo_db):
    mongo_db.items.insert_one({"_id": 1.0, "kind": "double"})

    assert mongo_db.items.find_one({"_id": 1})["kind"] == "double"


def test_find_filter_projection_sort_skip_limit(mongo_db):
    seed_people(mongo_db)

    cursor = (
        mongo_db.people.find({"team": "core"}, {"_id": 0, "name": 1})
        .sort("age", DESCENDING)
        .skip(1)
        .limit(2)
    )

    assert list(cursor) == [{"name": "ada"}, {"name": "eve"}]


def test_find_exclusion_projection_and_compound_sort(mongo_db):
    seed_people(mongo_db)

    cursor = mongo_db.people.find({}, {"_id": 0, "age": 0}).sort(
        [("team", ASCENDING), ("name", DESCENDING)]
    )

    assert list(cursor) == [
        {"name": "eve", "team": "core"},
        {"name": "cyd", "team": "core"},
        {"name": "ada", "team": "core"},
        {"name": "dee", "team": "ops"},
        {"name": "bob", "team": "ops"},
    ]


def test_find_operators_in_filter(mongo_db):
    seed_people(mongo_db)

    names = {doc["name"] for doc in mongo_db.people.find(
        {"$or": [{"age": {"$lt": 27}}, {"name": {"$in": ["cyd", "zed"]}}]}
    )}

    assert names == {"bob", "cyd"}


def test_find_batch_size_uses_get_more(listened_db):
    db, listener = listened_db
    db.numbers.insert_many([{"n": n} for n in range(1500)])

    values = [doc["n"] for doc in db.numbers.find({}, {"_id": 0}).sort("n").batch_size(100)]

    assert values == list(range(1500))
    assert listener.names.count("getMore") == 14


def test_cursor_close_kills_server_cursor(listened_db):
    db, listener = listened_db
    db.numbers.insert_many([{"n": n} for n in range(50)])
    cursor = db.numbers.find().batch_size(10)
    next(cursor)
    cursor_id = cursor.cursor_id

    cursor.close()

    kills = [reply for name, reply in listener.succeeded_replies if name == "killCursors"]
    assert len(kills) == 1
    assert kills[0]["cursorsKilled"] == [cursor_id]
    with pytest.raises(CursorNotFound):
        db.command("getMore", cursor_id, collection="numbers")


def test_get_more_unknown_cursor_raises_cursor_not_found(mongo_db):
    mongo_db.numbers.insert_one({"n": 1})

    with pytest.raises(CursorNotFound) as raised:
        mongo_db.command("getMore", 1234567890123, collection="numbers")

    assert raised.value.code == 43


def test_exhausted_cursor_has_id_zero(mongo_db):
    mongo_db.numbers.insert_many([{"n": n} for n in range(3)])

    reply = mongo_db.command("find", "numbers", batchSize=10)

    assert reply["cursor"]["id"] == 0
    assert len(reply["cursor"]["firstBatch"]) == 3


def test_update_one_upsert_inserts_then_updates(mongo_db):
    first = mongo_db.counters.update_one({"_id": "hits"}, {"$inc": {"n": 1}}, upsert=True)
    second = mongo_db.counters.update_one({"_id": "hits"}, {"$inc": {"n": 1}}, upsert=True)

    assert first.upserted_id == "hits"
    assert first.matched_count == 0
    assert second.upserted_id is None
    assert second.matched_count == 1
    assert second.modified_count == 1
    assert mongo_db.counters.find_one({"_id": "hits"})["n"] == 2


def test_update_set_on_insert_only_on_insert(mongo_db):
    for value in ("first", "second"):
        mongo_db.clients.update_one(
            {"_id": "acme"},
            {"$set": {"last": value}, "$setOnInsert": {"created": value}},
            upsert=True,
        )

    assert mongo_db.clients.find_one({"_id": "acme"}) == {
        "_id": "acme", "last": "second", "created": "first"
    }


def test_update_many_changes_every_match(mongo_db):
    seed_people(mongo_db)

    result = mongo_db.people.update_many({"team": "ops"}, {"$set": {"team": "platform"}})

    assert result.matched_count == 2
    assert result.modified_count == 2
    assert mongo_db.people.count_documents({"team": "platform"}) == 2
    assert mongo_db.people.count_documents({"team": "ops"}) == 0


def test_replace_one_replaces_whole_document(mongo_db):
    mongo_db.docs.insert_one({"_id": 1, "a": 1, "b": 2})

    result = mongo_db.docs.replace_one({"_id": 1}, {"c": 3})

    assert result.modified_count == 1
    assert mongo_db.docs.find_one({"_id": 1}) == {"_id": 1, "c": 3}


def test_update_unchanged_document_counts_no_modification(mongo_db):
    mongo_db.docs.insert_one({"_id": 1, "a": 1})

    result = mongo_db.docs.update_one({"_id": 1}, {"$set": {"a": 1}})

    assert result.matched_count == 1
    assert result.modified_count == 0


def test_delete_one_and_delete_many(mongo_db):
    seed_people(mongo_db)

    one = mongo_db.people.delete_one({"team": "core"})
    many = mongo_db.people.delete_many({"team": "ops"})

    assert one.deleted_count == 1
    assert many.deleted_count == 2
    assert mongo_db.people.count_documents({}) == 2


def test_find_one_and_update_returns_before_or_after(mongo_db):
    mongo_db.jobs.insert_one({"_id": "j1", "state": "pending", "tries": 0})

    before = mongo_db.jobs.find_one_and_update(
        {"_id": "j1"}, {"$set": {"state": "running"}, "$inc": {"tries": 1}}
    )
    after = mongo_db.jobs.find_one_and_update(
        {"_id": "j1"}, {"$inc": {"tries": 1}}, return_document=ReturnDocument.AFTER
    )

    assert before == {"_id": "j1", "state": "pending", "tries": 0}
    assert after == {"_id": "j1", "state": "running", "tries": 2}


def test_find_one_and_update_sort_and_projection(mongo_db):
    seed_people(mongo_db)

    oldest = mongo_db.people.find_one_and_update(
        {"team": "core"},
        {"$set": {"picked": True}},
        sort=[("age", DESCENDING)],
        projection={"_id": 0, "name": 1, "picked": 1},
        return_document=ReturnDocument.AFTER,
    )

    assert oldest == {"name": "cyd", "picked": True}
    assert mongo_db.people.count_documents({"picked": True}) == 1


def test_find_one_and_update_no_match_returns_none(mongo_db):
    result = mongo_db.jobs.find_one_and_update({"_id": "missing"}, {"$set": {"x": 1}})

    assert result is None
    assert mongo_db.jobs.count_documents({}) == 0


def test_find_one_and_update_upsert_returns_new_document(mongo_db):
    created = mongo_db.jobs.find_one_and_update(
        {"_id": "j9"},
        {"$set": {"state": "new"}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )

    assert created == {"_id": "j9", "state": "new"}


def test_find_one_and_delete_returns_deleted_document(mongo_db):
    seed_people(mongo_db)

    youngest = mongo_db.people.find_one_and_delete({}, sort=[("age", ASCENDING)])

    assert youngest["name"] == "bob"
    assert mongo_db.people.count_documents({"name": "bob"}) == 0
    assert mongo_db.people.count_documents({}) == 4


def test_find_one_and_replace_keeps_id(mongo_db):
    mongo_db.docs.insert_one({"_id": 7, "old": True})

    replaced = mongo_db.docs.find_one_and_replace(
        {"_id": 7}, {"new": True}, return_document=ReturnDocument.AFTER
    )

    assert replaced == {"_id": 7, "new": True}


def test_aggregate_match_group_sort(mongo_db):
    seed_people(mongo_db)

    result = list(mongo_db.people.aggregate([
        {"$match": {"age": {"$gte": 28}}},
        {"$group": {"_id": "$team", "count": {"$sum": 1}, "oldest": {"$max": "$age"}}},
        {"$sort": {"_id": 1}},
    ]))

    assert result == [
        {"_id": "core", "count": 3, "oldest": 41},
        {"_id": "ops", "count": 1, "oldest": 29},
    ]


def test_aggregate_result_larger_than_first_batch(mongo_db):
    mongo_db.numbers.insert_many([{"n": n} for n in range(250)])

    result = list(mongo_db.numbers.aggregate([{"$sort": {"n": -1}}, {"$project": {"_id": 0}}]))

    assert [doc["n"] for doc in result] == list(range(249, -1, -1))


def test_count_documents_and_estimated_count(mongo_db):
    seed_people(mongo_db)

    assert mongo_db.people.count_documents({"team": "core"}) == 3
    assert mongo_db.people.count_documents({}, skip=1, limit=2) == 2
    assert mongo_db.people.estimated_document_count() == 5
    assert mongo_db.missing.count_documents({}) == 0


def test_distinct_with_and_without_filter(mongo_db):
    seed_people(mongo_db)

    assert sorted(mongo_db.people.distinct("team")) == ["core", "ops"]
    assert sorted(mongo_db.people.distinct("name", {"age": {"$gt": 35}})) == ["ada", "cyd"]


def test_unacknowledged_insert_is_applied(mongo_db):
    unacknowledged = mongo_db.events.with_options(write_concern=WriteConcern(w=0))

    result = unacknowledged.insert_one({"_id": "e1"})

    assert not result.acknowledged
    # An unacknowledged write gets no reply, so poll until it is applied.
    deadline = time.monotonic() + 5
    while mongo_db.events.find_one({"_id": "e1"}) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mongo_db.events.find_one({"_id": "e1"}) == {"_id": "e1"}


def test_invalid_update_operator_raises(mongo_db):
    mongo_db.docs.insert_one({"_id": 1})

    with pytest.raises(OperationFailure):
        mongo_db.docs.update_one({"_id": 1}, {"$frobnicate": {"a": 1}})
