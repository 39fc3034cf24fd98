"""Timed paths of the ingestion benchmark; the runner calls each in a fresh process.

Every function returns records, seconds and the peak RSS growth during the
timed work (sampled every 10 ms against the RSS just before it).
"""

from __future__ import annotations

import itertools
import resource
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from pymongo import monitoring

# pandas.read_json(lines=True) was fastest with chunks of 2,000 to 5,000
# lines in a sweep from 500 to 100,000 (and the whole file); larger chunks
# are slower and hold more memory. 5,000 gives pandas its best case.
PANDAS_CHUNK_LINES = 5_000


class MemorySampler:
    """Sample memory in a thread: this process's RSS and the PSS of it and its children.

    Forked parse workers share pages with the task until they write to
    them, so their RSS counts those pages again. The proportional set size
    (PSS) splits each shared page among the processes sharing it, so its
    sum over the process tree is the memory they use together. Both peaks
    are reported above this process's value just before the timed work.

    The sampling thread competes with the timed work for the GIL, so it
    stays cheap: RSS every 10 ms, and the PSS sum every 20 ms with the
    children read from /proc/<pid>/task/<pid>/children (about 0.2 ms).
    """

    def __init__(self, interval: float = 0.01):
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._children_file = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children")
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self.pss_baseline = self._process.memory_full_info().pss
        self.pss_peak = self.pss_baseline
        self._cpu_start = _cpu_seconds()
        self.cpu_seconds = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_rss()
        self._sample_pss()
        self.cpu_seconds = _cpu_seconds() - self._cpu_start

    def _run(self) -> None:
        for tick in itertools.count():
            if self._stop.wait(self._interval):
                return
            self._sample_rss()
            if tick % 2:
                self._sample_pss()

    def _sample_rss(self) -> None:
        self.peak = max(self.peak, self._process.memory_info().rss)

    def _children(self) -> list[psutil.Process]:
        try:
            pids = self._children_file.read_text().split()
        except OSError:
            return self._process.children(recursive=True)
        return [psutil.Process(int(pid)) for pid in pids]

    def _sample_pss(self) -> None:
        total = 0
        try:
            processes = [self._process, *self._children()]
        except psutil.Error:
            processes = [self._process]
        for process in processes:
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                pass  # a worker that has just exited
        self.pss_peak = max(self.pss_peak, total)

    @property
    def growth_mib(self) -> float:
        """Peak RSS of this process above the baseline, in MiB."""
        return (self.peak - self.baseline) / (1024 * 1024)

    @property
    def tree_growth_mib(self) -> float:
        """Peak PSS summed over this process and its children, above the baseline, in MiB."""
        return (self.pss_peak - self.pss_baseline) / (1024 * 1024)

    def figures(self) -> dict[str, float]:
        """Return the memory and CPU figures of the sampled work."""
        return {
            "rss_growth_mib": self.growth_mib,
            "tree_growth_mib": self.tree_growth_mib,
            "cpu_seconds": self.cpu_seconds,
        }


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its children that have been waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _settings(processes: int | None):
    """Return the default ingestion settings, with ``processes`` parse processes if given."""
    from dataclasses import replace

    from include.ingestion.config import IngestionSettings

    settings = IngestionSettings()
    return settings if processes is None else replace(settings, parse_processes=processes)


def _parse_file(path: str, settings, spool):
    """Run prepare_object on the file at ``path`` for the benchmark's client, into ``spool``."""
    from datetime import UTC, datetime

    from include.ingestion.documents import DocumentEncoder, Provenance
    from include.ingestion.prepare import prepare_object

    key = f"incoming/{Path(path).name}"
    provenance = Provenance(
        "bench-client", "cdx-bench-client", key, "v1", '"etag"', datetime.now(UTC), "bench"
    )
    with open(path, "rb") as body:
        return prepare_object(
            body, key, DocumentEncoder(provenance), spool, settings, "bench-client/"
        )


