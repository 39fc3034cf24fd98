"""Helpers shared by the secret service tests."""

from __future__ import annotations

from typing import Any

from include.secret_service import crypto
from tests.secret_service.conftest import SERVICE_TOKEN

AUTH = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
# Texts that break naive encoders, decoders or line-ending handling.
HARD_TEXTS = {
    "umlauts": "Grüße aus Köln: Ä Ö Ü ß",
    "emoji": "🔐 key 👩‍💻 🇩🇪",
    "rtl": "كلمة المرور: שלום 123",
    "crlf": "line one\r\nline two\r\n",
    "bom_and_controls": "\ufeffleading BOM\ttab\x00nul",
    "whitespace_only": " \n ",
}


def create_body(plaintext: str = "secret", ttl_seconds: int = 300) -> tuple[dict[str, Any], bytes]:
    """Return a raw create request body and its key, bypassing the client's checks."""
    key = crypto.generate_key()
    encrypted = crypto.encrypt(plaintext, key)
    body = {
        "ciphertext": crypto.b64url_encode(encrypted.ciphertext),
        "nonce": crypto.b64url_encode(encrypted.nonce),
        "ttl_seconds": ttl_seconds,
        "access_token_hash": encrypted.access_token_hash,
        "passphrase": None,
    }
    return body, key


def access_body(secret_id: str, key: bytes) -> dict[str, str]:
    """Return a status or reveal request body for ``key``."""
    token = crypto.b64url_encode(crypto.derive_access_token(key))
    return {"secret_id": secret_id, "access_token": token}


def key_from_link(link: str) -> bytes:
    """Return the key in a link's fragment."""
    return crypto.decode_key(link.rsplit("#", 1)[1])
