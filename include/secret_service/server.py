"""Run the secret service over HTTPS with uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from include.mongo import get_client, get_database
from include.secret_service.api import create_app
from include.secret_service.settings import Settings
from include.secret_service.store import Clock, utc_now
from include.secret_service.tls import ensure_dev_certificate

log = logging.getLogger(__name__)

# The health check must respond well within a load balancer's timeout even
# when MongoDB is down, so server selection gives up after 5 seconds.
MONGO_SERVER_SELECTION_TIMEOUT_MS = 5_000
GRACEFUL_SHUTDOWN_SECONDS = 5


def configure_logging() -> None:
    """Log to stderr at ``SECRET_SERVICE_LOG_LEVEL`` (default INFO).

    pymongo's DEBUG command log prints stored documents, including hashes and
    ciphertext, so pymongo stays at WARNING whatever the level.
    """
    level = os.environ.get("SECRET_SERVICE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pymongo").setLevel(logging.WARNING)


def tls_files(settings: Settings) -> tuple[Path, Path]:
    """Return the configured certificate and key, or the development pair."""
    if settings.tls_cert and settings.tls_key:
        log.info("using TLS certificate %s", settings.tls_cert)
        return settings.tls_cert, settings.tls_key
    return ensure_dev_certificate(settings.dev_cert_dir)


def make_uvicorn_server(
    app: ASGIApp, settings: Settings, cert_path: Path, key_path: Path
) -> uvicorn.Server:
    """Return a uvicorn server for ``app`` with TLS and without uvicorn's access log."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(cert_path),
        ssl_keyfile=str(key_path),
        # uvicorn's access log prints request paths, which carry secret ids on
        # the page route; AccessLogMiddleware logs route templates instead.
        access_log=False,
        log_config=None,
        server_header=False,
        # Only trust X-Forwarded-For from configured proxies, because the rate
        # limits key on the client address and a client could forge the header.
        proxy_headers=settings.forwarded_allow_ips is not None,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        lifespan="on",
        # Idle keep-alive TLS clients can hold shutdown for asyncio's 30-second
        # TLS close timeout; in-flight requests take well under a second.
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    # access_log=False only drops the handlers of "uvicorn.access". A handler
    # added later (a logging config, a test's log capture) would bring the
    # request paths back, so the logger is disabled for the whole process.
    logging.getLogger("uvicorn.access").disabled = True
    return uvicorn.Server(config)


def build_server(settings: Settings, clock: Clock = utc_now) -> uvicorn.Server:
    """Return the service's uvicorn server, connected to MongoDB through ``include.mongo``."""
    cert_path, key_path = tls_files(settings)
    client = get_client(serverSelectionTimeoutMS=MONGO_SERVER_SELECTION_TIMEOUT_MS)
    database = get_database(client, settings.database)
    return make_uvicorn_server(create_app(settings, database, clock), settings, cert_path, key_path)


def serve(settings: Settings) -> None:
    """Run the service until SIGINT or SIGTERM."""
    server = build_server(settings)
    log.info(
        "starting secret service on https://%s:%d, database %s, links under %s",
        settings.host,
        settings.port,
        settings.database,
        settings.link_base(),
    )
    server.run()
    log.info("secret service stopped")