def run_bare(paths: list[str]) -> dict[str, Any]:
    """Parse every line with json.loads and nothing else."""
    import json as json_module

    loads = json_module.loads
    records = 0
    with MemorySampler() as memory:
        started = time.perf_counter()
        for path in paths:
            with open(path, "rb") as file:
                for line in file:
                    loads(line)
                    records += 1
        elapsed = time.perf_counter() - started
    return {"records": records, "seconds": elapsed, **memory.figures()}


def run_pipeline(paths: list[str], spool_dir: str, processes: int | None = None) -> dict[str, Any]:
    """Run the ingestion parse pass (prepare_object) on each file, spooling to ``spool_dir``.

    ``processes`` sets INGESTION_PARSE_PROCESSES (default: the setting's default).
    """
    from include.ingestion.spool import Spool

    settings = _settings(processes)
    records = batches = bad = 0
    with MemorySampler() as memory:
        started = time.perf_counter()
        for path in paths:
            with Spool(settings.batch_size, spool_dir) as spool:
                prepared = _parse_file(path, settings, spool)
                spool.flush()
                records += prepared.valid_records
                bad += prepared.bad_records
                batches += spool.batches
        elapsed = time.perf_counter() - started
    return {
        "records": records,
        "bad_records": bad,
        "batches": batches,
        "seconds": elapsed,
        "processes": settings.parse_processes,
        **memory.figures(),
    }


def run_pipeline_with_batches(
    paths: list[str], spool_dir: str, processes: int | None = None
) -> dict[str, Any]:
    """Run the parse pass, then read the spool back and build each batch for pymongo.

    The batches are built by ``loader.batch_statements``, the function
    ``loader.write_batch`` calls before it sends the update command, so this
    times everything up to the database write.
    """
    from include.ingestion.loader import batch_statements
    from include.ingestion.spool import Spool

    settings = _settings(processes)
    records = batches = operations = 0
    parse_seconds = 0.0
    with MemorySampler() as memory:
        started = time.perf_counter()
        for path in paths:
            parse_started = time.perf_counter()
            with Spool(settings.batch_size, spool_dir) as spool:
                prepared = _parse_file(path, settings, spool)
                parse_seconds += time.perf_counter() - parse_started
                for batch in spool.read_batches():
                    operations += len(batch_statements(batch))
                    batches += 1
                records += prepared.valid_records
        elapsed = time.perf_counter() - started
    assert operations == records, (operations, records)
    return {
        "records": records,
        "batches": batches,
        "seconds": elapsed,
        "parse_seconds": parse_seconds,
        "processes": settings.parse_processes,
        **memory.figures(),
    }


def run_pipeline_without_bson(
    paths: list[str], spool_dir: str, processes: int | None = None
) -> dict[str, Any]:
    """Run the parse pass with BSON encoding replaced by a constant, to show its share.

    A design that hands dicts to pymongo does this encoding inside its
    database write, so this figure is the one to compare with such designs.
    """
    from include.ingestion import documents

    def encode_nothing(self, record, key, line, record_hash):
        return b"\x05\x00\x00\x00\x00"

    documents.DocumentEncoder.upsert = encode_nothing
    return run_pipeline(paths, spool_dir, processes)


