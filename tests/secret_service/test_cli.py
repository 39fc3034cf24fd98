"""The command line against ``python -m include.secret_service serve`` in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.secret_service.conftest import SERVICE_TOKEN
from tests.secret_service.helpers import HARD_TEXTS

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30


@dataclass
class ServeProcess:
    """A running ``serve`` subprocess and the environment to reach it."""

    process: subprocess.Popen
    env: dict[str, str]
    cert_dir: Path
    log_path: Path

    def run_cli(self, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "include.secret_service", *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            timeout=60,
        )

    def log(self) -> str:
        return self.log_path.read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(url: str, cert_path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with status {process.returncode}")
        if cert_path.exists():
            context = ssl.create_default_context(cafile=str(cert_path))
            try:
                if httpx.get(f"{url}/healthz", verify=context, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    raise RuntimeError("serve did not become healthy in time")


@pytest.fixture
def serve_process(mongo_uri, mongo_client, tmp_path) -> Iterator[ServeProcess]:
    port = _free_port()
    database = f"test_cli_{uuid.uuid4().hex[:12]}"
    cert_dir = tmp_path / "tls"
    url = f"https://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SECRET_SERVICE")}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "MONGO_URI": mongo_uri,
            "SECRET_SERVICE_DB": database,
            "SECRET_SERVICE_TOKEN": SERVICE_TOKEN,
            "SECRET_SERVICE_PORT": str(port),
            "SECRET_SERVICE_DEV_CERT_DIR": str(cert_dir),
            "SECRET_SERVICE_URL": url,
            "SECRET_SERVICE_CA_FILE": str(cert_dir / "dev-cert.pem"),
        }
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "include.secret_service", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(url, cert_dir / "dev-cert.pem", process)
        yield ServeProcess(process, env, cert_dir, log_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        mongo_client.drop_database(database)


def test_serve_creates_dev_certificate_and_logs_it(serve_process):
    key_path = serve_process.cert_dir / "dev-key.pem"

    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "created self-signed development TLS certificate" in serve_process.log()


def test_cli_round_trip_keeps_bytes_exact(serve_process):
    plaintext = HARD_TEXTS["crlf"] + HARD_TEXTS["emoji"] + HARD_TEXTS["rtl"] + "\n"

    created = serve_process.run_cli("create", "--ttl", "300", stdin=plaintext.encode())
    link, receipt_token = created.stdout.decode().splitlines()
    pending = serve_process.run_cli("receipt", receipt_token)
    revealed = serve_process.run_cli("reveal", link)
    viewed = serve_process.run_cli("receipt", receipt_token)
    again = serve_process.run_cli("reveal", link)
    burn = serve_process.run_cli("burn", receipt_token)

    assert created.returncode == 0, created.stderr
    assert link.startswith(serve_process.env["SECRET_SERVICE_URL"] + "/s/")
    assert "#" in link
    assert pending.returncode == 0, pending.stderr
    assert json.loads(pending.stdout)["state"] == "pending"
    assert revealed.returncode == 0, revealed.stderr
    assert revealed.stdout == plaintext.encode()
    assert viewed.returncode == 0, viewed.stderr
    assert json.loads(viewed.stdout)["state"] == "viewed"
    assert again.returncode == 1
    assert b"already viewed" in again.stderr
    assert burn.returncode == 1
    assert json.loads(burn.stdout)["state"] == "viewed"


def test_cli_passphrase_and_burn(serve_process, tmp_path):
    passphrase_file = tmp_path / "passphrase.txt"
    passphrase_file.write_text("Käse und Brot\n")

    created = serve_process.run_cli(
        "create", "--ttl", "600", "--passphrase-file", str(passphrase_file), stdin=b"guarded"
    )
    link, receipt_token = created.stdout.decode().splitlines()
    without = serve_process.run_cli("reveal", link)
    revealed = serve_process.run_cli("reveal", link, "--passphrase-file", str(passphrase_file))

    second = serve_process.run_cli("create", "--ttl", "600", stdin=b"to burn")
    second_link, second_token = second.stdout.decode().splitlines()
    burned = serve_process.run_cli("burn", "-", stdin=f"{second_token}\n".encode())
    after_burn = serve_process.run_cli("reveal", second_link)

    assert without.returncode == 1
    assert b"passphrase" in without.stderr
    assert revealed.stdout == b"guarded"
    assert burned.returncode == 0, burned.stderr
    assert json.loads(burned.stdout)["state"] == "burned"
    assert after_burn.returncode == 1


def test_cli_rejects_invalid_input(serve_process):
    too_short = serve_process.run_cli("create", "--ttl", "299", stdin=b"secret")
    empty = serve_process.run_cli("create", "--ttl", "300", stdin=b"")
    not_utf8 = serve_process.run_cli("create", "--ttl", "300", stdin=b"\xff\xfe")
    bad_link = serve_process.run_cli("reveal", "https://127.0.0.1/s/" + "A" * 22)

    assert too_short.returncode == 2
    assert b"between 300 and 604800 seconds" in too_short.stderr
    assert empty.returncode == 2
    assert b"empty" in empty.stderr
    assert not_utf8.returncode == 2
    assert b"UTF-8" in not_utf8.stderr
    assert bad_link.returncode == 2
    assert b"no key" in bad_link.stderr


def test_cli_without_ca_file_fails_verification(serve_process):
    env = dict(serve_process.env)
    del env["SECRET_SERVICE_CA_FILE"]

    result = subprocess.run(
        [sys.executable, "-m", "include.secret_service", "create", "--ttl", "300"],
        input=b"secret",
        env=env,
        capture_output=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert b"SECRET_SERVICE_CA_FILE" in result.stderr


def test_serve_log_has_no_ids_or_tokens(serve_process):
    created = serve_process.run_cli("create", "--ttl", "300", stdin=b"log canary")
    link, receipt_token = created.stdout.decode().splitlines()
    serve_process.run_cli("reveal", link)
    serve_process.run_cli("receipt", receipt_token)
    time.sleep(0.5)

    log = serve_process.log()
    secret_id = link.split("/s/")[1].split("#")[0]
    assert "POST /api/secrets/reveal 200" in log
    assert secret_id not in log
    assert link.split("#")[1] not in log
    assert receipt_token not in log
    assert SERVICE_TOKEN not in log
