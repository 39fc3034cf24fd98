"""Read-only summaries of what ingestion did for a client, for the demo and ops.

Usage: ``python -m include.ingestion.status CLIENT_ID`` prints the summary
as JSON, using ``MONGO_URI`` / ``MONGO_DB`` like every other entry point.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any

from pymongo.database import Database

from include.ingestion.ledger import LEDGER

DATASET_PREFIXES = ("fhir_", "csv_", "json_")


def client_status(db: Database, client_id: str) -> dict[str, Any]:
    """Return files per ledger state, quarantine reasons and documents per collection."""
    entries = list(
        db[LEDGER].find(
            {"client_id": client_id},
            projection={"state": 1, "reason": 1, "key": 1, "collection": 1},
        )
    )
    states = Counter(entry["state"] for entry in entries)
    quarantined = {
        entry["key"]: entry.get("reason") for entry in entries if entry["state"] == "quarantined"
    }
    documents = {}
    for name in sorted(db.list_collection_names()):
        if name.startswith(DATASET_PREFIXES):
            count = db[name].count_documents({"client_id": client_id})
            if count:
                documents[name] = count
    return {
        "client_id": client_id,
        "files": dict(sorted(states.items())),
        "quarantined": quarantined,
        "documents": documents,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m include.ingestion.status CLIENT_ID")
    from include.ingestion.tasks import exchange_db

    with exchange_db() as db:
        print(json.dumps(client_status(db, args[0]), indent=2))


if __name__ == "__main__":
    main()
