"""Parse an object's chunks in worker processes and hand the results back in order.

Parsing, validating and BSON-encoding records is CPU-bound Python, so one
process parses at most one core's worth. With ``processes`` above 1, the
task's process only reads the object, cuts it into chunks and sends them,
in turn, to that many forked worker processes. Each worker parses its
chunks and appends their batches to a spool file of its own, then returns
a small :class:`ChunkResult` with the batches' positions. The task reads the
results in the order it sent the chunks, so the spool's index,
the error report and the counts come out exactly as if one process had
parsed the whole object. At most two chunks per worker are in flight.

A worker writes its chunk's bad-record list to its spool file too, so a
result stays a few hundred bytes, well within the buffer of the socket
pair between them. A worker therefore does not wait on the task to read
its result while the task waits to send it a chunk.

An object that fits in one chunk is parsed in the task's process and
starts no worker. Workers are forked, so they start in milliseconds and
share the task's memory pages until they write to them. They ignore
SIGINT (the task handles it) and, on Linux, are killed when the task's
process dies.
"""

from __future__ import annotations

import ctypes
import gc
import json
import multiprocessing
import os
import signal
import struct
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import IO

from include.ingestion.chunks import (
    DEFAULT_CHUNK_BYTES,
    ChunkResult,
    FhirChunkParser,
    LongLine,
    iter_line_chunks,
    too_long_message,
)
from include.ingestion.report import RECORD_TOO_LARGE
from include.ingestion.spool import BatchWriter, Spool

CHUNKS_IN_FLIGHT_PER_WORKER = 2
_PR_SET_PDEATHSIG = 1
_STOP_SECONDS = 10

Chunk = tuple[int, memoryview] | LongLine
_FIRST_LINE = struct.Struct("<q")


