"""Read commands: find, getMore, killCursors, aggregate, count and distinct."""

from __future__ import annotations

from typing import Any

from include.mongo_standin.context import (
    CommandContext,
    collection_argument,
    document_argument,
    integer_argument,
    reject_options,
    require_field,
    sort_argument,
)
from include.mongo_standin.errors import FAILED_TO_PARSE, TYPE_MISMATCH, CommandError, not_supported

# Valid options whose effect the stand-in cannot reproduce. A request that
# uses one gets NotImplemented, never a silently different result.
UNSUPPORTED_FIND_OPTIONS = (
    "collation", "let", "tailable", "awaitData", "min", "max", "returnKey", "showRecordId",
    "oplogReplay",
)
# Stages that write to a collection, which make the aggregate a write.
WRITING_STAGES = ("$out", "$merge")


def find(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "find")
    reject_options(body, "find", UNSUPPORTED_FIND_OPTIONS)
    query = document_argument(body, "filter", "find", default={})
    # An empty projection returns whole documents, as on mongod.
    projection = document_argument(body, "projection", "find") or None
    sort = sort_argument(body, "sort", "find")
    skip = integer_argument(body, "skip", "find")
    limit = integer_argument(body, "limit", "find")

    # NOTE: "hint" is accepted and ignored, because mongomock has no indexes to choose from.
    collection = ctx.storage.collection(ctx.database, name)
    documents = collection.find(query, projection, skip=skip, limit=limit, sort=sort or None)
    cursor = ctx.cursors.open(
        ctx.namespace(name),
        documents,
        body.get("batchSize"),
        single_batch=bool(body.get("singleBatch")),
    )
    return {"cursor": cursor, "ok": 1.0}


def get_more(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    cursor_id = body["getMore"]
    if isinstance(cursor_id, bool) or not isinstance(cursor_id, int):
        raise CommandError(TYPE_MISMATCH, f"getMore cursor id must be an int64, got {cursor_id!r}")
    name = require_field(body, "collection", "getMore")
    cursor = ctx.cursors.get_more(cursor_id, ctx.namespace(name), body.get("batchSize"))
    return {"cursor": cursor, "ok": 1.0}


def kill_cursors(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    collection_argument(body, "killCursors")
    cursor_ids = require_field(body, "cursors", "killCursors")
    if not isinstance(cursor_ids, list):
        raise CommandError(TYPE_MISMATCH, "killCursors.cursors must be an array of cursor ids")
    killed, not_found = ctx.cursors.kill(cursor_ids)
    return {
        "cursorsKilled": killed,
        "cursorsNotFound": not_found,
        "cursorsAlive": [],
        "cursorsUnknown": [],
        "ok": 1.0,
    }


def aggregate(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    if body["aggregate"] == 1:
        raise not_supported("aggregate on a whole database ({aggregate: 1})")
    name = collection_argument(body, "aggregate")
    reject_options(body, "aggregate", ("explain", "collation", "let"))
    pipeline = require_field(body, "pipeline", "aggregate")
    if not isinstance(pipeline, list):
        raise CommandError(TYPE_MISMATCH, "aggregate.pipeline must be an array of stages")
    cursor_options = document_argument(body, "cursor", "aggregate")
    if cursor_options is None:
        raise CommandError(
            FAILED_TO_PARSE, "The 'cursor' option is required, except for aggregate with explain"
        )

    collection = ctx.storage.collection(ctx.database, name)
    documents = list(collection.aggregate(pipeline))
    if any(stage_name in WRITING_STAGES for stage in pipeline for stage_name in stage):
        ctx.storage.mark_changed()
    cursor = ctx.cursors.open(ctx.namespace(name), documents, cursor_options.get("batchSize"))
    return {"cursor": cursor, "ok": 1.0}


def count(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "count")
    reject_options(body, "count", ("collation",))
    query = document_argument(body, "query", "count", default={})
    skip = integer_argument(body, "skip", "count")
    limit = abs(int(body.get("limit") or 0))

    collection = ctx.storage.collection(ctx.database, name)
    options: dict[str, Any] = {}
    if skip:
        options["skip"] = skip
    if limit:
        options["limit"] = limit
    return {"n": collection.count_documents(query, **options), "ok": 1.0}


def distinct(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    name = collection_argument(body, "distinct")
    reject_options(body, "distinct", ("collation",))
    key = require_field(body, "key", "distinct")
    if not isinstance(key, str):
        raise CommandError(TYPE_MISMATCH, f"distinct.key must be a string, got {key!r}")
    query = document_argument(body, "query", "distinct", default={})

    collection = ctx.storage.collection(ctx.database, name)
    return {"values": collection.distinct(key, query), "ok": 1.0}
