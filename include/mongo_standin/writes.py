"""Write commands: insert, update, delete and findAndModify.

Each statement of a batch runs on its own. A failed statement becomes an
entry in ``writeErrors`` (with its index in the batch), and an ordered batch
stops there, while an unordered one (``ordered: false``) goes on with the
rest, as on mongod.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bson import json_util
from mongomock.collection import Collection
from pymongo.errors import DuplicateKeyError

from include.mongo_standin.context import (
    CommandContext,
    collection_argument,
    document_argument,
    reject_options,
    require_field,
    sort_argument,
)
from include.mongo_standin.errors import (
    DUPLICATE_KEY,
    FAILED_TO_PARSE,
    TYPE_MISMATCH,
    CommandError,
    to_command_error,
)

# Statement options whose effect the stand-in cannot reproduce: arrayFilters
# and collation are missing from mongomock 4.3.0, and "sort" on update needs
# MongoDB 8.0. "hint" is accepted and ignored, since mongomock has no indexes
# to choose from.
UNSUPPORTED_STATEMENT_OPTIONS = ("arrayFilters", "collation", "c", "sort")


def _statements(body: Mapping[str, Any], field: str, command: str) -> list[Mapping[str, Any]]:
    statements = require_field(body, field, command)
    if not isinstance(statements, list):
        raise CommandError(TYPE_MISMATCH, f"{command}.{field} must be an array")
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            raise CommandError(TYPE_MISMATCH, f"{command}.{field}.{index} must be a document")
    return statements


def _lookup_path(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def describe_duplicate(collection: Collection, namespace: str, document: Mapping[str, Any]):
    """Build a DuplicateKey CommandError naming the unique index ``document`` conflicts with."""
    indexes = [index for index in collection.list_indexes() if index["name"] == "_id_"]
    indexes += [index for index in collection.list_indexes() if index.get("unique")]
    for index in indexes:
        key_value = {field: _lookup_path(document, field) for field in index["key"]}
        if index.get("sparse") and all(value is None for value in key_value.values()):
            continue
        query: dict[str, Any] = dict(key_value)
        if index.get("partialFilterExpression"):
            query = {"$and": [index["partialFilterExpression"], query]}
        if collection.find_one(query, {"_id": 1}) is None:
            continue
        key_text = ", ".join(f"{key}: {json_util.dumps(value)}" for key, value in key_value.items())
        return CommandError(
            DUPLICATE_KEY,
            f"E11000 duplicate key error collection: {namespace} "
            f"index: {index['name']} dup key: {{ {key_text} }}",
            keyPattern=dict(index["key"]),
            keyValue=key_value,
        )
    return CommandError(DUPLICATE_KEY, f"E11000 duplicate key error collection: {namespace}")


def _write_error(index: int, error: CommandError) -> dict[str, Any]:
    entry = {"index": index, "code": error.code, "errmsg": error.message}
    entry.update(error.extra)
    return entry


def _run_batch(
    statements: list[Any], ordered: bool, run_one: Callable[[int, Any], None]
) -> list[dict[str, Any]]:
    """Run ``run_one`` on each statement; return the writeErrors."""
    write_errors = []
    for index, statement in enumerate(statements):
        try:
            run_one(index, statement)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a writeError
            write_errors.append(_write_error(index, to_command_error(exc)))
            if ordered:
                break
    return write_errors


def _write_reply(counts: dict[str, Any], write_errors: list[dict[str, Any]]) -> dict[str, Any]:
    reply = dict(counts)
    if write_errors:
        reply["writeErrors"] = write_errors
    reply["ok"] = 1.0
    return reply


def insert(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "insert")
    documents = _statements(body, "documents", "insert")
    collection = ctx.storage.collection(ctx.database, name)
    inserted = 0

    def insert_one(_index: int, document: Mapping[str, Any]) -> None:
        nonlocal inserted
        try:
            collection.insert_one(document)
        except DuplicateKeyError as exc:
            raise describe_duplicate(collection, ctx.namespace(name), document) from exc
        inserted += 1

    write_errors = _run_batch(documents, body.get("ordered", True), insert_one)
    return _write_reply({"n": inserted}, write_errors)


def _is_replacement(update: Any) -> bool:
    return isinstance(update, Mapping) and not any(key.startswith("$") for key in update)


def _apply_update(collection: Collection, query, update, upsert: bool, multi: bool):
    """Run one update statement; return mongomock's raw result (n, nModified, upserted)."""
    if _is_replacement(update):
        if multi:
            raise CommandError(
                FAILED_TO_PARSE, "multi update is not supported for replacement-style update"
            )
        return collection.replace_one(query, update, upsert=upsert).raw_result
    if multi:
        return collection.update_many(query, update, upsert=upsert).raw_result
    return collection.update_one(query, update, upsert=upsert).raw_result


