"""Health checks of the local stack's parts; each returns (healthy, detail)."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from include.localstack.process import LOOPBACK

CHECK_TIMEOUT_SECONDS = 3.0


def check_http(url: str, cafile: Path | None = None) -> tuple[bool, str]:
    """Return whether ``GET url`` succeeds (HTTP 2xx); ``cafile`` verifies HTTPS."""
    context = None
    if url.startswith("https://"):
        if cafile is None or not cafile.is_file():
            return False, f"waiting for certificate {cafile}"
        context = ssl.create_default_context(cafile=str(cafile))
    try:
        # The URL is always built by this package from 127.0.0.1 and a port.
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS, context=context) as resp:  # noqa: S310
            return 200 <= resp.status < 300, f"GET {url}: HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"GET {url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"GET {url}: {reason}"


def check_moto(port: int) -> tuple[bool, str]:
    """Check the emulator through its own API, which IAM authentication does not count."""
    return check_http(f"http://{LOOPBACK}:{port}/moto-api/config")


def check_ssh_banner(port: int) -> tuple[bool, str]:
    """Return whether ``127.0.0.1:port`` accepts TCP and sends an SSH-2.0 banner."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=CHECK_TIMEOUT_SECONDS) as sock:
            banner = sock.recv(256)
    except OSError as exc:
        return False, f"connect to {LOOPBACK}:{port}: {exc}"
    if banner.startswith(b"SSH-2.0-"):
        return True, banner.split(b"\r\n", 1)[0].decode("ascii", "replace")
    return False, f"unexpected banner {banner[:40]!r}"


def check_mongo(uri: str) -> tuple[bool, str]:
    """Return whether a pymongo ``ping`` to ``uri`` succeeds."""
    client = MongoClient(uri, serverSelectionTimeoutMS=int(CHECK_TIMEOUT_SECONDS * 1000))
    try:
        client.admin.command("ping")
        return True, "ping ok"
    except PyMongoError as exc:
        return False, f"ping failed: {type(exc).__name__}"
    finally:
        client.close()


def check_airflow(port: int) -> tuple[bool, str]:
    """Return whether the Airflow API server's health endpoint reports healthy."""
    url = f"http://{LOOPBACK}:{port}/api/v2/monitor/health"
    try:
        with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as resp:  # noqa: S310
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, f"GET {url}: {getattr(exc, 'reason', exc)}"
    metadatabase = body.get("metadatabase", {}).get("status")
    scheduler = body.get("scheduler", {}).get("status")
    healthy = metadatabase == "healthy" and scheduler == "healthy"
    return healthy, f"metadatabase {metadatabase}, scheduler {scheduler}"