def parse_chunks(
    stream: IO[bytes],
    parser: FhirChunkParser,
    spool: Spool,
    processes: int,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Iterator[ChunkResult]:
    """Parse ``stream`` into ``spool``'s files and yield each chunk's result in order.

    The caller records the results' batches in the spool and their bad
    records in the error report.
    """
    chunks = iter_line_chunks(stream, parser.max_bytes, spool.batch_size, chunk_bytes)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    in_workers = second is not None and processes > 1
    ordered = _chain([first] if second is None else [first, second], chunks)
    del first, second
    if in_workers:
        yield from _parse_in_workers(ordered, parser, spool, processes)
    else:
        yield from _parse_here(ordered, parser, spool)


def _chain(head: list[Chunk], rest: Iterator[Chunk]) -> Iterator[Chunk]:
    """Yield the chunks of ``head``, then of ``rest``, keeping none once yielded.

    Each chunk is a view of the reader's buffer, so a chunk kept here would
    keep a whole buffer alive.
    """
    while head:
        yield head.pop(0)
    yield from rest


def _parse_here(
    chunks: Iterator[Chunk], parser: FhirChunkParser, spool: Spool
) -> Iterator[ChunkResult]:
    number, file = spool.new_file()
    writer = BatchWriter(file, spool.batch_size, spool.max_batch_bytes)
    encoder = parser.encoder()
    for chunk in chunks:
        if isinstance(chunk, LongLine):
            yield _long_line_result(chunk, parser)
            continue
        first_line, data = chunk
        del chunk  # keep no view of the reader's buffer while the next chunk is read
        result = parser.parse(first_line, bytes(data), encoder, writer)
        del data
        result.file_number = number
        yield result


def _long_line_result(chunk: LongLine, parser: FhirChunkParser) -> ChunkResult:
    result = ChunkResult()
    result.bad.append((chunk.line, RECORD_TOO_LARGE, too_long_message(parser.max_bytes)))
    return result


def _parse_in_workers(
    chunks: Iterator[Chunk], parser: FhirChunkParser, spool: Spool, processes: int
) -> Iterator[ChunkResult]:
    workers = _Workers(parser, spool, processes)
    # For each chunk sent, the number of the worker parsing it. For each long
    # line, its result.
    waiting: deque[int | ChunkResult] = deque()
    limit = processes * CHUNKS_IN_FLIGHT_PER_WORKER
    turn = 0
    try:
        for chunk in chunks:
            if isinstance(chunk, LongLine):
                waiting.append(_long_line_result(chunk, parser))
            else:
                workers.send(turn, chunk)
                del chunk  # keep no view of the reader's buffer while the next is read
                waiting.append(turn)
                turn = (turn + 1) % processes
            while len(waiting) >= limit:
                yield workers.result_of(waiting.popleft(), processes)
        while waiting:
            yield workers.result_of(waiting.popleft(), processes)
    except BaseException:
        workers.kill()
        raise
    workers.stop()


class _Workers:
    """Forked worker processes, each with a pipe and a spool file of its own."""

    def __init__(self, parser: FhirChunkParser, spool: Spool, processes: int):
        context = multiprocessing.get_context("fork")
        provenance = parser.provenance
        self._object = f"s3://{provenance.bucket}/{provenance.key} version {provenance.version_id}"
        self._files: list[tuple[int, IO[bytes]]] = []
        self._pipes: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        # Objects frozen before the fork are left out of the workers' garbage
        # collections, which would otherwise write to (and so copy) every page
        # of the task's heap that contains one.
        already_frozen = gc.get_freeze_count()
        gc.freeze()
        _release_free_heap()
        try:
            for _ in range(processes):
                number, file = spool.new_file()
                ours, theirs = context.Pipe()
                process = context.Process(
                    target=_work,
                    args=(theirs, parser, file, spool.batch_size, spool.max_batch_bytes),
                    name="cdx-parse-worker",
                    daemon=True,
                )
                process.start()
                theirs.close()
                self._files.append((number, file))
                self._pipes.append(ours)
                self._processes.append(process)
        except BaseException:
            self.kill()
            raise
        finally:
            if not already_frozen:
                gc.unfreeze()

    def send(self, worker: int, chunk: tuple[int, memoryview]) -> None:
        """Hand ``chunk`` to worker number ``worker``, without copying its data."""
        first_line, data = chunk
        try:
            self._pipes[worker].send_bytes(_FIRST_LINE.pack(first_line))
            self._pipes[worker].send_bytes(data)
        except (BrokenPipeError, ConnectionResetError):
            raise self._died(worker) from None

    def result_of(self, item: int | ChunkResult, processes: int) -> ChunkResult:
        """Return ``item`` if it is a result, else the next result from worker ``item``.

        The result is marked as parsed by ``processes`` processes.
        """
        if isinstance(item, ChunkResult):
            item.processes = processes
            return item
        try:
            status, payload = self._pipes[item].recv()
        except (EOFError, ConnectionResetError):
            raise self._died(item) from None
        if status != "ok":
            raise RuntimeError(f"parse worker {item} failed: {payload} ({self._object})")
        number, file = self._files[item]
        payload.file_number = number
        payload.processes = processes
        if payload.bad_at is not None:
            offset, length = payload.bad_at
            listed = json.loads(os.pread(file.fileno(), length, offset))
            payload.bad = [(line, reason, message) for line, reason, message in listed]
        return payload

    def _died(self, worker: int) -> RuntimeError:
        process = self._processes[worker]
        process.join(1)
        return RuntimeError(
            f"parse worker {worker} exited with code {process.exitcode} ({self._object})"
        )

    def stop(self) -> None:
        """Tell every worker to finish, and wait for it."""
        for pipe in self._pipes:
            try:
                pipe.send_bytes(b"")
            except OSError:
                pass
        for process in self._processes:
            process.join(_STOP_SECONDS)
        self.kill()

    def kill(self) -> None:
        """End every worker still running, and close the pipes."""
        for process in self._processes:
            if process.is_alive():
                process.kill()
            process.join()
        for pipe in self._pipes:
            pipe.close()


def _work(
    pipe: Connection,
    parser: FhirChunkParser,
    file: IO[bytes],
    batch_size: int,
    max_batch_bytes: int,
) -> None:
    """Parse chunks from ``pipe`` in a worker process until the task sends the stop message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    _set_title(parser)
    encoder = parser.encoder()
    writer = BatchWriter(file, batch_size, max_batch_bytes)
    while True:
        try:
            header = pipe.recv_bytes()
            if not header:
                return
            data = pipe.recv_bytes()
        except EOFError:
            return
        try:
            (first_line,) = _FIRST_LINE.unpack(header)
            result = parser.parse(first_line, data, encoder, writer)
            del data
            if result.bad:
                listed = json.dumps(result.bad).encode("utf-8")
                result.bad_at = (writer.append(listed), len(listed))
                result.bad = []
            file.flush()
        except Exception as exc:  # reported to the task, which raises it
            pipe.send(("error", f"{type(exc).__name__}: {exc}"))
            return
        pipe.send(("ok", result))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies; elsewhere do nothing."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _set_title(parser: FhirChunkParser) -> None:
    """Name the process after its object in ``ps``, where setproctitle is installed."""
    try:
        from setproctitle import setproctitle
    except ImportError:
        return
    provenance = parser.provenance
    setproctitle(f"cdx-parse-worker {provenance.bucket}/{provenance.key}")


def _release_free_heap() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``); elsewhere do nothing.

    Freed buffers of earlier objects stay in the task's heap. A forked
    worker that reuses them writes to pages it shares with the task, and
    both then hold a copy. In the benchmark this cut the peak memory of the
    task and two workers from about 51 to 42 MiB.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
