"""Client ids and every AWS name derived from them.

All resource names come from :func:`client_names`, so a client's bucket, key
alias, IAM identities and secrets can always be found again from its id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

CLIENT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{2,40}[a-z0-9]$")

# The prefix goes in front of bucket and IAM names. Bucket names are limited
# to 63 characters and IAM user and role names to 64, so with the longest
# client id (42) and suffixes such as "-sftp" the prefix may have 16 at most.
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$")
DEFAULT_PREFIX = "cdx"

# Transfer Family server ids are "s-" followed by 17 hex digits. The local
# gateway uses a fixed id of that shape, so login secret names match production.
SERVER_ID_PATTERN = re.compile(r"^s-[0-9a-f]{17}$")
DEFAULT_SERVER_ID = "s-0000000000000000a"


class InvalidNameError(ValueError):
    """A client id, prefix or server id that does not match its rule."""


def validate_client_id(client_id: object) -> str:
    """Return ``client_id`` if it is a valid slug, else raise InvalidNameError."""
    if not isinstance(client_id, str) or not CLIENT_ID_PATTERN.fullmatch(client_id):
        raise InvalidNameError(
            f"invalid client id {client_id!r}: use 4 to 42 characters, lowercase "
            "letters, digits and hyphens, starting with a letter and ending with "
            "a letter or digit (for example 'acme-health')"
        )
    if "--" in client_id:
        raise InvalidNameError(
            f"invalid client id {client_id!r}: consecutive hyphens are not allowed "
            "because bucket names derived from it would be ambiguous"
        )
    return client_id


def validate_prefix(prefix: object) -> str:
    """Return ``prefix`` if it can lead bucket and IAM names, else raise."""
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidNameError(
            f"invalid name prefix {prefix!r}: use 2 to 16 lowercase letters, digits "
            "and hyphens, starting with a letter (set EXCHANGE_PREFIX)"
        )
    return prefix


def validate_server_id(server_id: object) -> str:
    """Return ``server_id`` if it has the Transfer Family shape, else raise."""
    if not isinstance(server_id, str) or not SERVER_ID_PATTERN.fullmatch(server_id):
        raise InvalidNameError(
            f"invalid SFTP server id {server_id!r}: expected 's-' followed by 17 "
            "lowercase hex digits (set SFTP_SERVER_ID)"
        )
    return server_id


@dataclass(frozen=True)
class ClientNames:
    """Every AWS name that belongs to one client."""

    client_id: str
    prefix: str
    server_id: str
    bucket: str
    kms_alias: str
    sdk_user: str
    sftp_role: str
    sftp_user: str
    sdk_secret: str
    sftp_login_secret: str
    secret_prefix: str


def client_names(
    client_id: str,
    prefix: str | None = None,
    server_id: str | None = None,
) -> ClientNames:
    """Derive the names of a client's resources.

    ``prefix`` and ``server_id`` default to ``EXCHANGE_PREFIX`` and
    ``SFTP_SERVER_ID`` from the environment, then to the built-in defaults.
    """
    validate_client_id(client_id)
    prefix = validate_prefix(prefix or os.environ.get("EXCHANGE_PREFIX") or DEFAULT_PREFIX)
    server_id = validate_server_id(
        server_id or os.environ.get("SFTP_SERVER_ID") or DEFAULT_SERVER_ID
    )
    secret_prefix = f"{prefix}/{client_id}"
    return ClientNames(
        client_id=client_id,
        prefix=prefix,
        server_id=server_id,
        bucket=f"{prefix}-{client_id}",
        kms_alias=f"alias/{prefix}/{client_id}",
        sdk_user=f"{prefix}-{client_id}-sdk",
        sftp_role=f"{prefix}-{client_id}-sftp",
        sftp_user=client_id,
        sdk_secret=f"{secret_prefix}/sdk-access-key",
        sftp_login_secret=sftp_login_secret_name(server_id, client_id),
        secret_prefix=secret_prefix,
    )


def sftp_login_secret_name(server_id: str, username: str) -> str:
    """Return the Transfer Family secret name for one SFTP login."""
    return f"aws/transfer/{server_id}/{username}"


@dataclass(frozen=True)
class ExchangeNames:
    """Names of the resources the exchange itself owns, shared by all clients."""

    prefix: str
    log_bucket: str
    exchange_kms_alias: str


def exchange_names(prefix: str | None = None) -> ExchangeNames:
    """Derive the names of the exchange's own resources from the prefix."""
    prefix = validate_prefix(prefix or os.environ.get("EXCHANGE_PREFIX") or DEFAULT_PREFIX)
    return ExchangeNames(
        prefix=prefix,
        log_bucket=f"{prefix}-access-logs",
        exchange_kms_alias=f"alias/{prefix}/exchange",
    )
