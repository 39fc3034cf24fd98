"""Exactly-once reveals under concurrency, and expiry without any request."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from include.secret_service import crypto
from include.secret_service.errors import SecretUnavailable
from tests.secret_service.helpers import access_body, key_from_link

CONCURRENT_READERS = 50
ROUNDS = 5
PURGE_WAIT_SECONDS = 10


def _reveal_concurrently(service, link: str) -> list[str]:
    """Reveal ``link`` from 50 threads at once; return each thread's outcome.

    Each thread opens its TLS connection and passes the status check first, so
    the barrier releases 50 reveal requests that differ only in timing.
    """
    key = key_from_link(link)
    body = access_body(link.rsplit("/", 1)[1].split("#")[0], key)
    encryption_key = crypto.derive_encryption_key(key)
    barrier = threading.Barrier(CONCURRENT_READERS)

    def reveal(http) -> str:
        assert http.post("/api/secrets/status", json=body).status_code == 200
        barrier.wait(timeout=30)
        response = http.post("/api/secrets/reveal", json=body)
        if response.status_code == 410:
            return "unavailable"
        assert response.status_code == 200, response.text
        claimed = response.json()
        return crypto.decrypt(
            crypto.b64url_decode(claimed["ciphertext"]),
            crypto.b64url_decode(claimed["nonce"]),
            encryption_key,
        )

    clients = [service.http() for _ in range(CONCURRENT_READERS)]
    with ThreadPoolExecutor(max_workers=CONCURRENT_READERS) as pool:
        return list(pool.map(reveal, clients))


@pytest.mark.parametrize("round_number", range(1, ROUNDS + 1))
def test_concurrent_reveals_succeed_once(service, round_number):
    creator = service.client()
    plaintext = f"one winner, round {round_number}"
    created = creator.create(plaintext, 300)

    outcomes = _reveal_concurrently(service, created.link)

    assert outcomes.count(plaintext) == 1
    assert outcomes.count("unavailable") == CONCURRENT_READERS - 1
    assert creator.receipt(created.receipt_token)["state"] == "viewed"


def test_concurrent_passphrase_reveals_once(service):
    creator = service.client()
    created = creator.create("guarded winner", 300, passphrase="pass")
    clients = [service.client(token=None) for _ in range(10)]
    barrier = threading.Barrier(len(clients))

    def reveal(client) -> str:
        barrier.wait(timeout=30)
        try:
            return client.reveal(created.link, passphrase="pass")
        except SecretUnavailable:
            return "unavailable"

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        outcomes = list(pool.map(reveal, clients))

    assert outcomes.count("guarded winner") == 1
    assert outcomes.count("unavailable") == len(clients) - 1


def _wait_for(condition, timeout: float = PURGE_WAIT_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_purge_runs_without_any_request(start_service, caplog):
    caplog.set_level(logging.INFO, logger="include.secret_service")
    service = start_service(purge_interval_seconds=0.1, receipt_retention_seconds=3600)
    client = service.client()
    expiring = client.create("expiring", 300)
    lasting = client.create("lasting", 3600)
    secrets = service.secrets()
    # The access log line of a request is written after its response is sent.
    assert _wait_for(lambda: len(_access_log_lines(caplog)) == 2)
    requests_before = _access_log_lines(caplog)

    service.clock.advance(301)
    purged = _wait_for(lambda: secrets.find_one({"_id": expiring.secret_id})["state"] == "expired")
    expired = secrets.find_one({"_id": expiring.secret_id})
    untouched = secrets.find_one({"_id": lasting.secret_id})

    assert purged, "the purge task did not expire the secret"
    assert "ciphertext" not in expired
    assert "access_token_hash" not in expired
    assert untouched["state"] == "pending"
    assert untouched["ciphertext"]
    assert _access_log_lines(caplog) == requests_before

    service.clock.advance(3600)
    deleted = _wait_for(lambda: secrets.find_one({"_id": expiring.secret_id}) is None)

    assert deleted, "the purge task did not delete the receipt after its retention"
    assert _access_log_lines(caplog) == requests_before


def _access_log_lines(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "include.secret_service.access"
    ]


def test_ttl_index_on_retain_until(service):
    service.client().create("secret", 300)

    indexes = {index["name"]: index for index in service.secrets().list_indexes()}

    assert indexes["retain_until_ttl"]["expireAfterSeconds"] == 0
    assert dict(indexes["retain_until_ttl"]["key"]) == {"retain_until": 1}
    assert indexes["receipt_token_hash"]["unique"] is True
