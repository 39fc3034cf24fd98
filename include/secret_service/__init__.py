"""One-time secret service: HTTPS site and API for shown-once, expiring secrets.

Secrets are encrypted on the client (AES-256-GCM); the key travels only in the
link's fragment, so the server never stores a key that can decrypt. DAGs use
:class:`SecretServiceClient`; ``python -m include.secret_service serve`` runs
the service. See ``docs/secret-service.md`` for guarantees and limits.
"""

from include.secret_service.client import CreatedSecret, SecretServiceClient
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

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "ConfigurationError",
    "CreatedSecret",
    "InvalidLink",
    "InvalidSecretRequest",
    "PassphraseRequired",
    "RateLimited",
    "SecretServiceClient",
    "SecretServiceError",
    "SecretUnavailable",
    "ServiceUnreachable",
    "WrongPassphrase",
]