def run_dict_batches(paths: list[str]) -> dict[str, Any]:
    """Model the common alternative: lists of 1,000 document dicts handed to pymongo.

    Same reading, parsing, validation and keys as the pipeline, but no spool:
    each document is a dict with ``_id``, ``client_id`` and a ``_provenance``
    dict, kept in a list until 1,000 are collected (pymongo would encode them
    inside ``bulk_write``). Such a design cannot quarantine a file before
    loading it; it is here only to compare costs.
    """
    import hashlib
    import json as json_module
    from datetime import UTC, datetime

    from include.ingestion.readers import iter_lines
    from include.ingestion.records import check_fhir_resource

    records = batches = 0
    with MemorySampler() as memory:
        started = time.perf_counter()
        for path in paths:
            resource_type = Path(path).name.split(".", 1)[0]
            base = {"client_id": "bench-client", "bucket": "cdx-bench-client", "key": path,
                    "version_id": "v1", "etag": '"e"', "ingested_at": datetime.now(UTC),
                    "dag_run_id": "bench"}  # fmt: skip
            batch: list[dict[str, Any]] = []
            with open(path, "rb") as file:
                for line_no, line in iter_lines(file, 16 * 1024 * 1024):
                    record = json_module.loads(line.decode("utf-8"))
                    key = (
                        f"bench-client/{resource_type}/{check_fhir_resource(record, resource_type)}"
                    )
                    provenance = base.copy()
                    provenance["line"] = line_no
                    provenance["record_hash"] = hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()
                    record["_id"] = key
                    record["client_id"] = "bench-client"
                    record["_provenance"] = provenance
                    batch.append(record)
                    records += 1
                    if len(batch) == 1000:
                        batches += 1
                        batch = []
            batches += 1 if batch else 0
        elapsed = time.perf_counter() - started
    return {
        "records": records,
        "batches": batches,
        "seconds": elapsed,
        **memory.figures(),
    }


def run_pandas(paths: list[str]) -> dict[str, Any]:
    """Read each file with pandas.read_json(lines=True) in chunks of PANDAS_CHUNK_LINES lines."""
    import pandas as pd

    records = 0
    with MemorySampler() as memory:
        started = time.perf_counter()
        for path in paths:
            with pd.read_json(path, lines=True, chunksize=PANDAS_CHUNK_LINES) as reader:
                for frame in reader:
                    records += len(frame)
        elapsed = time.perf_counter() - started
    return {"records": records, "seconds": elapsed, **memory.figures()}


class UpdateCounter(monitoring.CommandListener):
    """Count the ``update`` commands pymongo sends (one bulk_write may send several)."""

    def __init__(self):
        self.count = 0

    def started(self, event):
        if event.command_name == "update":
            self.count += 1

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def _first_lines(path: str, directory: str, count: int) -> Path:
    sample = Path(directory) / "write-sample.ndjson"
    with open(path, "rb") as source, open(sample, "wb") as out:
        out.writelines(itertools.islice(source, count))
    return sample


def run_writes(path: str, spool_dir: str, documents: int, mongo_uri: str) -> dict[str, Any]:
    """Load the first ``documents`` records of ``path``; count bulk writes and update commands."""
    from datetime import UTC, datetime

    from pymongo import MongoClient

    from include.ingestion.config import IngestionSettings
    from include.ingestion.documents import DocumentEncoder, Provenance
    from include.ingestion.loader import load_spool
    from include.ingestion.prepare import prepare_object
    from include.ingestion.report import ErrorReport
    from include.ingestion.spool import Spool

    sample = _first_lines(path, spool_dir, documents)
    key = f"incoming/{Path(path).name}"
    settings = IngestionSettings()
    encoder = DocumentEncoder(
        Provenance("bench-client", "cdx-bench-client", key, "v1", '"e"', datetime.now(UTC), "bench")
    )
    counter = UpdateCounter()
    client = MongoClient(mongo_uri, event_listeners=[counter])
    collection = client["bench"][f"fhir_{Path(path).name.split('.')[0]}"]
    collection.drop()
    try:
        with open(sample, "rb") as body, Spool(settings.batch_size, spool_dir) as spool:
            prepare_object(body, key, encoder, spool, settings, "bench-client/")
            started = time.perf_counter()
            counts = load_spool(collection, spool, ErrorReport())
            elapsed = time.perf_counter() - started
        stored = collection.count_documents({})
    finally:
        client["bench"].drop_collection(collection.name)
        client.close()
    return {
        "documents": stored,
        "seconds": elapsed,
        "bulk_write_calls": counts.bulk_writes,
        "update_commands": counter.count,
        "inserted": counts.inserted,
    }
