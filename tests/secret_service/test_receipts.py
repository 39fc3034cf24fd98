"""Receipt state machine, burning, passphrases and per-IP rate limits."""

from __future__ import annotations

import pytest

from include.secret_service import crypto
from include.secret_service.errors import (
    AccessDenied,
    PassphraseRequired,
    RateLimited,
    SecretUnavailable,
    WrongPassphrase,
)
from include.secret_service.settings import RateLimits
from tests.secret_service.helpers import AUTH, access_body, key_from_link

RECEIPT_FIELDS = {
    "receipt_id",
    "state",
    "created_at",
    "expires_at",
    "viewed_at",
    "burned_at",
    "burn_reason",
    "passphrase_protected",
}


def test_receipt_pending_then_viewed(service):
    client = service.client()
    created = client.create("secret", 600)

    pending = client.receipt(created.receipt_token)
    service.clock.advance(10)
    client.reveal(created.link)
    viewed = client.receipt(created.receipt_token)

    assert set(pending) == RECEIPT_FIELDS
    assert pending["state"] == "pending"
    assert pending["receipt_id"] == created.receipt_id
    assert pending["viewed_at"] is None
    assert viewed["state"] == "viewed"
    assert viewed["viewed_at"] > viewed["created_at"]
    assert viewed["expires_at"] == pending["expires_at"]


def test_receipt_expired_unviewed(service):
    client = service.client()
    created = client.create("secret", 300)

    service.clock.advance(301)
    receipt = client.receipt(created.receipt_token)

    assert receipt["state"] == "expired"
    assert receipt["viewed_at"] is None
    with pytest.raises(SecretUnavailable) as raised:
        client.burn(created.receipt_token)
    assert raised.value.receipt["state"] == "expired"


def test_burn_pending_secret(service):
    client = service.client()
    created = client.create("secret", 300)

    burned = client.burn(created.receipt_token)
    burned_again = client.burn(created.receipt_token)

    assert burned["state"] == "burned"
    assert burned["burn_reason"] == "receipt"
    assert burned["burned_at"] is not None
    assert burned_again == burned
    assert "ciphertext" not in service.secrets().find_one({"_id": created.secret_id})
    with pytest.raises(SecretUnavailable):
        client.reveal(created.link)


def test_burn_after_view_keeps_viewed(service):
    client = service.client()
    created = client.create("secret", 300)
    client.reveal(created.link)

    with pytest.raises(SecretUnavailable, match="viewed") as raised:
        client.burn(created.receipt_token)

    assert raised.value.receipt["state"] == "viewed"
    assert client.receipt(created.receipt_token)["state"] == "viewed"


def test_expired_after_view_stays_viewed(service):
    client = service.client()
    created = client.create("secret", 300)
    client.reveal(created.link)

    service.clock.advance(3600)

    assert client.receipt(created.receipt_token)["state"] == "viewed"


def test_unknown_receipt_token(service):
    client = service.client()

    with pytest.raises(AccessDenied, match="no receipt"):
        client.receipt(crypto.b64url_encode(bytes(32)))
    with pytest.raises(AccessDenied, match="no receipt"):
        client.burn(crypto.b64url_encode(bytes(32)))


def test_receipt_requires_service_token(service):
    created = service.client().create("secret", 300)

    response = service.http().post(
        "/api/receipts/lookup", json={"receipt_token": created.receipt_token}
    )

    assert response.status_code == 401


def test_receipt_token_is_stored_hashed(service):
    created = service.client().create("secret", 300)

    document = service.secrets().find_one({"_id": created.secret_id})

    assert created.receipt_token not in repr(document)
    assert document["receipt_token_hash"] == crypto.sha256_hex(created.receipt_token.encode())


def test_passphrase_required_does_not_burn(service):
    client = service.client()
    created = client.create("guarded", 300, passphrase="open sesame")

    with pytest.raises(PassphraseRequired):
        client.reveal(created.link)
    raw = service.http().post(
        "/api/secrets/reveal", json=access_body(created.secret_id, key_from_link(created.link))
    )

    assert raw.status_code == 403
    assert raw.json()["error"] == "passphrase_required"
    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert client.reveal(created.link, passphrase="open sesame") == "guarded"


