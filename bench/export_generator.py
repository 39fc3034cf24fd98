"""Build a large FHIR Bulk Data export from sample records by repetition with fresh ids.

Each output file ``<Type>.000.ndjson`` repeats the sample resources of that
type in order, replacing only ``id`` with a new UUID, until the file reaches
its share of the target size. The shares are the sample's bytes per type,
so the large export has the same mix of record shapes as the sample.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

from include.sample_data import fhir_resources

_ID_PLACEHOLDER = "@@fresh-id@@"
_MIB = 1024 * 1024


def load_shapes(shapes_dir: Path | None) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Return sample resources by type and a description of where they came from.

    ``shapes_dir`` contains ``<Type>.<n>.ndjson`` files; without it the
    project's synthetic sample (``include.sample_data``, 50 patients) is used.
    """
    if shapes_dir is None:
        return fhir_resources(patients=50, seed=3), "include.sample_data (50 synthetic patients)"
    shapes: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(shapes_dir.glob("*.ndjson")):
        if path.name == "log.ndjson":
            continue
        records = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        shapes.setdefault(records[0]["resourceType"], []).extend(records)
    return shapes, f"{shapes_dir.name} ({sum(map(len, shapes.values()))} resources)"


def _templates(records: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """Serialise each record around its id, so a fresh id is two concatenations."""
    templates = []
    for record in records:
        text = json.dumps({**record, "id": _ID_PLACEHOLDER}, separators=(",", ":"))
        before, after = text.split(f'"{_ID_PLACEHOLDER}"', 1)
        templates.append((before.encode() + b'"', b'"' + after.encode() + b"\n"))
    return templates


def generate_export(
    out_dir: Path, target_bytes: int, shapes: dict[str, list[dict[str, Any]]], seed: int = 1
) -> dict[str, Path]:
    """Write one NDJSON file per resource type under ``out_dir``; return them by type.

    Files that already exist with the planned size are kept, so repeated
    benchmark runs reuse the export.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sample_bytes = {
        kind: sum(len(json.dumps(r, separators=(",", ":"))) + 1 for r in records)
        for kind, records in shapes.items()
    }
    total = sum(sample_bytes.values())
    rng = random.Random(seed)  # noqa: S311 - ids for test data, not secrets
    files = {}
    for kind, records in sorted(shapes.items()):
        path = out_dir / f"{kind}.000.ndjson"
        files[kind] = path
        share = target_bytes * sample_bytes[kind] // total
        marker = path.with_suffix(".size")
        if path.exists() and marker.exists() and marker.read_text() == str(share):
            continue
        _write_file(path, _templates(records), share, rng)
        marker.write_text(str(share))
    return files


def _write_file(
    path: Path, templates: list[tuple[bytes, bytes]], size: int, rng: random.Random
) -> None:
    written = 0
    with path.open("wb", buffering=8 * _MIB) as out:
        while written < size:
            chunk = []
            for before, after in templates:
                fresh = str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode()
                chunk.append(before + fresh + after)
            block = b"".join(chunk)
            out.write(block)
            written += len(block)
