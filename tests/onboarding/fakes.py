"""An in-memory stand-in for the secret service client, for tests without the service."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from include.secret_service.client import CreatedSecret
from include.secret_service.errors import SecretUnavailable


class FakeSecretService:
    """Keeps one-time secrets in a dict; reveal works once, like the real service."""

    store: dict[str, dict] = {}

    def __init__(self, *args, **kwargs) -> None:
        pass

    @classmethod
    def from_env(cls) -> FakeSecretService:
        return cls()

    def __enter__(self) -> FakeSecretService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def create(self, plaintext: str, ttl_seconds: int, passphrase: str | None = None):
        secret_id = secrets.token_urlsafe(16)
        token = secrets.token_urlsafe(24)
        receipt_id = secrets.token_urlsafe(12)
        self.store[secret_id] = {
            "plaintext": plaintext,
            "state": "pending",
            "token": token,
            "ttl": ttl_seconds,
        }
        return CreatedSecret(
            link=f"https://127.0.0.1:9/s/{secret_id}#{secrets.token_urlsafe(16)}",
            secret_id=secret_id,
            receipt_id=receipt_id,
            receipt_token=token,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        )

    def _by_token(self, token: str) -> dict:
        return next(entry for entry in self.store.values() if entry["token"] == token)

    def receipt(self, receipt_token: str) -> dict:
        return {"state": self._by_token(receipt_token)["state"]}

    def burn(self, receipt_token: str) -> dict:
        entry = self._by_token(receipt_token)
        if entry["state"] == "pending":
            entry["state"] = "burned"
        return {"state": entry["state"]}

    def reveal(self, link: str, passphrase: str | None = None) -> str:
        secret_id = link.split("/s/")[1].split("#")[0]
        entry = self.store[secret_id]
        if entry["state"] != "pending":
            raise SecretUnavailable(f"secret already {entry['state']}")
        entry["state"] = "viewed"
        return entry["plaintext"]
