"""Fixtures for the secret service: a real uvicorn TLS server on 127.0.0.1.

Each server runs in a thread of the test process with an injected clock and
the test's own MongoDB database (``mongo_db``), so tests can move time and
read storage directly.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pymongo.database import Database

from include.secret_service.api import create_app
from include.secret_service.client import SecretServiceClient
from include.secret_service.server import make_uvicorn_server
from include.secret_service.settings import RateLimits, Settings
from include.secret_service.tls import ensure_dev_certificate

SERVICE_TOKEN = "test-service-token-0123456789abcdefghijklmnop"
# Generous enough that only the rate-limit tests ever hit a limit.
UNLIMITED = RateLimits(
    reveal_capacity=100_000,
    reveal_per_minute=100_000.0,
    receipt_capacity=100_000,
    receipt_per_minute=100_000.0,
    failure_capacity=100_000,
    failure_per_minute=100_000.0,
)
STARTUP_TIMEOUT_SECONDS = 15


class FakeClock:
    """Clock that returns a fixed time until a test advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)


@dataclass
class RunningService:
    """A started service and what tests need to talk to it."""

    base_url: str
    ca_file: Path
    clock: FakeClock
    database: Database
    settings: Settings
    clients: list[SecretServiceClient | httpx.Client] = field(default_factory=list)

    def client(self, token: str | None = SERVICE_TOKEN) -> SecretServiceClient:
        """Return a Python client that trusts the test certificate."""
        client = SecretServiceClient(self.base_url, token, ca_file=self.ca_file)
        self.clients.append(client)
        return client

    def http(self) -> httpx.Client:
        """Return a raw HTTPS client for requests the Python client would not send."""
        client = httpx.Client(
            base_url=self.base_url,
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=30,
        )
        self.clients.append(client)
        return client

    def secrets(self):
        return self.database["secrets"]


@pytest.fixture(scope="session")
def dev_cert(tmp_path_factory) -> tuple[Path, Path]:
    """Return a development certificate and key shared by the session's servers."""
    return ensure_dev_certificate(tmp_path_factory.mktemp("tls"))


def _bind_loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@pytest.fixture
def start_service(mongo_db, dev_cert) -> Iterator[Callable[..., RunningService]]:
    """Return a function that starts a service; every started one stops after the test.

    Keyword arguments override :class:`Settings` fields.
    """
    cert_path, key_path = dev_cert
    started = []

    def start(clock: FakeClock | None = None, **overrides) -> RunningService:
        sock = _bind_loopback()
        port = sock.getsockname()[1]
        settings = Settings(token=SERVICE_TOKEN, host="127.0.0.1", port=port, rate_limits=UNLIMITED)
        settings = replace(settings, **overrides)
        clock = clock or FakeClock()
        server = make_uvicorn_server(
            create_app(settings, mongo_db, clock), settings, cert_path, key_path
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="secret-service", daemon=True
        )
        thread.start()

        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the secret service did not start; see the captured log")
            time.sleep(0.02)
        running = RunningService(
            base_url=f"https://127.0.0.1:{port}",
            ca_file=cert_path,
            clock=clock,
            database=mongo_db,
            settings=settings,
        )
        started.append((running, server, thread, sock))
        return running

    yield start

    for running, server, thread, sock in started:
        for client in running.clients:
            client.close()
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def service(start_service) -> RunningService:
    """Return a running service with rate limits out of the way."""
    return start_service()
