"""Catalog commands: databases, collections and indexes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mongomock.filtering import filter_applies

from include.mongo_standin.context import (
    GENERIC_FIELDS,
    CommandContext,
    collection_argument,
    document_argument,
    require_field,
)
from include.mongo_standin.errors import (
    BAD_VALUE,
    INDEX_NOT_FOUND,
    INDEX_OPTIONS_CONFLICT,
    INVALID_OPTIONS,
    NAMESPACE_EXISTS,
    NAMESPACE_NOT_FOUND,
    TYPE_MISMATCH,
    CommandError,
    not_supported,
)

ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
# Index options that mongomock enforces. The others ("v", "background") change nothing here.
SUPPORTED_INDEX_OPTIONS = {"unique", "sparse", "expireAfterSeconds", "partialFilterExpression"}
IGNORED_INDEX_OPTIONS = {"key", "name", "v", "background"}


def list_databases(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    names = sorted(ctx.storage.client.list_database_names())
    if body.get("nameOnly"):
        databases = [{"name": name} for name in names]
    else:
        # NOTE: sizes are reported as 0 because mongomock does not track storage size.
        databases = [{"name": name, "sizeOnDisk": 0, "empty": False} for name in names]
    query = document_argument(body, "filter", "listDatabases", default={})
    databases = [entry for entry in databases if filter_applies(query, entry)]
    return {"databases": databases, "totalSize": 0, "ok": 1.0}


def drop_database(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    ctx.storage.client.drop_database(ctx.database)
    return {"dropped": ctx.database, "ok": 1.0}


def list_collections(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    query = document_argument(body, "filter", "listCollections", default={})
    entries = []
    for name in sorted(ctx.storage.client[ctx.database].list_collection_names()):
        entry = {
            "name": name,
            "type": "collection",
            "options": {},
            "info": {"readOnly": False},
            "idIndex": ID_INDEX,
        }
        if not filter_applies(query, entry):
            continue
        if body.get("nameOnly"):
            entry = {"name": name, "type": "collection"}
        entries.append(entry)

    cursor_options = document_argument(body, "cursor", "listCollections", default={})
    cursor = ctx.cursors.open(
        ctx.namespace("$cmd.listCollections"), entries, cursor_options.get("batchSize")
    )
    return {"cursor": cursor, "ok": 1.0}


def create(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "create")
    options = [key for key in body if key not in GENERIC_FIELDS and key != "create"]
    if options:
        raise not_supported(f"create with options {options}")
    if ctx.storage.collection_exists(ctx.database, name):
        raise CommandError(NAMESPACE_EXISTS, f"Collection {ctx.namespace(name)} already exists.")
    ctx.storage.client[ctx.database].create_collection(name)
    return {"ok": 1.0}


def drop(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "drop")
    namespace = ctx.namespace(name)
    if not ctx.storage.collection_exists(ctx.database, name):
        # MongoDB 7.0 returns success when the collection does not exist.
        return {"ns": namespace, "ok": 1.0}
    collection = ctx.storage.collection(ctx.database, name)
    index_count = len(list(collection.list_indexes()))
    collection.drop()
    return {"ns": namespace, "nIndexesWas": index_count, "ok": 1.0}


def _index_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Return the mongomock create_index options of one createIndexes entry."""
    unknown = set(spec) - SUPPORTED_INDEX_OPTIONS - IGNORED_INDEX_OPTIONS
    if unknown:
        raise not_supported(f"index options {sorted(unknown)}")
    options = {key: spec[key] for key in SUPPORTED_INDEX_OPTIONS if key in spec}
    ttl = options.get("expireAfterSeconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0):
        raise CommandError(
            BAD_VALUE, f"expireAfterSeconds must be a non-negative number, got {ttl!r}"
        )
    return options


def _index_key(spec: Mapping[str, Any]) -> list[tuple[str, int]]:
    key = spec.get("key")
    if not isinstance(key, Mapping) or not key:
        raise CommandError(BAD_VALUE, f"index key must be a non-empty document, got {key!r}")
    pairs = []
    for field, direction in key.items():
        if isinstance(direction, bool) or direction not in (1, -1):
            raise not_supported(f"index type {direction!r} on field {field!r}")
        pairs.append((field, int(direction)))
    return pairs


def _same_index(existing: Mapping[str, Any], key: list, options: Mapping[str, Any]) -> bool:
    existing_options = {k: v for k, v in existing.items() if k in SUPPORTED_INDEX_OPTIONS}
    # Compare by identity: ``0 in (None, False)`` is true in Python, and a TTL
    # index with expireAfterSeconds=0 must still match itself.
    requested = {k: v for k, v in options.items() if v is not None and v is not False}
    return list(existing["key"].items()) == key and existing_options == requested


def create_indexes(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "createIndexes")
    specs = require_field(body, "indexes", "createIndexes")
    if not isinstance(specs, list) or not specs:
        raise CommandError(TYPE_MISMATCH, "createIndexes.indexes must be a non-empty array")
    created_collection = not ctx.storage.collection_exists(ctx.database, name)
    collection = ctx.storage.collection(ctx.database, name)
    before = 0 if created_collection else len(list(collection.list_indexes()))

    for spec in specs:
        if not isinstance(spec, Mapping):
            raise CommandError(TYPE_MISMATCH, "each createIndexes.indexes entry must be a document")
        index_name = require_field(spec, "name", "createIndexes.indexes")
        key = _index_key(spec)
        options = _index_options(spec)
        existing = {index["name"]: index for index in collection.list_indexes()}
        if index_name in existing:
            if _same_index(existing[index_name], key, options):
                continue
            raise CommandError(
                INDEX_OPTIONS_CONFLICT,
                f"An existing index has the same name as the requested index: {index_name}",
            )
        for other in existing.values():
            if list(other["key"].items()) == key:
                raise CommandError(
                    INDEX_OPTIONS_CONFLICT,
                    f"Index already exists with a different name: {other['name']}",
                )
        if index_name != "_id_":
            collection.create_index(key, name=index_name, **options)

    after = len(list(collection.list_indexes()))
    if created_collection:
        before = 1  # mongod counts the _id index that comes with the new collection
    return {
        "createdCollectionAutomatically": created_collection,
        "numIndexesBefore": before,
        "numIndexesAfter": after,
        "ok": 1.0,
    }


def list_indexes(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "listIndexes")
    if not ctx.storage.collection_exists(ctx.database, name):
        raise CommandError(NAMESPACE_NOT_FOUND, f"ns does not exist: {ctx.namespace(name)}")
    indexes = list(ctx.storage.collection(ctx.database, name).list_indexes())
    cursor_options = document_argument(body, "cursor", "listIndexes", default={})
    cursor = ctx.cursors.open(ctx.namespace(name), indexes, cursor_options.get("batchSize"))
    return {"cursor": cursor, "ok": 1.0}


def drop_indexes(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "dropIndexes")
    target = require_field(body, "index", "dropIndexes")
    if not ctx.storage.collection_exists(ctx.database, name):
        raise CommandError(NAMESPACE_NOT_FOUND, f"ns not found {ctx.namespace(name)}")
    collection = ctx.storage.collection(ctx.database, name)
    indexes = {index["name"]: index for index in collection.list_indexes()}
    count_before = len(indexes)

    if target == "*":
        # One by one: mongomock's drop_indexes() would leave TTL indexes active.
        names = [index_name for index_name in indexes if index_name != "_id_"]
    else:
        names = target if isinstance(target, list) else [target]
    for entry in names:
        index_name = _index_name(indexes, entry)
        if index_name == "_id_":
            raise CommandError(INVALID_OPTIONS, "cannot drop _id index")
        collection.drop_index(index_name)
    return {"nIndexesWas": count_before, "ok": 1.0}


def _index_name(indexes: Mapping[str, Mapping[str, Any]], entry: Any) -> str:
    """Return the name of the index that ``entry`` (a name or a key document) refers to."""
    if isinstance(entry, Mapping):
        for index_name, index in indexes.items():
            if list(index["key"].items()) == list(entry.items()):
                return index_name
        raise CommandError(INDEX_NOT_FOUND, f"can't find index with key: {dict(entry)}")
    if entry not in indexes:
        raise CommandError(INDEX_NOT_FOUND, f"index not found with name [{entry}]")
    return entry
