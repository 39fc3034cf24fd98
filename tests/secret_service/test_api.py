"""The service over real HTTPS: lifetimes, expiry, access checks, limits, round trips."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.secret_service import crypto
from include.secret_service.errors import (
    AccessDenied,
    AuthenticationFailed,
    InvalidLink,
    InvalidSecretRequest,
    SecretUnavailable,
)
from include.secret_service.limits import PLAINTEXT_MAX_CHARS, REQUEST_BODY_MAX_BYTES
from include.secret_service.store import truncate_ms
from tests.secret_service.helpers import (
    AUTH,
    HARD_TEXTS,
    access_body,
    create_body,
    key_from_link,
)


@pytest.mark.parametrize(
    ("ttl", "status"),
    [(299, 422), (300, 201), (604_800, 201), (604_801, 422)],
)
def test_server_lifetime_bounds(service, ttl, status):
    body, _ = create_body(ttl_seconds=ttl)

    response = service.http().post("/api/secrets", json=body, headers=AUTH)

    assert response.status_code == status
    if status == 422:
        assert "between 300 and 604800 seconds" in response.json()["message"]
        assert f"got {ttl}" in response.json()["message"]


@pytest.mark.parametrize("ttl", [300, 604_800])
def test_client_creates_at_lifetime_bounds(service, ttl):
    client = service.client()

    created = client.create("secret", ttl)

    receipt = client.receipt(created.receipt_token)
    assert receipt["state"] == "pending"
    assert created.expires_at == truncate_ms(service.clock()) + timedelta(seconds=ttl)


@pytest.mark.parametrize("ttl", [299, 604_801])
def test_client_rejects_lifetime_out_of_bounds(service, ttl):
    with pytest.raises(InvalidSecretRequest, match="between 300 and 604800 seconds"):
        service.client().create("secret", ttl)

    assert service.secrets().count_documents({}) == 0


def test_create_requires_service_token(service):
    body, _ = create_body()
    http = service.http()

    missing = http.post("/api/secrets", json=body)
    wrong = http.post("/api/secrets", json=body, headers={"Authorization": "Bearer wrong"})

    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert service.secrets().count_documents({}) == 0
    with pytest.raises(AuthenticationFailed):
        service.client(token="x" * 40).create("secret", 300)


@pytest.mark.parametrize("name", sorted(HARD_TEXTS))
def test_text_round_trips_exactly(service, name):
    client = service.client()
    created = client.create(HARD_TEXTS[name], 300)

    assert client.reveal(created.link) == HARD_TEXTS[name]


@pytest.mark.parametrize("unit", ["é", "😀"], ids=["2-byte", "4-byte"])
def test_plaintext_at_limit_round_trips(service, unit):
    client = service.client()
    text = unit * PLAINTEXT_MAX_CHARS

    created = client.create(text, 300)

    assert client.reveal(created.link) == text


def test_server_rejects_ciphertext_over_limit(service):
    body, _ = create_body()
    body["ciphertext"] = crypto.b64url_encode(b"x" * (4 * PLAINTEXT_MAX_CHARS + 17))

    response = service.http().post("/api/secrets", json=body, headers=AUTH)

    assert response.status_code == 422
    assert "ciphertext must be 17 to 40016 bytes" in response.json()["message"]


def test_declared_body_over_cap_rejected(service):
    payload = b"{" + b" " * REQUEST_BODY_MAX_BYTES + b"}"

    response = service.http().post(
        "/api/secrets",
        content=payload,
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert str(REQUEST_BODY_MAX_BYTES) in response.json()["message"]


def test_streamed_body_over_cap_is_rejected(service):
    def chunks():
        for _ in range(REQUEST_BODY_MAX_BYTES // 1024 + 2):
            yield b" " * 1024

    response = service.http().post("/api/secrets", content=chunks(), headers=AUTH)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_expiry_enforced_on_read(service):
    client = service.client()
    created = client.create("expiring", 300)
    key = key_from_link(created.link)
    http = service.http()

    service.clock.advance(299)
    before = http.post("/api/secrets/status", json=access_body(created.secret_id, key))
    service.clock.advance(1)
    at_expiry = http.post("/api/secrets/status", json=access_body(created.secret_id, key))
    reveal = http.post("/api/secrets/reveal", json=access_body(created.secret_id, key))

    assert before.status_code == 200
    assert at_expiry.status_code == 410
    assert reveal.status_code == 410
    # Storage still contains the ciphertext until the purge runs, yet it is never returned.
    assert service.secrets().find_one({"_id": created.secret_id})["ciphertext"]
    assert client.receipt(created.receipt_token)["state"] == "expired"
    with pytest.raises(SecretUnavailable):
        client.reveal(created.link)


def test_wrong_token_does_not_burn(service):
    client = service.client()
    created = client.create("survivor", 300)
    wrong_key = crypto.generate_key()

    response = service.http().post(
        "/api/secrets/reveal", json=access_body(created.secret_id, wrong_key)
    )
    wrong_link = created.link.rsplit("#", 1)[0] + "#" + crypto.encode_key(wrong_key)
    with pytest.raises(AccessDenied, match="does not match"):
        client.reveal(wrong_link)

    assert response.status_code == 403
    assert response.json()["error"] == "invalid_access_token"
    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert client.reveal(created.link) == "survivor"


def test_missing_fragment_does_not_burn(service):
    client = service.client()
    created = client.create("survivor", 300)
    bare_link = created.link.rsplit("#", 1)[0]
    http = service.http()

    page = http.get(f"/s/{created.secret_id}")
    malformed = http.post(
        "/api/secrets/reveal", json={"secret_id": created.secret_id, "access_token": ""}
    )
    with pytest.raises(InvalidLink, match="no key"):
        client.reveal(bare_link)

    assert page.status_code == 200
    assert malformed.status_code == 422
    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert client.reveal(created.link) == "survivor"


def test_truncated_key_does_not_burn(service):
    client = service.client()
    created = client.create("survivor", 300)
    truncated_fragment = created.link.rsplit("#", 1)[1][:-3]
    # What a page would send if it padded a truncated key back to 32 bytes.
    padded_key = crypto.b64url_decode(truncated_fragment[:40]) + bytes(2)

    with pytest.raises(InvalidLink, match="damaged"):
        client.reveal(created.link[:-3])
    response = service.http().post(
        "/api/secrets/reveal", json=access_body(created.secret_id, padded_key)
    )

    assert response.status_code == 403
    assert client.receipt(created.receipt_token)["state"] == "pending"
    assert client.reveal(created.link) == "survivor"


def test_unknown_secret_reads_as_unavailable(service):
    response = service.http().post(
        "/api/secrets/status", json=access_body("B" * 22, crypto.generate_key())
    )

    assert response.status_code == 410
    assert response.json()["error"] == "unavailable"


def test_status_changes_nothing(service):
    client = service.client()
    created = client.create("secret", 300)
    key = key_from_link(created.link)
    http = service.http()

    for _ in range(3):
        response = http.post("/api/secrets/status", json=access_body(created.secret_id, key))
        assert response.status_code == 200
    document = service.secrets().find_one({"_id": created.secret_id})

    assert response.json()["passphrase"] is None
    assert document["state"] == "pending"
    assert document["ciphertext"]


def test_storage_keeps_no_key_or_ciphertext(service):
    client = service.client()
    created = client.create("plaintext value", 300)
    fragment = created.link.rsplit("#", 1)[1]
    stored = service.secrets().find_one({"_id": created.secret_id})

    client.reveal(created.link)
    viewed = service.secrets().find_one({"_id": created.secret_id})

    assert fragment not in repr(stored)
    assert b"plaintext value" not in stored["ciphertext"]
    assert created.receipt_token not in repr(stored)
    for field in ("ciphertext", "nonce", "access_token_hash", "passphrase"):
        assert field not in viewed
    assert viewed["state"] == "viewed"


def test_unknown_fields_are_rejected(service):
    body, _ = create_body()
    body["key"] = "should never be sent"

    response = service.http().post("/api/secrets", json=body, headers=AUTH)

    assert response.status_code == 422
    assert "should never be sent" not in response.text


def test_healthz_reports_mongo(service):
    response = service.http().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mongo": "ok"}
