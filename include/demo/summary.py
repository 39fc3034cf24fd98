"""Read the outcome of the demo from the registry and the secret service, and format it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from include.naming import client_names


def verification_counts(record: dict[str, Any]) -> Counter:
    """Count the verification report's rows by status (pass, fail, not enforced locally)."""
    rows = (record.get("verification") or {}).get("rows") or []
    return Counter(row["status"] for row in rows)


def link_states(secretsmanager, client_id: str) -> dict[str, str]:
    """Return ``{access method: receipt state}`` of the client's current one-time links."""
    from include.onboarding.share import share_secret_name
    from include.secret_service.client import SecretServiceClient

    name = share_secret_name(client_names(client_id))
    stored = json.loads(secretsmanager.get_secret_value(SecretId=name)["SecretString"])
    states = {}
    with SecretServiceClient.from_env() as service:
        for method, entry in stored.get("Methods", {}).items():
            states[method] = service.receipt(entry["ReceiptToken"])["state"]
    return states


def format_summary(
    client_id: str,
    checks: Counter,
    links: dict[str, str],
    files: dict[str, int],
    documents: dict[str, int],
) -> str:
    """Return the demo's closing summary as text, with loaded and quarantined counts even at 0."""
    files = {"loaded": 0, "quarantined": 0, **files}
    lines = [
        f"Summary for client {client_id}",
        "  verification checks: "
        + ", ".join(f"{count} {status}" for status, count in sorted(checks.items())),
        "  one-time links: " + ", ".join(f"{m} {s}" for m, s in sorted(links.items())),
        "  files, all runs: "
        + ", ".join(f"{count} {state}" for state, count in sorted(files.items())),
        "  documents per collection (upserted, so re-sent records do not add):",
    ]
    lines += [f"    {name:<24} {count:>6}" for name, count in documents.items()]
    return "\n".join(lines)