def test_wrong_passphrases_count_down(service):
    creator = service.client()
    created = creator.create("guarded", 300, passphrase="open sesame")
    readers = [service.client(token=None), service.client(token=None)]

    attempts_left = []
    for attempt in range(4):
        with pytest.raises(WrongPassphrase) as raised:
            readers[attempt % 2].reveal(created.link, passphrase=f"wrong {attempt}")
        attempts_left.append(raised.value.attempts_left)

    assert attempts_left == [4, 3, 2, 1]
    assert creator.receipt(created.receipt_token)["state"] == "pending"
    assert readers[0].reveal(created.link, passphrase="open sesame") == "guarded"


def test_five_wrong_passphrases_burn(service):
    client = service.client()
    created = client.create("guarded", 300, passphrase="open sesame")

    for _ in range(4):
        with pytest.raises(WrongPassphrase):
            client.reveal(created.link, passphrase="wrong")
    with pytest.raises(SecretUnavailable, match="burned"):
        client.reveal(created.link, passphrase="wrong")

    receipt = client.receipt(created.receipt_token)
    assert receipt["state"] == "burned"
    assert receipt["burn_reason"] == "passphrase_failures"
    assert receipt["passphrase_protected"] is True
    assert "ciphertext" not in service.secrets().find_one({"_id": created.secret_id})
    with pytest.raises(SecretUnavailable):
        client.reveal(created.link, passphrase="open sesame")


def test_passphrase_checked_after_access_token(service):
    client = service.client()
    created = client.create("guarded", 300, passphrase="open sesame")
    body = access_body(created.secret_id, crypto.generate_key())
    body["passphrase_verifier"] = crypto.b64url_encode(bytes(32))

    for _ in range(6):
        response = service.http().post("/api/secrets/reveal", json=body)
        assert response.status_code == 403
        assert response.json()["error"] == "invalid_access_token"

    document = service.secrets().find_one({"_id": created.secret_id})
    assert document["passphrase_failures"] == 0
    assert client.reveal(created.link, passphrase="open sesame") == "guarded"


def test_wrong_access_tokens_are_rate_limited(start_service):
    service = start_service(rate_limits=RateLimits(failure_capacity=3, failure_per_minute=1.0))
    client = service.client()
    created = client.create("secret", 600)
    wrong = access_body(created.secret_id, crypto.generate_key())
    http = service.http()

    statuses = [http.post("/api/secrets/status", json=wrong).status_code for _ in range(4)]
    with pytest.raises(RateLimited) as raised:
        client.reveal(created.link)

    assert statuses == [403, 403, 403, 429]
    assert raised.value.retry_after_seconds == 60
    service.clock.advance(60)
    assert client.reveal(created.link) == "secret"


def test_reveal_requests_are_rate_limited(start_service):
    service = start_service(rate_limits=RateLimits(reveal_capacity=5, reveal_per_minute=5.0))
    created = service.client().create("secret", 600)
    body = access_body(created.secret_id, key_from_link(created.link))
    http = service.http()

    statuses = [http.post("/api/secrets/status", json=body).status_code for _ in range(6)]
    limited = http.post("/api/secrets/reveal", json=body)

    assert statuses == [200] * 5 + [429]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert service.secrets().find_one({"_id": created.secret_id})["state"] == "pending"


def test_receipt_requests_are_rate_limited(start_service):
    service = start_service(rate_limits=RateLimits(receipt_capacity=2, receipt_per_minute=1.0))
    created = service.client().create("secret", 600)
    http = service.http()
    body = {"receipt_token": created.receipt_token}

    statuses = [
        http.post("/api/receipts/lookup", json=body, headers=AUTH).status_code for _ in range(3)
    ]

    assert statuses == [200, 200, 429]
