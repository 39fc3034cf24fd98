"""Python client of the one-time secret service, used by the DAGs and the CLI.

The client encrypts locally (see :mod:`include.secret_service.crypto`) and
sends only ciphertext, nonce, lifetime and hashes. The returned link carries
the key in its fragment. Secret ids travel in request bodies, never in request
paths, so HTTP client logs (httpx logs each request URL at INFO) contain no id.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from include.secret_service import crypto
from include.secret_service.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    InvalidLink,
    InvalidSecretRequest,
    PassphraseRequired,
    RateLimited,
    SecretServiceError,
    SecretUnavailable,
    ServiceUnreachable,
    WrongPassphrase,
)
from include.secret_service.limits import TTL_MAX_SECONDS, TTL_MIN_SECONDS, ttl_range_text

SECRET_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
_LINK_PATH = re.compile(r"^(?P<prefix>(?:/[^/]+)*)/s/(?P<secret_id>[^/]+)$")


@dataclass(frozen=True)
class CreatedSecret:
    """A created secret. ``link`` and ``receipt_token`` are capabilities.

    The link reveals the secret once, and the receipt token shows its state and
    can burn it. Both are left out of ``repr()`` so they do not end up in logs.
    ``receipt_id`` is public and safe to log and to store in the registry.
    """

    link: str = field(repr=False)
    secret_id: str = field(repr=False)
    receipt_id: str
    receipt_token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class ParsedLink:
    """The parts of a one-time secret link."""

    api_base: str
    secret_id: str
    key: bytes = field(repr=False)


def parse_link(link: str) -> ParsedLink:
    """Split a link ``https://<host>[/<prefix>]/s/<id>#<key>`` into its parts.

    :raises InvalidLink: the link is not HTTPS, has no secret id, or its key is
        missing, truncated or otherwise damaged.
    """
    parts = urlsplit(link.strip())
    if parts.scheme != "https" or not parts.netloc:
        raise InvalidLink("the link must start with https:// and name a host")
    match = _LINK_PATH.fullmatch(parts.path)
    if match is None or not SECRET_ID_PATTERN.fullmatch(match["secret_id"]):
        raise InvalidLink("the link does not point to a one-time secret (/s/<id>)")
    if not parts.fragment:
        raise InvalidLink("the link has no key (the part after '#'); copy the whole link")
    try:
        key = crypto.decode_key(parts.fragment)
    except ValueError as exc:
        raise InvalidLink(f"the key in the link is damaged: {exc}") from exc
    return ParsedLink(
        api_base=f"https://{parts.netloc}{match['prefix']}",
        secret_id=match["secret_id"],
        key=key,
    )


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _error_message(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message") or response.reason_phrase or "no message"
    return str(message), body


def raise_for_response(response: httpx.Response) -> None:
    """Raise the client exception that matches an error response."""
    if response.is_success:
        return
    message, body = _error_message(response)
    code = body.get("error")
    status = response.status_code

    if status == 401:
        raise AuthenticationFailed(f"the secret service rejected the service token: {message}")
    if status == 410:
        raise SecretUnavailable(message, receipt=body.get("receipt"))
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        raise RateLimited(message, int(retry_after) if retry_after else None)
    if status in (413, 422):
        raise InvalidSecretRequest(message)
    if code == "passphrase_required":
        raise PassphraseRequired(message)
    if code == "wrong_passphrase":
        raise WrongPassphrase(message, int(body.get("attempts_left", 0)))
    if status in (403, 404):
        raise AccessDenied(message)
    raise SecretServiceError(f"the secret service returned HTTP {status}: {message}")


class SecretServiceClient:
    """Create, inspect, burn and reveal one-time secrets over HTTPS.

    :param base_url: the service's ``https://`` base URL, e.g. ``https://127.0.0.1:8443``.
    :param token: the service token; needed by ``create``, ``receipt`` and ``burn``.
    :param ca_file: PEM file of the CA (or self-signed certificate) to trust
        instead of the system's CAs. Verification is never turned off.
    :param timeout: seconds to wait for connect, read and write.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        ca_file: str | os.PathLike[str] | None = None,
        timeout: float = 10,
    ) -> None:
        if urlsplit(base_url).scheme != "https":
            raise ConfigurationError(
                f"the secret service URL must start with https://, got {base_url!r}"
            )
        self.base_url = base_url.rstrip("/")
        self._token = token
        verify: ssl.SSLContext | bool = True
        if ca_file:
            verify = ssl.create_default_context(cafile=os.fspath(ca_file))
        self._http = httpx.Client(verify=verify, timeout=timeout)

    @classmethod
    def from_env(cls) -> SecretServiceClient:
        """Build a client from ``SECRET_SERVICE_URL``, ``_TOKEN`` and ``_CA_FILE``."""
        base_url = os.environ.get("SECRET_SERVICE_URL")
        token = os.environ.get("SECRET_SERVICE_TOKEN")
        if not base_url:
            raise ConfigurationError(
                "SECRET_SERVICE_URL is not set: set it to the service's https:// base URL"
            )
        if not token:
            raise ConfigurationError("SECRET_SERVICE_TOKEN is not set: set the service token")
        return cls(base_url, token, ca_file=os.environ.get("SECRET_SERVICE_CA_FILE") or None)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> SecretServiceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _auth_headers(self) -> dict[str, str]:
        if not self._token:
            raise ConfigurationError("this call needs the service token, and none was given")
        return {"Authorization": f"Bearer {self._token}"}

    def _post(self, url: str, body: dict[str, Any], authenticated: bool) -> dict[str, Any]:
        headers = self._auth_headers() if authenticated else {}
        try:
            response = self._http.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            hint = ""
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                hint = "; set SECRET_SERVICE_CA_FILE to the service's CA certificate"
            raise ServiceUnreachable(
                f"request to the secret service failed ({type(exc).__name__}: {exc}){hint}"
            ) from exc
        raise_for_response(response)
        return response.json()

    def create(
        self, plaintext: str, ttl_seconds: int, passphrase: str | None = None
    ) -> CreatedSecret:
        """Encrypt ``plaintext`` locally, store the ciphertext and return the link.

        :param ttl_seconds: lifetime, 300 to 604,800 seconds (5 minutes to 7 days).
        :param passphrase: optional second factor that the reader must type.
        :raises InvalidSecretRequest: the lifetime, plaintext or passphrase is out of range.
        """
        if type(ttl_seconds) is not int or not TTL_MIN_SECONDS <= ttl_seconds <= TTL_MAX_SECONDS:
            raise InvalidSecretRequest(
                f"ttl_seconds must be {ttl_range_text()}; got {ttl_seconds!r}"
            )
        key = crypto.generate_key()
        try:
            encrypted = crypto.encrypt(plaintext, key, passphrase)
        except ValueError as exc:
            raise InvalidSecretRequest(str(exc)) from exc

        body: dict[str, Any] = {
            "ciphertext": crypto.b64url_encode(encrypted.ciphertext),
            "nonce": crypto.b64url_encode(encrypted.nonce),
            "ttl_seconds": ttl_seconds,
            "access_token_hash": encrypted.access_token_hash,
            "passphrase": None,
        }
        if encrypted.passphrase is not None:
            body["passphrase"] = {
                "kdf": "pbkdf2-sha256",
                "salt": crypto.b64url_encode(encrypted.passphrase.salt),
                "iterations": encrypted.passphrase.iterations,
                "verifier_hash": encrypted.passphrase_verifier_hash,
            }

        created = self._post(f"{self.base_url}/api/secrets", body, authenticated=True)
        return CreatedSecret(
            link=f"{created['url']}#{crypto.encode_key(key)}",
            secret_id=created["secret_id"],
            receipt_id=created["receipt_id"],
            receipt_token=created["receipt_token"],
            expires_at=_parse_time(created["expires_at"]),
        )

    def receipt(self, receipt_token: str) -> dict[str, Any]:
        """Return the receipt: ``state`` (pending, viewed, expired or burned) and times."""
        body = {"receipt_token": receipt_token}
        return self._post(f"{self.base_url}/api/receipts/lookup", body, authenticated=True)

    def burn(self, receipt_token: str) -> dict[str, Any]:
        """Delete the ciphertext of a pending secret and return the receipt.

        Burning a burned secret again returns its receipt unchanged.

        :raises SecretUnavailable: the secret was already viewed or has expired.
            The exception's ``receipt`` attribute contains the receipt.
        """
        body = {"receipt_token": receipt_token}
        return self._post(f"{self.base_url}/api/receipts/burn", body, authenticated=True)

    def reveal(self, link: str, passphrase: str | None = None) -> str:
        """Claim the secret behind ``link`` once, decrypt it locally and return it.

        This does what the reveal page does, against the link's own host.

        :raises InvalidLink: the link or its key is damaged; nothing was sent.
        :raises PassphraseRequired: the secret needs a passphrase; nothing was claimed.
        :raises WrongPassphrase: the passphrase is wrong; the fifth wrong one burns it.
        :raises SecretUnavailable: the secret was already viewed, expired or burned.
        """
        parsed = parse_link(link)
        access_token = crypto.b64url_encode(crypto.derive_access_token(parsed.key))
        request = {"secret_id": parsed.secret_id, "access_token": access_token}

        status = self._post(f"{parsed.api_base}/api/secrets/status", request, authenticated=False)
        parameters = _passphrase_parameters(status.get("passphrase"))
        if parameters is not None:
            if passphrase is None:
                raise PassphraseRequired("this secret is protected by a passphrase")
            try:
                encryption_key, verifier = crypto.derive_passphrase_keys(
                    parsed.key, passphrase, parameters
                )
            except ValueError as exc:
                raise InvalidSecretRequest(str(exc)) from exc
            request["passphrase_verifier"] = crypto.b64url_encode(verifier)
        else:
            encryption_key = crypto.derive_encryption_key(parsed.key)

        claimed = self._post(f"{parsed.api_base}/api/secrets/reveal", request, authenticated=False)
        return crypto.decrypt(
            crypto.b64url_decode(claimed["ciphertext"]),
            crypto.b64url_decode(claimed["nonce"]),
            encryption_key,
        )


def _passphrase_parameters(value: dict[str, Any] | None) -> crypto.PassphraseParameters | None:
    if not value:
        return None
    if value.get("kdf") != "pbkdf2-sha256":
        raise SecretServiceError(f"unsupported passphrase KDF {value.get('kdf')!r}")
    return crypto.PassphraseParameters(
        salt=crypto.b64url_decode(value["salt"]), iterations=int(value["iterations"])
    )
