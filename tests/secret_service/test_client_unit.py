"""Client checks that run before any request: lifetime, links, configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from include.secret_service import crypto
from include.secret_service.client import CreatedSecret, SecretServiceClient, parse_link
from include.secret_service.errors import ConfigurationError, InvalidLink, InvalidSecretRequest

# Nothing listens here: a test that reached the network would fail with
# ServiceUnreachable instead of the expected error.
UNUSED_URL = "https://127.0.0.1:9"
SECRET_ID = "A" * 22


def _link(fragment: str, path: str = f"/s/{SECRET_ID}") -> str:
    return f"https://127.0.0.1:8443{path}#{fragment}"


@pytest.mark.parametrize("ttl", [299, 604_801, 0, -300])
def test_create_rejects_lifetime_out_of_range(ttl):
    with SecretServiceClient(UNUSED_URL, "token") as client:
        with pytest.raises(InvalidSecretRequest) as raised:
            client.create("secret", ttl)

    message = str(raised.value)
    assert "between 300 and 604800 seconds" in message
    assert f"got {ttl}" in message


@pytest.mark.parametrize("ttl", [300.0, "300", True, None])
def test_create_rejects_non_int_lifetime(ttl):
    with SecretServiceClient(UNUSED_URL, "token") as client:
        with pytest.raises(InvalidSecretRequest, match="between 300 and 604800"):
            client.create("secret", ttl)


def test_create_rejects_plaintext_over_limit():
    with SecretServiceClient(UNUSED_URL, "token") as client:
        with pytest.raises(InvalidSecretRequest, match="maximum is 10000 characters"):
            client.create("x" * 10_001, 300)


def test_created_secret_repr_hides_capabilities():
    created = CreatedSecret(
        link="https://host/s/SECRETIDSECRETIDSECRET#KEYKEYKEY",
        secret_id="SECRETIDSECRETIDSECRET",
        receipt_id="public-receipt-id",
        receipt_token="RECEIPTTOKEN",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )

    text = repr(created)

    assert "public-receipt-id" in text
    assert "KEYKEYKEY" not in text
    assert "SECRETIDSECRETIDSECRET" not in text
    assert "RECEIPTTOKEN" not in text


def test_parse_link_accepts_full_link():
    key = crypto.generate_key()

    parsed = parse_link(_link(crypto.encode_key(key)))

    assert parsed.secret_id == SECRET_ID
    assert parsed.key == key
    assert parsed.api_base == "https://127.0.0.1:8443"
    assert crypto.encode_key(key) not in repr(parsed)


def test_parse_link_keeps_path_prefix():
    fragment = crypto.encode_key(crypto.generate_key())

    parsed = parse_link(_link(fragment, path=f"/secrets/s/{SECRET_ID}"))

    assert parsed.api_base == "https://127.0.0.1:8443/secrets"


@pytest.mark.parametrize(
    ("link", "message"),
    [
        (f"http://127.0.0.1/s/{SECRET_ID}#" + "A" * 43, "https://"),
        (f"https://127.0.0.1/s/{SECRET_ID}", "no key"),
        (f"https://127.0.0.1/s/{SECRET_ID}#", "no key"),
        (f"https://127.0.0.1/s/{SECRET_ID}#" + "A" * 42, "damaged"),
        (f"https://127.0.0.1/s/{SECRET_ID}#" + "A" * 42 + "!", "damaged"),
        (f"https://127.0.0.1/x/{SECRET_ID}#" + "A" * 43, "/s/<id>"),
        ("https://127.0.0.1/s/short#" + "A" * 43, "/s/<id>"),
    ],
    ids=["http", "no-fragment", "empty-fragment", "truncated", "bad-char", "path", "short-id"],
)
def test_parse_link_rejects_damaged_links(link, message):
    with pytest.raises(InvalidLink, match=message):
        parse_link(link)


def test_client_requires_https():
    with pytest.raises(ConfigurationError, match="https://"):
        SecretServiceClient("http://127.0.0.1:8443", "token")


def test_from_env_requires_url_and_token(monkeypatch):
    monkeypatch.delenv("SECRET_SERVICE_URL", raising=False)
    monkeypatch.setenv("SECRET_SERVICE_TOKEN", "token")
    with pytest.raises(ConfigurationError, match="SECRET_SERVICE_URL"):
        SecretServiceClient.from_env()

    monkeypatch.setenv("SECRET_SERVICE_URL", UNUSED_URL)
    monkeypatch.delenv("SECRET_SERVICE_TOKEN")
    with pytest.raises(ConfigurationError, match="SECRET_SERVICE_TOKEN"):
        SecretServiceClient.from_env()


def test_from_env_reads_ca_file(monkeypatch, dev_cert):
    monkeypatch.setenv("SECRET_SERVICE_URL", UNUSED_URL)
    monkeypatch.setenv("SECRET_SERVICE_TOKEN", "token")
    monkeypatch.setenv("SECRET_SERVICE_CA_FILE", str(dev_cert[0]))

    with SecretServiceClient.from_env() as client:
        assert client.base_url == UNUSED_URL


def test_calls_needing_token_fail_without_it():
    with SecretServiceClient(UNUSED_URL, None) as client:
        with pytest.raises(ConfigurationError, match="service token"):
            client.receipt("A" * 43)
