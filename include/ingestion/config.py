"""Ingestion settings, read from environment variables.

Every variable is optional; ``docs/ingestion.md`` lists them with their
defaults. Invalid values raise :class:`ValueError` naming the variable, so a
misconfigured worker fails on its first task instead of loading with a
silently different rule.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

INCOMING_PREFIX = "incoming/"
PROCESSED_PREFIX = "processed/"
QUARANTINE_PREFIX = "quarantine/"

DEFAULT_SCHEDULE = "*/15 * * * *"

# MongoDB rejects documents over 16 MiB, so a longer record could never be
# stored. The same bound caps how much of one line is held in memory.
DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024

# Synthea CSV tables whose rows carry a unique "Id" column. Tables missing
# here (conditions, allergies, devices, observations, ...) have no key
# column and are keyed by a hash of the whole row.
DEFAULT_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "patients": ("Id",),
    "payers": ("Id",),
    "encounters": ("Id",),
    "organizations": ("Id",),
    "providers": ("Id",),
    "claims": ("Id",),
}


def default_parse_processes() -> int:
    """Return the default number of processes parsing one large object: the cores, up to 4.

    The cores are those this process may run on, which a container's CPU
    set can limit. A CPU quota does not show here, so set
    INGESTION_PARSE_PROCESSES to match one.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


@dataclass(frozen=True)
class IngestionSettings:
    """Limits and rules for one ingestion run."""

    batch_size: int = 1000
    max_bad_share: float = 0.01
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    lease_seconds: int = 900
    max_objects_per_run: int = 200
    max_listed_errors: int = 1000
    spool_dir: str | None = None
    parse_processes: int = field(default_factory=default_parse_processes)
    key_columns: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_KEY_COLUMNS)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestionSettings:
        """Build settings from ``INGESTION_*`` variables, defaults for unset ones."""
        env = os.environ if environ is None else environ
        return cls(
            batch_size=_int(env, "INGESTION_BATCH_SIZE", 1000, minimum=1),
            max_bad_share=_share(env, "INGESTION_MAX_BAD_SHARE", 0.01),
            max_record_bytes=_int(
                env, "INGESTION_MAX_RECORD_BYTES", DEFAULT_MAX_RECORD_BYTES, minimum=1024
            ),
            lease_seconds=_int(env, "INGESTION_LEASE_SECONDS", 900, minimum=1),
            max_objects_per_run=_int(env, "INGESTION_MAX_OBJECTS_PER_RUN", 200, minimum=1),
            max_listed_errors=_int(env, "INGESTION_MAX_LISTED_ERRORS", 1000, minimum=0),
            spool_dir=env.get("INGESTION_SPOOL_DIR") or None,
            parse_processes=_int(
                env, "INGESTION_PARSE_PROCESSES", default_parse_processes(), minimum=1
            ),
            key_columns=_key_columns(env.get("INGESTION_KEY_COLUMNS")),
        )


def schedule_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the DAG schedule from ``INGESTION_SCHEDULE``: a cron expression or preset.

    ``none`` turns the schedule off, so runs start only when triggered.
    """
    env = os.environ if environ is None else environ
    value = env.get("INGESTION_SCHEDULE", "").strip() or DEFAULT_SCHEDULE
    if value.lower() == "none":
        return None
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value} is below the minimum {minimum}")
    return value


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}={value} must be between 0 and 1 (a share of records)")
    return value


def _key_columns(raw: str | None) -> dict[str, tuple[str, ...]]:
    """Merge ``INGESTION_KEY_COLUMNS`` (a JSON object) over the built-in table keys.

    A table mapped to an empty list is keyed by row hash even if a default
    names key columns for it.
    """
    merged = dict(DEFAULT_KEY_COLUMNS)
    if not raw or not raw.strip():
        return merged
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"INGESTION_KEY_COLUMNS is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError('INGESTION_KEY_COLUMNS must be a JSON object such as {"patients": ["Id"]}')
    for table, columns in parsed.items():
        if not isinstance(columns, list) or not all(
            isinstance(column, str) and column for column in columns
        ):
            raise ValueError(f"INGESTION_KEY_COLUMNS[{table!r}] must be a list of column names")
        merged[table.lower()] = tuple(columns)
    return merged
