"""Server error codes and their conversion into MongoDB error documents.

Codes and names are those of MongoDB's ``src/mongo/base/error_codes.yml``, so
drivers raise the same exception types as against mongod (11000 becomes
``DuplicateKeyError``, 43 ``CursorNotFound``).
"""

from __future__ import annotations

import logging
from typing import Any

import bson.errors
from pymongo.errors import CollectionInvalid, InvalidName, OperationFailure

log = logging.getLogger(__name__)

INTERNAL_ERROR = 1
BAD_VALUE = 2
FAILED_TO_PARSE = 9
TYPE_MISMATCH = 14
ILLEGAL_OPERATION = 20
NAMESPACE_NOT_FOUND = 26
INDEX_NOT_FOUND = 27
CURSOR_NOT_FOUND = 43
NAMESPACE_EXISTS = 48
COMMAND_NOT_FOUND = 59
INVALID_OPTIONS = 72
INVALID_NAMESPACE = 73
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86
NOT_IMPLEMENTED = 238
DUPLICATE_KEY = 11000
# mongod's code for a command field that it does not know.
UNKNOWN_FIELD = 40415

CODE_NAMES = {
    INTERNAL_ERROR: "InternalError",
    BAD_VALUE: "BadValue",
    FAILED_TO_PARSE: "FailedToParse",
    TYPE_MISMATCH: "TypeMismatch",
    ILLEGAL_OPERATION: "IllegalOperation",
    NAMESPACE_NOT_FOUND: "NamespaceNotFound",
    INDEX_NOT_FOUND: "IndexNotFound",
    CURSOR_NOT_FOUND: "CursorNotFound",
    NAMESPACE_EXISTS: "NamespaceExists",
    COMMAND_NOT_FOUND: "CommandNotFound",
    INVALID_OPTIONS: "InvalidOptions",
    INVALID_NAMESPACE: "InvalidNamespace",
    INDEX_OPTIONS_CONFLICT: "IndexOptionsConflict",
    INDEX_KEY_SPECS_CONFLICT: "IndexKeySpecsConflict",
    NOT_IMPLEMENTED: "NotImplemented",
    DUPLICATE_KEY: "DuplicateKey",
    UNKNOWN_FIELD: "Location40415",
}


class CommandError(Exception):
    """A command failure to send as ``{ok: 0, errmsg, code, codeName}``."""

    def __init__(self, code: int, message: str, **extra: Any):
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def to_document(self) -> dict[str, Any]:
        """Return the error reply document."""
        return {
            "ok": 0.0,
            "errmsg": self.message,
            "code": self.code,
            "codeName": CODE_NAMES.get(self.code, "UnknownError"),
            **self.extra,
        }


def not_supported(feature: str) -> CommandError:
    """Build the error for a valid MongoDB feature that the stand-in does not implement."""
    return CommandError(NOT_IMPLEMENTED, f"{feature} is not supported by the MongoDB stand-in")


def to_command_error(exc: Exception) -> CommandError:
    """Convert an exception raised while running a command into a CommandError.

    mongomock raises pymongo's exception types, often without a code, and
    those become BadValue. mongomock's ``NotImplementedError`` becomes NotImplemented.
    Anything else is logged with its traceback and becomes InternalError.
    """
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, OperationFailure):
        code = exc.code if isinstance(exc.code, int) and exc.code else BAD_VALUE
        return CommandError(code, str(exc))
    if isinstance(exc, NotImplementedError):
        return CommandError(NOT_IMPLEMENTED, f"not supported by the MongoDB stand-in: {exc}")
    if isinstance(exc, CollectionInvalid):
        return CommandError(NAMESPACE_EXISTS, str(exc))
    if isinstance(exc, InvalidName):
        return CommandError(INVALID_NAMESPACE, str(exc))
    if isinstance(exc, bson.errors.InvalidDocument | ValueError):
        # mongomock reports invalid documents, operators and arguments this way.
        log.debug("command rejected as BadValue: %r", exc, exc_info=exc)
        return CommandError(BAD_VALUE, str(exc))
    if isinstance(exc, TypeError | KeyError):
        # mongomock raises these for some invalid arguments, but so would a
        # bug in the stand-in, and the logged traceback shows which it was.
        log.warning("command rejected as BadValue: %r", exc, exc_info=exc)
        return CommandError(BAD_VALUE, f"{type(exc).__name__}: {exc}")
    log.error("command failed with an unexpected error", exc_info=exc)
    return CommandError(INTERNAL_ERROR, f"internal error in the MongoDB stand-in: {exc!r}")
