"""Command dispatch: the commands the stand-in runs and the fields each accepts.

A command missing from :data:`COMMANDS` gets CommandNotFound (code 59), and
a field that a command does not know gets code 40415, as on mongod, so that
no request gets a result that silently ignores part of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from include.mongo_standin import catalog, reads, writes
from include.mongo_standin.context import GENERIC_FIELDS, CommandContext
from include.mongo_standin.errors import (
    COMMAND_NOT_FOUND,
    FAILED_TO_PARSE,
    ILLEGAL_OPERATION,
    UNKNOWN_FIELD,
    CommandError,
    not_supported,
    to_command_error,
)
from include.mongo_standin.wire import MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE

log = logging.getLogger(__name__)

# MongoDB 7.0. pymongo 4.20 accepts wire versions 9 to 29, and 21 keeps it
# from using features of MongoDB 8.0 (wire version 25) such as the bulkWrite command.
SERVER_VERSION = (7, 0, 0)
MAX_WIRE_VERSION = 21
MAX_WRITE_BATCH_SIZE = 100_000
# Advertised so that drivers accept explicit sessions. The stand-in ignores
# ``lsid`` because each command runs alone under one lock.
LOGICAL_SESSION_TIMEOUT_MINUTES = 30


Handler = Callable[[CommandContext, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Command:
    """One command: its handler, its fields and how it runs.

    ``fields`` None accepts any field. ``unsupported`` lists valid MongoDB
    fields that get NotImplemented when set. A ``locked`` command runs under
    the storage lock. A ``writes`` command marks the data as changed.
    """

    handler: Handler
    fields: frozenset[str] | None = None
    unsupported: tuple[str, ...] = ()
    locked: bool = True
    writes: bool = False


def _hello_reply(ctx: CommandContext) -> dict[str, Any]:
    # The reply has no "topologyVersion", so pymongo polls instead of holding
    # streaming hello requests open on the server.
    return {
        "helloOk": True,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
        "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
        "localTime": datetime.now(UTC),
        "logicalSessionTimeoutMinutes": LOGICAL_SESSION_TIMEOUT_MINUTES,
        "connectionId": ctx.connection_id,
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": False,
        "ok": 1.0,
    }


def hello(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"isWritablePrimary": True, **_hello_reply(ctx)}


def is_master(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"ismaster": True, **_hello_reply(ctx)}


def build_info(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": ".".join(str(part) for part in SERVER_VERSION),
        "versionArray": [*SERVER_VERSION, 0],
        "gitVersion": "mongo-standin",
        "sysInfo": "MongoDB wire-protocol stand-in over mongomock",
        "bits": 64,
        "debug": False,
        "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
        "storageEngines": ["mongomock"],
        "javascriptEngine": "none",
        "modules": [],
        "ok": 1.0,
    }


def ping(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    return {"ok": 1.0}


def _transactions_not_supported() -> CommandError:
    # The same code as a standalone mongod returns for a transaction.
    return CommandError(
        ILLEGAL_OPERATION,
        "Transaction numbers are only allowed on a replica set member or mongos: "
        "the MongoDB stand-in runs as a standalone server without transactions",
    )


def reject_transaction(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    raise _transactions_not_supported()


def _fields(*names: str) -> frozenset[str]:
    return GENERIC_FIELDS | frozenset(names)


COMMANDS: dict[str, Command] = {
    "hello": Command(hello, locked=False),
    "isMaster": Command(is_master, locked=False),
    "ismaster": Command(is_master, locked=False),
    "buildInfo": Command(build_info, locked=False),
    "buildinfo": Command(build_info, locked=False),
    "ping": Command(ping, locked=False),
    "endSessions": Command(ping, locked=False),
    "abortTransaction": Command(reject_transaction, locked=False),
    "commitTransaction": Command(reject_transaction, locked=False),
    "find": Command(reads.find, _fields(
        "find", "filter", "projection", "sort", "skip", "limit", "batchSize", "singleBatch",
        "hint", "noCursorTimeout", "allowDiskUse", "allowPartialResults",
        *reads.UNSUPPORTED_FIND_OPTIONS)),
    "getMore": Command(reads.get_more, _fields("getMore", "collection", "batchSize")),
    "killCursors": Command(reads.kill_cursors, _fields("killCursors", "cursors")),
    "aggregate": Command(reads.aggregate, _fields(
        "aggregate", "pipeline", "cursor", "allowDiskUse", "hint", "bypassDocumentValidation",
        "explain", "collation", "let")),
    "count": Command(reads.count, _fields(
        "count", "query", "limit", "skip", "hint", "collation")),
    "distinct": Command(reads.distinct, _fields(
        "distinct", "key", "query", "hint", "collation")),
    "insert": Command(writes.insert, _fields(
        "insert", "documents", "ordered", "bypassDocumentValidation"), writes=True),
    "update": Command(writes.update, _fields(
        "update", "updates", "ordered", "bypassDocumentValidation", "let"),
        unsupported=("let",), writes=True),
    "delete": Command(writes.delete, _fields("delete", "deletes", "ordered", "let"),
                      unsupported=("let",), writes=True),
    "findAndModify": Command(writes.find_and_modify, _fields(
        "findAndModify", "query", "sort", "update", "remove", "new", "upsert", "fields",
        "arrayFilters", "collation", "hint", "bypassDocumentValidation", "let"), writes=True),
    "createIndexes": Command(catalog.create_indexes, _fields(
        "createIndexes", "indexes", "commitQuorum"), writes=True),
    "listIndexes": Command(catalog.list_indexes, _fields("listIndexes", "cursor")),
    "dropIndexes": Command(catalog.drop_indexes, _fields("dropIndexes", "index"), writes=True),
    "listCollections": Command(catalog.list_collections, _fields(
        "listCollections", "filter", "nameOnly", "authorizedCollections", "cursor")),
    "create": Command(catalog.create, None, writes=True),
    "drop": Command(catalog.drop, _fields("drop"), writes=True),
    "dropDatabase": Command(catalog.drop_database, _fields("dropDatabase"), writes=True),
    "listDatabases": Command(catalog.list_databases, _fields(
        "listDatabases", "nameOnly", "filter", "authorizedDatabases")),
}


def _check_fields(name: str, command: Command, body: dict[str, Any]) -> None:
    if body.get("startTransaction") or "autocommit" in body:
        raise _transactions_not_supported()
    if command.fields is not None:
        for field in body:
            if field not in command.fields:
                raise CommandError(
                    UNKNOWN_FIELD, f"BSON field '{name}.{field}' is an unknown field."
                )
    for option in command.unsupported:
        if body.get(option) is not None:
            raise not_supported(f"the {name} option {option!r}")


def _after_write(ctx: CommandContext, target: Any) -> None:
    if isinstance(target, str):
        ctx.storage.keep_collection(ctx.database, target)
    ctx.storage.mark_changed()


def run_command(ctx: CommandContext, body: dict[str, Any]) -> dict[str, Any]:
    """Run one command and return its reply, which is an ``ok: 0`` document on failure."""
    if not body:
        return CommandError(FAILED_TO_PARSE, "the command document is empty").to_document()
    name = next(iter(body))
    command = COMMANDS.get(name)
    if command is None:
        log.warning("rejected unsupported command %r on database %s", name, ctx.database)
        return CommandError(COMMAND_NOT_FOUND, f"no such command: '{name}'").to_document()

    try:
        _check_fields(name, command, body)
        if not command.locked:
            return command.handler(ctx, body)
        with ctx.storage.lock:
            try:
                return command.handler(ctx, body)
            finally:
                if command.writes:
                    _after_write(ctx, body[name])
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
        error = to_command_error(exc)
        log.debug("command %s on %s failed: %s (code %s)", name, ctx.database, error, error.code)
        return error.to_document()
