"""The context passed to command handlers, and the argument checks they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from include.mongo_standin.cursors import CursorRegistry
from include.mongo_standin.errors import (
    BAD_VALUE,
    FAILED_TO_PARSE,
    INVALID_NAMESPACE,
    TYPE_MISMATCH,
    CommandError,
    not_supported,
)
from include.mongo_standin.storage import Storage

# Fields that drivers add to any command. None of them changes the result here.
GENERIC_FIELDS = frozenset({
    "$db", "lsid", "$clusterTime", "txnNumber", "$readPreference", "readConcern",
    "writeConcern", "comment", "maxTimeMS", "apiVersion", "apiStrict", "apiDeprecationErrors",
})


@dataclass
class CommandContext:
    """The server state and the request's database, as seen by one command."""

    storage: Storage
    cursors: CursorRegistry
    database: str
    connection_id: int

    def namespace(self, collection: str) -> str:
        return f"{self.database}.{collection}"


def collection_argument(body: Mapping[str, Any], command: str) -> str:
    """Return the collection name given as the value of the command's first field."""
    name = body[command]
    if not isinstance(name, str):
        raise CommandError(
            INVALID_NAMESPACE, f"collection name for {command} must be a string, got {name!r}"
        )
    if not name or "$" in name or "\x00" in name or name.startswith("."):
        raise CommandError(INVALID_NAMESPACE, f"invalid collection name {name!r}")
    return name


def document_argument(
    body: Mapping[str, Any], field: str, command: str, default: Any = None
) -> Any:
    """Return ``body[field]`` when it is a document (or missing: ``default``)."""
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, Mapping):
        raise CommandError(
            TYPE_MISMATCH, f"{command}.{field} must be a document, got {type(value).__name__}"
        )
    return value


def integer_argument(body: Mapping[str, Any], field: str, command: str, default: int = 0) -> int:
    """Return ``body[field]`` as a non-negative int (missing: ``default``)."""
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise CommandError(TYPE_MISMATCH, f"{command}.{field} must be an integer, got {value!r}")
    if value < 0:
        raise CommandError(BAD_VALUE, f"{command}.{field} must be non-negative, got {value}")
    return int(value)


def sort_argument(body: Mapping[str, Any], field: str, command: str) -> list[tuple[str, int]]:
    """Return a sort specification as mongomock's list of ``(key, direction)`` pairs."""
    spec = document_argument(body, field, command, default={})
    pairs = []
    for key, direction in spec.items():
        if isinstance(direction, Mapping):
            raise not_supported(f"sorting by {key}: {dict(direction)!r}")
        if direction not in (1, -1):
            raise CommandError(
                BAD_VALUE, f"{command}.{field}: sort direction of {key!r} must be 1 or -1"
            )
        pairs.append((key, int(direction)))
    return pairs


def reject_options(body: Mapping[str, Any], command: str, options: tuple[str, ...]) -> None:
    """Reject MongoDB options that the stand-in cannot honour, instead of ignoring them."""
    for option in options:
        if body.get(option) not in (None, False, {}):
            raise not_supported(f"the {command} option {option!r}")


def require_field(body: Mapping[str, Any], field: str, command: str) -> Any:
    if field not in body:
        raise CommandError(FAILED_TO_PARSE, f"BSON field '{command}.{field}' is missing")
    return body[field]
