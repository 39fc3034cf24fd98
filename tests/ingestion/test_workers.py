"""Parsing FHIR NDJSON in worker processes gives what one process gives."""

import gzip
import io
import json
import os
from dataclasses import replace
from datetime import UTC, datetime

import psutil
import pytest

from include.ingestion import chunks
from include.ingestion.config import IngestionSettings
from include.ingestion.documents import DocumentEncoder, Provenance
from include.ingestion.prepare import LOAD, QUARANTINE, prepare_object
from include.ingestion.report import CORRUPT_GZIP, INVALID_ENCODING
from include.ingestion.spool import Spool

PROVENANCE = Provenance(
    "acme-health", "cdx-acme-health", "incoming/Patient.000.ndjson", "v1", '"e"',
    datetime(2025, 1, 2, tzinfo=UTC), "run-1",
)  # fmt: skip


def _patient(number: int, name: str = "n") -> bytes:
    record = {"resourceType": "Patient", "id": f"p{number}", "name": [{"text": name}]}
    return json.dumps(record).encode() + b"\n"


def _messy_export(lines: int) -> bytes:
    """Patients with a bad line every 97 lines, repeated ids and a blank line."""
    out = []
    for number in range(1, lines + 1):
        if number % 97 == 0:
            out.append(b'{"resourceType": "Observation", "id": "x"}\n')
        elif number % 89 == 0:
            out.append(b"{broken\n")
        elif number % 41 == 0:
            out.append(_patient(number - 1, "again"))
        elif number == 500:
            out.append(b"   \n")
        elif number == 1500:
            out.append(b'{"resourceType": "Patient", "id": "' + b"z" * 5000 + b'"}\n')
        else:
            out.append(_patient(number))
    return b"".join(out)


def _prepare(data: bytes, processes: int, name: str = "Patient.000.ndjson", **changes):
    settings = replace(
        IngestionSettings(),
        parse_processes=processes,
        max_record_bytes=4096,
        max_bad_share=0.5,
        batch_size=100,
        **changes,
    )
    with Spool(settings.batch_size) as spool:
        prepared = prepare_object(
            io.BytesIO(data),
            f"incoming/{name}",
            DocumentEncoder(PROVENANCE),
            spool,
            settings,
            "acme-health/",
        )
        batches = [(batch.lines, batch.statements) for batch in spool.read_batches()]
        documents = spool.documents
    return prepared, batches, documents


def _all_gone(pids: list[int]) -> bool:
    return bool(pids) and not any(psutil.pid_exists(pid) for pid in pids)


@pytest.mark.parametrize("processes", [2, 3])
def test_workers_match_one_process(processes, worker_pids):
    data = _messy_export(3000)
    single, single_batches, single_documents = _prepare(data, 1)
    assert worker_pids == []
    parallel, parallel_batches, parallel_documents = _prepare(data, processes)
    assert len(worker_pids) == processes
    assert single.parse_processes == 1
    assert parallel.parse_processes == processes
    assert single.decision == parallel.decision == LOAD
    assert {**single.summary(), "parse_processes": processes} == parallel.summary()
    assert single.report.errors == parallel.report.errors
    assert dict(single.report.counts) == dict(parallel.report.counts)
    assert single.sha256 == parallel.sha256
    assert parallel_batches == single_batches
    assert parallel_documents == single_documents == sum(len(lines) for lines, _ in single_batches)
    assert single.duplicate_keys > 0
    assert len(parallel_batches) > 2
    assert all(len(lines) <= 100 for lines, _ in parallel_batches)
    assert _all_gone(worker_pids)


def test_rejecting_line_in_later_chunk(worker_pids):
    lines = [_patient(number) for number in range(1, 1001)]
    lines[749] = b'{"resourceType": "Patient", "id": "caf\xe9"}\n'
    lines[10] = b"{broken\n"
    prepared, _, _ = _prepare(b"".join(lines), 2)
    assert prepared.decision == QUARANTINE
    assert prepared.reason == INVALID_ENCODING
    assert prepared.details["line"] == 750
    assert [error["line"] for error in prepared.report.errors] == [11]
    assert _all_gone(worker_pids)


def test_truncated_gzip_stops_workers(worker_pids):
    lines = [_patient(number, name="n" * 900) for number in range(1, 5001)]
    data = gzip.compress(b"".join(lines))  # About 5 MB decompressed, so several reads and chunks.
    prepared, _, _ = _prepare(data[: len(data) // 2], 2, name="Patient.000.ndjson.gz")
    assert prepared.decision == QUARANTINE
    assert prepared.reason == CORRUPT_GZIP
    assert len(worker_pids) == 2
    assert _all_gone(worker_pids)


def _break_worker_on(monkeypatch, record_id: str, action) -> None:
    """Make the record check call ``action()`` for the record ``record_id``."""
    original = chunks.check_fhir_resource

    def check(record, resource_type):
        if record.get("id") == record_id:
            action()
        return original(record, resource_type)

    monkeypatch.setattr(chunks, "check_fhir_resource", check)


def _raise_memory_error():
    raise MemoryError("simulated failure while parsing")


@pytest.mark.parametrize(
    ("record_id", "action", "message"),
    [
        ("p777", _raise_memory_error, "parse worker . failed: MemoryError"),
        ("p333", lambda: os._exit(7), "parse worker . exited with code 7"),
    ],
)
def test_broken_worker_fails_the_parse(monkeypatch, worker_pids, record_id, action, message):
    _break_worker_on(monkeypatch, record_id, action)
    data = b"".join(_patient(number) for number in range(1, 1001))
    with pytest.raises(RuntimeError, match=message):
        _prepare(data, 2)
    assert _all_gone(worker_pids)


def test_small_object_starts_no_worker(worker_pids):
    prepared, batches, _ = _prepare(b"".join(_patient(n) for n in range(1, 51)), 4)
    assert prepared.valid_records == 50
    assert [len(lines) for lines, _ in batches] == [50]
    assert worker_pids == []


def test_worker_title_names_the_object(monkeypatch, worker_pids):
    def report_title():
        from setproctitle import getproctitle

        raise RuntimeError(getproctitle())

    _break_worker_on(monkeypatch, "p5", report_title)
    data = b"".join(_patient(number) for number in range(1, 1001))
    expected = "cdx-parse-worker cdx-acme-health/incoming/Patient.000.ndjson"
    with pytest.raises(RuntimeError, match=expected):
        _prepare(data, 2)
