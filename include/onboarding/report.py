"""The verification report: one row per check with expected and observed values."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

STATUS_PASS = "pass"  # noqa: S105 (a status word, not a password)
STATUS_FAIL = "fail"
# A setting that AWS enforces but the local emulator cannot; the row keeps
# the gap visible instead of counting it as a pass.
STATUS_NOT_ENFORCED_LOCALLY = "not enforced locally"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class CheckResult:
    """One verification check; ``passed`` is None for a local emulator gap."""

    check: str
    expected: str
    observed: str
    status: str

    @property
    def passed(self) -> bool | None:
        if self.status == STATUS_NOT_ENFORCED_LOCALLY:
            return None
        return self.status == STATUS_PASS

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass
class VerificationReport:
    """The rows of one verification, for one client and credential generation."""

    client_id: str
    generation: int
    rows: list[CheckResult] = field(default_factory=list)

    def add(self, check: str, expected: Any, observed: Any, ok: bool) -> CheckResult:
        """Append a pass or fail row and return it."""
        status = STATUS_PASS if ok else STATUS_FAIL
        row = CheckResult(check, _text(expected), _text(observed), status)
        self.rows.append(row)
        return row

    def add_equal(self, check: str, expected: Any, observed: Any) -> CheckResult:
        """Append a row that passes when ``observed`` equals ``expected``."""
        return self.add(check, expected, observed, expected == observed)

    def add_gap(self, check: str, expected: Any, observed: Any) -> CheckResult:
        """Append a row for a setting the local emulator does not enforce."""
        row = CheckResult(check, _text(expected), _text(observed), STATUS_NOT_ENFORCED_LOCALLY)
        self.rows.append(row)
        return row

    @property
    def failed(self) -> list[CheckResult]:
        return [row for row in self.rows if row.status == STATUS_FAIL]

    @property
    def all_passed(self) -> bool:
        """True when at least one check ran and none failed."""
        return bool(self.rows) and not self.failed

    def to_dict(self) -> dict[str, Any]:
        """Return the report as stored in the registry."""
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return {
            "client_id": self.client_id,
            "generation": self.generation,
            "all_passed": self.all_passed,
            "counts": counts,
            "checked_at": datetime.now(UTC).isoformat(),
            "rows": [row.to_dict() for row in self.rows],
        }
