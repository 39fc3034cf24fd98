"""Configuration of the secret service, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# A shorter token could be guessed or typed by hand; 32 characters of
# secrets.token_urlsafe() carry 192 bits.
TOKEN_MIN_LENGTH = 32
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_DEV_CERT_DIR = ".local/tls"
DEFAULT_DATABASE = "secret_service"
# Receipts outlive the ciphertext so the exchange can still tell "viewed" from
# "expired unviewed" weeks later.
DEFAULT_RECEIPT_RETENTION_SECONDS = 30 * 24 * 3600
DEFAULT_PURGE_INTERVAL_SECONDS = 60.0


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class RateLimits:
    """Per-IP token buckets: ``capacity`` requests, refilled at ``per_minute``."""

    # Status and reveal requests of the reveal page and the client.
    reveal_capacity: int = 30
    reveal_per_minute: float = 30.0
    # Receipt and burn requests (they also need the service token).
    receipt_capacity: int = 60
    receipt_per_minute: float = 60.0
    # Wrong access tokens, receipt tokens and service tokens. An address that
    # used these up gets 429 on every rate-limited route until they refill.
    failure_capacity: int = 10
    failure_per_minute: float = 1.0


@dataclass(frozen=True)
class Settings:
    """Everything ``serve`` needs; tests build it directly."""

    token: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    public_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    dev_cert_dir: Path = Path(DEFAULT_DEV_CERT_DIR)
    database: str = DEFAULT_DATABASE
    receipt_retention_seconds: int = DEFAULT_RECEIPT_RETENTION_SECONDS
    purge_interval_seconds: float = DEFAULT_PURGE_INTERVAL_SECONDS
    forwarded_allow_ips: str | None = None
    rate_limits: RateLimits = RateLimits()

    def link_base(self) -> str:
        """Return the base URL of links, without a trailing slash."""
        return (self.public_url or f"https://{self.host}:{self.port}").rstrip("/")


def validate_token(token: str | None) -> str:
    """Return ``token`` or raise SettingsError when it is missing or too short."""
    hint = (
        f"set it to a random string of at least {TOKEN_MIN_LENGTH} characters, e.g. "
        "the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    if not token:
        raise SettingsError(f"SECRET_SERVICE_TOKEN is not set: {hint}")
    if len(token) < TOKEN_MIN_LENGTH:
        raise SettingsError(f"SECRET_SERVICE_TOKEN has {len(token)} characters: {hint}")
    return token


def _int_env(
    env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SettingsError(f"{name} must be {allowed}, got {value}")
    return value


def _tls_files(env: Mapping[str, str]) -> tuple[Path | None, Path | None]:
    cert = env.get("SECRET_SERVICE_TLS_CERT") or None
    key = env.get("SECRET_SERVICE_TLS_KEY") or None
    if bool(cert) != bool(key):
        raise SettingsError(
            "set both SECRET_SERVICE_TLS_CERT and SECRET_SERVICE_TLS_KEY, or neither "
            "to use a generated development certificate"
        )
    if cert is None or key is None:
        return None, None
    for name, path in (("SECRET_SERVICE_TLS_CERT", cert), ("SECRET_SERVICE_TLS_KEY", key)):
        if not Path(path).is_file():
            raise SettingsError(f"{name} points to {path!r}, which is not a file")
    return Path(cert), Path(key)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``).

    :raises SettingsError: a variable is missing or invalid.
    """
    env = os.environ if env is None else env
    token = validate_token(env.get("SECRET_SERVICE_TOKEN"))
    tls_cert, tls_key = _tls_files(env)

    public_url = env.get("SECRET_SERVICE_PUBLIC_URL", "")
    if public_url and urlsplit(public_url).scheme != "https":
        raise SettingsError(
            f"SECRET_SERVICE_PUBLIC_URL must start with https://, got {public_url!r}"
        )

    return Settings(
        token=token,
        host=env.get("SECRET_SERVICE_HOST") or DEFAULT_HOST,
        port=_int_env(env, "SECRET_SERVICE_PORT", DEFAULT_PORT, minimum=1, maximum=65535),
        public_url=public_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        dev_cert_dir=Path(env.get("SECRET_SERVICE_DEV_CERT_DIR") or DEFAULT_DEV_CERT_DIR),
        database=env.get("SECRET_SERVICE_DB") or DEFAULT_DATABASE,
        receipt_retention_seconds=_int_env(
            env,
            "SECRET_SERVICE_RECEIPT_RETENTION_SECONDS",
            DEFAULT_RECEIPT_RETENTION_SECONDS,
            minimum=3600,
        ),
        purge_interval_seconds=_int_env(
            env, "SECRET_SERVICE_PURGE_INTERVAL_SECONDS", int(DEFAULT_PURGE_INTERVAL_SECONDS), 1
        ),
        forwarded_allow_ips=env.get("SECRET_SERVICE_FORWARDED_ALLOW_IPS") or None,
    )