def update(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "update")
    statements = _statements(body, "updates", "update")
    collection = ctx.storage.collection(ctx.database, name)
    totals = {"n": 0, "nModified": 0}
    upserted: list[dict[str, Any]] = []

    def update_one(index: int, statement: Mapping[str, Any]) -> None:
        reject_options(statement, "update", UNSUPPORTED_STATEMENT_OPTIONS)
        query = document_argument(statement, "q", "update", default={})
        change = require_field(statement, "u", "update")
        try:
            raw = _apply_update(
                collection,
                query,
                change,
                upsert=bool(statement.get("upsert")),
                multi=bool(statement.get("multi")),
            )
        except DuplicateKeyError as exc:
            # NOTE: the updated document is rolled back, so the message cannot name the index.
            raise CommandError(
                DUPLICATE_KEY, f"E11000 duplicate key error collection: {ctx.namespace(name)}"
            ) from exc
        totals["n"] += raw["n"]
        totals["nModified"] += raw["nModified"]
        if raw.get("upserted") is not None:
            upserted.append({"index": index, "_id": raw["upserted"]})

    write_errors = _run_batch(statements, body.get("ordered", True), update_one)
    if upserted:
        totals["upserted"] = upserted
    return _write_reply(totals, write_errors)


def delete(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "delete")
    statements = _statements(body, "deletes", "delete")
    collection = ctx.storage.collection(ctx.database, name)
    deleted = 0

    def delete_one(_index: int, statement: Mapping[str, Any]) -> None:
        nonlocal deleted
        reject_options(statement, "delete", ("collation",))
        query = document_argument(statement, "q", "delete", default={})
        limit = require_field(statement, "limit", "delete")
        if limit not in (0, 1):
            raise CommandError(FAILED_TO_PARSE, f"delete limit must be 0 or 1, got {limit!r}")
        if limit == 1:
            deleted += collection.delete_one(query).deleted_count
        else:
            deleted += collection.delete_many(query).deleted_count

    write_errors = _run_batch(statements, body.get("ordered", True), delete_one)
    return _write_reply({"n": deleted}, write_errors)


def _check_find_and_modify(body: Mapping[str, Any]) -> None:
    reject_options(body, "findAndModify", ("arrayFilters", "collation", "let"))
    remove = bool(body.get("remove"))
    has_update = body.get("update") is not None
    if remove and has_update:
        raise CommandError(FAILED_TO_PARSE, "Cannot specify both an update and remove=true")
    if not remove and not has_update:
        raise CommandError(FAILED_TO_PARSE, "Either an update or remove=true must be specified")
    if remove and body.get("new"):
        raise CommandError(
            FAILED_TO_PARSE,
            "Cannot specify both new=true and remove=true; 'remove' always returns the deleted "
            "document",
        )
    if remove and body.get("upsert"):
        raise CommandError(FAILED_TO_PARSE, "Cannot specify both upsert=true and remove=true")


def find_and_modify(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    """Update, replace or remove one document and return it (before or after the change).

    The caller holds the storage lock, so no other command runs between
    finding the document and changing it: of two concurrent requests with
    the same state filter, only the first matches.
    """
    name = collection_argument(body, "findAndModify")
    _check_find_and_modify(body)
    query = document_argument(body, "query", "findAndModify", default={})
    sort = sort_argument(body, "sort", "findAndModify")
    fields = document_argument(body, "fields", "findAndModify") or None
    collection = ctx.storage.collection(ctx.database, name)

    target = collection.find_one(query, sort=sort or None)
    if target is None and not body.get("upsert"):
        last_error: dict[str, Any] = {"n": 0}
        if not body.get("remove"):
            last_error["updatedExisting"] = False
        return {"lastErrorObject": last_error, "value": None, "ok": 1.0}

    if body.get("remove"):
        value = collection.find_one({"_id": target["_id"]}, fields)
        collection.delete_one({"_id": target["_id"]})
        return {"lastErrorObject": {"n": 1}, "value": value, "ok": 1.0}

    return _modify_one(ctx, collection, name, body, query, target, fields)


def _modify_one(ctx, collection, name, body, query, target, fields) -> dict[str, Any]:
    change = body["update"]
    if target is None:
        spec = query
        before = None
    else:
        # Pin the sorted choice by _id but keep the query, which positional ($) updates need.
        if "_id" in query:
            spec = {"$and": [query, {"_id": target["_id"]}]}
        else:
            spec = {**query, "_id": target["_id"]}
        before = collection.find_one({"_id": target["_id"]}, fields)

    try:
        raw = _apply_update(collection, spec, change, bool(body.get("upsert")), multi=False)
    except DuplicateKeyError as exc:
        raise CommandError(
            DUPLICATE_KEY, f"E11000 duplicate key error collection: {ctx.namespace(name)}"
        ) from exc

    last_error: dict[str, Any] = {"n": 1, "updatedExisting": target is not None}
    document_id = target["_id"] if target is not None else raw.get("upserted")
    if target is None:
        last_error["upserted"] = document_id
    if body.get("new"):
        value = collection.find_one({"_id": document_id}, fields)
    else:
        value = before
    return {"lastErrorObject": last_error, "value": value, "ok": 1.0}

