"""The stand-in's TCP server: listener, one thread per connection, background jobs.

Background threads:

* the TTL monitor deletes expired documents every ``ttl_interval_seconds``
  (mongod: 60 s) and closes cursors idle for 10 minutes;
* with a snapshot path, the data is saved every ``snapshot_interval_seconds``
  when it changed, and once more on :meth:`StandinServer.stop`.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import bson.errors

from include.mongo_standin.commands import run_command
from include.mongo_standin.context import CommandContext
from include.mongo_standin.cursors import CursorRegistry
from include.mongo_standin.errors import FAILED_TO_PARSE, INTERNAL_ERROR, CommandError
from include.mongo_standin.snapshot import load_snapshot, save_snapshot
from include.mongo_standin.storage import Storage
from include.mongo_standin.wire import ProtocolError, Request, encode_reply, read_request

log = logging.getLogger(__name__)

DEFAULT_TTL_INTERVAL_SECONDS = 60.0
DEFAULT_SNAPSHOT_INTERVAL_SECONDS = 30.0
# How often the accept loop checks for stop() when no client connects.
_ACCEPT_POLL_SECONDS = 0.5


def _check_loopback(host: str) -> None:
    """Reject non-loopback addresses, because the stand-in has no authentication and no TLS."""
    for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(info[4][0])
        if not address.is_loopback:
            raise ValueError(
                f"host {host!r} resolves to {address}, which is not a loopback address. "
                "The MongoDB stand-in has no authentication, so bind it to 127.0.0.1."
            )


class StandinServer:
    """A MongoDB wire-protocol server over mongomock; see :func:`start_standin`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        snapshot_path: str | Path | None = None,
        ttl_interval_seconds: float = DEFAULT_TTL_INTERVAL_SECONDS,
        snapshot_interval_seconds: float = DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
    ):
        if ttl_interval_seconds <= 0 or snapshot_interval_seconds <= 0:
            raise ValueError("ttl_interval_seconds and snapshot_interval_seconds must be positive")
        _check_loopback(host)
        self.host = host
        self.port = port
        self.snapshot_path = Path(snapshot_path) if snapshot_path else None
        self.ttl_interval_seconds = ttl_interval_seconds
        self.snapshot_interval_seconds = snapshot_interval_seconds

        self.storage = Storage()
        self.cursors = CursorRegistry()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: dict[int, tuple[socket.socket, threading.Thread]] = {}
        self._connections_lock = threading.Lock()
        self._connection_ids = itertools.count(1)
        self._reply_ids = itertools.count(1)
        self._save_lock = threading.Lock()
        self._saved_change_count = 0
        self._stopped = False

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"

    def start(self) -> StandinServer:
        """Load the snapshot, bind the port and start the background threads.

        :raises OSError: if the port cannot be bound (for example, already in use).
        :raises SnapshotError: if the snapshot file exists but cannot be read.
        """
        if self.snapshot_path:
            load_snapshot(self.storage, self.snapshot_path)
            self._saved_change_count = self.storage.change_count

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        listener.settimeout(_ACCEPT_POLL_SECONDS)
        self._listener = listener
        self.port = listener.getsockname()[1]

        self._start_thread(self._accept_loop, "mongo-standin-accept")
        self._start_thread(self._ttl_monitor_loop, "mongo-standin-ttl-monitor")
        if self.snapshot_path:
            self._start_thread(self._snapshot_loop, "mongo-standin-snapshot")
        log.info("listening on %s:%d", self.host, self.port)
        return self

    def _start_thread(self, target, name: str, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def stop(self, timeout: float = 10.0) -> None:
        """Close the listener and every connection, join the threads, save the snapshot."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self._listener is not None:
            try:
                # On Linux, shutdown wakes a thread blocked in accept() at once.
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # elsewhere the accept loop notices the stop within _ACCEPT_POLL_SECONDS
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout)

        # The accept thread has ended, so no connection is added from here on.
        # Shutting a socket down ends its thread's blocking read.
        with self._connections_lock:
            connections = list(self._connections.values())
        for connection, _thread in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client already closed it
        threads = self._threads + [thread for _connection, thread in connections]
        for thread in threads:
            thread.join(timeout)
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            log.warning("threads still running %.0f s after stop: %s", timeout, alive)

        if self.snapshot_path:
            self.save_snapshot(only_if_changed=False)
        log.info("stopped the server on %s:%d", self.host, self.port)

    def __enter__(self) -> StandinServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def save_snapshot(self, only_if_changed: bool = True) -> bool:
        """Save the data to the snapshot path and return whether a file was written."""
        if not self.snapshot_path:
            raise ValueError("this server was started without a snapshot path")
        with self._save_lock:
            change_count = self.storage.change_count
            if only_if_changed and change_count == self._saved_change_count:
                return False
            save_snapshot(self.storage, self.snapshot_path)
            self._saved_change_count = change_count
            return True

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if not self._stopping.is_set():
                    log.exception(
                        "accept failed on %s:%d, so no new connections are taken: "
                        "restart the stand-in", self.host, self.port
                    )
                return
            connection.settimeout(None)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection_id = next(self._connection_ids)
            thread = threading.Thread(
                target=self._serve_connection,
                args=(connection, connection_id, peer),
                name=f"mongo-standin-conn-{connection_id}",
                daemon=True,
            )
            with self._connections_lock:
                self._connections[connection_id] = (connection, thread)
            thread.start()

    def _serve_connection(self, connection: socket.socket, connection_id: int, peer) -> None:
        log.debug("connection %d opened from %s", connection_id, peer)
        try:
            with connection:
                self._handle_requests(connection, connection_id)
        except ProtocolError as exc:
            log.warning("closing connection %d from %s: %s", connection_id, peer, exc)
        except OSError as exc:
            if not self._stopping.is_set():
                log.debug("connection %d from %s failed: %s", connection_id, peer, exc)
        except Exception:
            log.exception("connection %d from %s failed unexpectedly", connection_id, peer)
        finally:
            with self._connections_lock:
                self._connections.pop(connection_id, None)
            log.debug("connection %d closed", connection_id)

    def _handle_requests(self, connection: socket.socket, connection_id: int) -> None:
        while not self._stopping.is_set():
            request = read_request(connection)
            if request is None:
                return
            reply = self._execute(request, connection_id)
            if request.more_to_come:
                continue  # the client sent an unacknowledged write (w: 0)
            connection.sendall(self._encode(request, reply))

    def _execute(self, request: Request, connection_id: int) -> dict[str, Any]:
        database = request.body.get("$db")
        if not isinstance(database, str) or not database:
            error = CommandError(FAILED_TO_PARSE, "the request is missing the $db field")
            return error.to_document()
        context = CommandContext(self.storage, self.cursors, database, connection_id)
        return run_command(context, request.body)

    def _encode(self, request: Request, reply: dict[str, Any]) -> bytes:
        try:
            return encode_reply(request, next(self._reply_ids), reply)
        except (bson.errors.InvalidDocument, OverflowError) as exc:
            log.error("cannot encode the reply to request %d: %s", request.request_id, exc)
            error = CommandError(INTERNAL_ERROR, f"the reply cannot be encoded as BSON: {exc}")
            return encode_reply(request, next(self._reply_ids), error.to_document())

    def _ttl_monitor_loop(self) -> None:
        while not self._stopping.wait(self.ttl_interval_seconds):
            try:
                self.storage.remove_expired_documents()
                closed = self.cursors.remove_idle()
                if closed:
                    log.info("closed %d idle cursors", closed)
            except Exception:
                log.exception("TTL monitor pass failed, retrying in %.1f s",
                              self.ttl_interval_seconds)

    def _snapshot_loop(self) -> None:
        while not self._stopping.wait(self.snapshot_interval_seconds):
            try:
                self.save_snapshot()
            except OSError:
                log.exception("periodic snapshot to %s failed, retrying in %.0f s",
                              self.snapshot_path, self.snapshot_interval_seconds)


def start_standin(
    host: str = "127.0.0.1",
    port: int = 0,
    snapshot_path: str | Path | None = None,
    ttl_interval_seconds: float = DEFAULT_TTL_INTERVAL_SECONDS,
    snapshot_interval_seconds: float = DEFAULT_SNAPSHOT_INTERVAL_SECONDS,
) -> StandinServer:
    """Start a stand-in that is already listening, serving from background threads.

    :param port: TCP port; 0 picks a free one, readable afterwards as ``.port``.
    :param snapshot_path: file to load at start and to save periodically and on stop.
    :param ttl_interval_seconds: seconds between two TTL monitor passes.
    :param snapshot_interval_seconds: seconds between two checks for unsaved changes.
    :return: the server; call ``.stop()`` to shut it down.
    """
    server = StandinServer(
        host, port, snapshot_path, ttl_interval_seconds, snapshot_interval_seconds
    )
    return server.start()
