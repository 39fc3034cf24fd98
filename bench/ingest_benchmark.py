"""Benchmark the ingestion parse pass against a bare json.loads loop and pandas.

    PYTHONPATH=. .venv/bin/python -m bench.ingest_benchmark [--size-mb 1024]

Steps, in one run over the same generated export (``bench/.data/``):

1. generate a FHIR NDJSON export of ``--size-mb`` MiB from sample shapes
   with fresh ids (see ``bench/export_generator.py``);
2. read every file once, so that each path reads them from the page cache;
3. time, each in a fresh process so that peak memory is its own, in
   ``--rounds`` rounds (default 2), keeping each path's fastest round:
   * ``bare``: ``for line in file: json.loads(line)``;
   * ``pipeline``: ``prepare_object`` (read, parse, validate, key, encode
     and spool the upsert statements; no database), with the default number
     of parse processes (one per core, up to 4);
   * ``pipeline_with_batches``: the same, then read the spool back and build
     each batch for pymongo (everything but the update command itself);
   * ``pipeline_one_process``: the same in the task's process alone;
   * ``pipeline_without_bson``: the parse pass in one process with BSON
     encoding left out;
   * ``dict_batches``: the common alternative design, dict batches for pymongo;
   * ``pandas``: ``pandas.read_json(path, lines=True, chunksize=N)``;
4. load the first ``--write-docs`` documents of one file into a MongoDB
   (the stand-in by default) and count the bulk writes it took.

Memory is sampled every 10 to 20 ms: the RSS of the timing process, and the PSS
summed over it and its parse workers, each against its value just before
the timed work (see ``bench.measures.MemorySampler``). CPU time counts the
workers too. The results are printed as Markdown for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from bench.export_generator import generate_export, load_shapes
from bench.measures import (
    PANDAS_CHUNK_LINES,
    run_bare,
    run_dict_batches,
    run_pandas,
    run_pipeline,
    run_pipeline_with_batches,
    run_pipeline_without_bson,
    run_writes,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "bench" / ".data"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _in_fresh_process(function, *args) -> dict[str, Any]:
    with ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        return pool.submit(function, *args).result()


def _start_standin() -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.mongo_standin",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"mongodb://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"the MongoDB stand-in did not listen on 127.0.0.1:{port} within 30 s")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="export size in MiB (default 1024)"
    )
    parser.add_argument(
        "--shapes",
        type=Path,
        help="folder of <Type>.<n>.ndjson files whose records serve as shapes "
        "(default: the project's synthetic sample from include.sample_data)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="timed rounds per path, fastest kept (default 2)"
    )
    parser.add_argument(
        "--write-docs",
        type=int,
        default=20_000,
        help="documents loaded in the database write measurement (default 20000)",
    )
    parser.add_argument(
        "--mongo-uri",
        help="MongoDB for the write measurement (default: a MongoDB stand-in started for the run)",
    )
    return parser.parse_args(argv)


def measure_writes(path: str, spool_dir: str, documents: int, mongo_uri: str | None) -> dict:
    """Time the database writes, against ``mongo_uri`` or a stand-in started here."""
    standin = None
    if not mongo_uri:
        standin, mongo_uri = _start_standin()
    try:
        writes = _in_fresh_process(run_writes, path, spool_dir, documents, mongo_uri)
    finally:
        if standin:
            standin.terminate()
            standin.wait(timeout=30)
    writes["server"] = "the MongoDB stand-in (mongomock)" if standin else "--mongo-uri"
    return writes


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    shapes, source = load_shapes(args.shapes)
    spool_dir = DATA_DIR / "spool"
    spool_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    export_name = f"export-{args.size_mb}mib-{args.shapes.name if args.shapes else 'synthetic'}"
    files = generate_export(DATA_DIR / export_name, args.size_mb * 2**20, shapes)
    paths = [str(path) for path in files.values()]
    size = sum(os.path.getsize(path) for path in paths)
    ready = time.perf_counter() - started
    print(f"export: {size / 2**20:.0f} MiB, {len(paths)} files, {source}, {ready:.0f} s")

    results: dict[str, Any] = {"export_mib": size / 2**20, "files": len(paths), "source": source}
    runs = {
        "bare": (run_bare, paths),
        "pipeline": (run_pipeline, paths, str(spool_dir)),
        "pipeline_with_batches": (run_pipeline_with_batches, paths, str(spool_dir)),
        "pipeline_one_process": (run_pipeline_with_batches, paths, str(spool_dir), 1),
        "pipeline_without_bson": (run_pipeline_without_bson, paths, str(spool_dir), 1),
        "dict_batches": (run_dict_batches, paths),
        "pandas": (run_pandas, paths),
    }
    for path in paths:
        with open(path, "rb") as file:
            while file.read(2**24):
                pass
    for round_number in range(1, args.rounds + 1):
        for name, (function, *arguments) in runs.items():
            result = _in_fresh_process(function, *arguments)
            result["round"] = round_number
            print(name, result, flush=True)
            results.setdefault(f"{name}_rounds", []).append(result)
            if name not in results or result["seconds"] < results[name]["seconds"]:
                results[name] = result

    largest = max(paths, key=os.path.getsize)
    results["writes"] = measure_writes(largest, str(spool_dir), args.write_docs, args.mongo_uri)
    print("writes", results["writes"], flush=True)
    results["machine"] = (
        f"{_cpu_model()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()}"
    )
    (DATA_DIR / "results.json").write_text(json.dumps(results, indent=2))
    print(render_markdown(results))


PATHS = {
    "bare": "bare `json.loads` loop",
    "pipeline": "pipeline parse pass",
    "pipeline_with_batches": "pipeline parse pass, spool read-back and batch building",
    "pipeline_one_process": "the same in one process",
    "pipeline_without_bson": "pipeline parse pass in one process, without BSON encoding",
    "dict_batches": "alternative: batches of 1,000 dicts for pymongo, no spool",
    "pandas": f"pandas `read_json(lines=True, chunksize={PANDAS_CHUNK_LINES})`",
}


def render_markdown(results: dict[str, Any]) -> str:
    """Format the results as the tables in docs/benchmarks.md."""
    rate = {name: results[name]["records"] / results[name]["seconds"] for name in PATHS}
    pipeline, writes = results["pipeline"], results["writes"]
    with_batches = results["pipeline_with_batches"]
    lines = [
        f"Export: {results['export_mib']:.0f} MiB, {pipeline['records']:,} records in "
        f"{results['files']} files, shapes from {results['source']}.",
        "",
        "| path | processes | records/s | seconds | slower round (s) | x bare loop | CPU s "
        "| peak RSS growth (MiB) | peak PSS growth, all processes (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label in PATHS.items():
        result = results[name]
        slowest = max(run["seconds"] for run in results.get(f"{name}_rounds", [result]))
        lines.append(
            f"| {label} | {result.get('processes', 1)} | {rate[name]:,.0f} | "
            f"{result['seconds']:.1f} | {slowest:.1f} | {rate[name] / rate['bare']:.2f} | "
            f"{result['cpu_seconds']:.1f} | {result['rss_growth_mib']:.1f} | "
            f"{result['tree_growth_mib']:.1f} |"
        )
    per_thousand = pipeline["batches"] * 1000 / pipeline["records"]
    lines += [
        "",
        f"- pipeline / bare loop: {rate['pipeline'] / rate['bare']:.2f}x; "
        f"pipeline / pandas: {rate['pipeline'] / rate['pandas']:.2f}x",
        f"- with spool read-back and batch building: "
        f"{rate['pipeline_with_batches'] / rate['bare']:.2f}x the bare loop, "
        f"{rate['pipeline_with_batches'] / rate['pandas']:.2f}x pandas; of its "
        f"{with_batches['seconds']:.1f} s the parse pass took "
        f"{with_batches['parse_seconds']:.1f} s",
        f"- in one process: {rate['pipeline_one_process'] / rate['bare']:.2f}x the bare loop, "
        f"{rate['pipeline_one_process'] / rate['pandas']:.2f}x pandas",
        f"- batches spooled for the whole export: {pipeline['batches']:,} "
        f"({per_thousand:.3f} bulk writes per 1,000 documents)",
        f"- database writes to {writes['server']}: {writes['documents']:,} documents in "
        f"{writes['seconds']:.1f} s ({writes['documents'] / writes['seconds']:,.0f} docs/s), "
        f"{writes['bulk_write_calls']} batches sent as {writes['update_commands']} "
        "update commands",
        f"- machine: {results['machine']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
