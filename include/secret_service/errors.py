"""Exceptions that the secret service client raises."""

from __future__ import annotations

from typing import Any


class SecretServiceError(Exception):
    """Base class of every error the client raises."""


class InvalidSecretRequest(SecretServiceError, ValueError):
    """A lifetime, plaintext, passphrase or link breaks the service's limits."""


class InvalidLink(InvalidSecretRequest):
    """The link is not a one-time secret link, or its key is missing or damaged."""


class AuthenticationFailed(SecretServiceError):
    """The service rejected the service token (``SECRET_SERVICE_TOKEN``)."""


class SecretUnavailable(SecretServiceError):
    """The secret was already viewed, has expired or was burned.

    ``receipt`` contains the receipt when the service returned one (burn only).
    """

    def __init__(self, message: str, receipt: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.receipt = receipt


class AccessDenied(SecretServiceError):
    """The link's key does not match the secret, or the receipt token is unknown."""


class PassphraseRequired(SecretServiceError):
    """The secret is protected by a passphrase and none was given."""


class WrongPassphrase(SecretServiceError):
    """The passphrase is wrong; ``attempts_left`` more wrong ones burn the secret."""

    def __init__(self, message: str, attempts_left: int) -> None:
        super().__init__(message)
        self.attempts_left = attempts_left


class RateLimited(SecretServiceError):
    """The service rejected the request because this address sent too many."""

    def __init__(self, message: str, retry_after_seconds: int | None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class ConfigurationError(SecretServiceError):
    """A required setting is missing or invalid."""


class ServiceUnreachable(SecretServiceError):
    """The connection failed or timed out, or the TLS certificate did not verify."""
