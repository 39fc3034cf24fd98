"""Problems found in a file: rejection of the whole file, bad records, the error report.

Reason codes are stable strings (they appear in the ledger, in
``<name>.error.json`` and in logs), so operators can count and search them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Reasons that reject a whole file.
EMPTY_FILE = "empty_file"
NO_RECORDS = "no_records"
NOT_GZIP = "not_gzip"
CORRUPT_GZIP = "corrupt_gzip"
INVALID_ENCODING = "invalid_encoding"
BINARY_CONTENT = "binary_content"
UNSUPPORTED_FORMAT = "unsupported_format"
JSON_ARRAY_IN_NDJSON = "json_array_in_ndjson"
INVALID_JSON_DOCUMENT = "invalid_json_document"
INVALID_HEADER = "invalid_header"
DUPLICATE_COLUMN = "duplicate_column"
INVALID_CSV = "invalid_csv"
TOO_MANY_BAD_RECORDS = "too_many_bad_records"

# Reasons for one bad record.
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
WRONG_RESOURCE_TYPE = "wrong_resource_type"
INVALID_ID = "invalid_id"
RESERVED_FIELD = "reserved_field"
RECORD_TOO_LARGE = "record_too_large"
COLUMN_COUNT = "column_count"
REPEATED_HEADER = "repeated_header"
EMPTY_KEY = "empty_key"
UNSTORABLE = "unstorable"
WRITE_REJECTED = "write_rejected"


class FileRejected(Exception):
    """The whole file cannot be loaded; it goes to quarantine with this reason."""

    def __init__(self, reason: str, message: str, line: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.line = line

    def to_dict(self) -> dict[str, Any]:
        """Return the reason, message and line (if known) for the error report."""
        data: dict[str, Any] = {"reason": self.reason, "message": self.message}
        if self.line is not None:
            data["line"] = self.line
        return data


@dataclass
class ErrorReport:
    """Bad records of one file: every one counted, the first ``max_listed`` kept."""

    max_listed: int = 1000
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        """Number of bad records, listed or not."""
        return sum(self.counts.values())

    def add(self, line: int, reason: str, message: str) -> None:
        """Count a bad record and keep its details while the list has room."""
        self.counts[reason] += 1
        if len(self.errors) < self.max_listed:
            self.errors.append({"line": line, "reason": reason, "message": message})

    def to_dict(self) -> dict[str, Any]:
        """Return counts per reason and the listed errors, sorted by line."""
        return {
            "bad_records": self.total,
            "by_reason": dict(sorted(self.counts.items())),
            "errors": sorted(self.errors, key=lambda error: error["line"]),
            "errors_truncated": self.total > len(self.errors),
        }


def bad_share_exceeded(valid: int, bad: int, max_bad_share: float) -> bool:
    """Tell whether the share of bad records is above ``max_bad_share``."""
    total = valid + bad
    return total > 0 and bad / total > max_bad_share
