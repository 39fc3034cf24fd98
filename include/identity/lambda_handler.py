"""Transfer Family custom identity provider: the production identity lookup.

Transfer Family invokes the Lambda with an event such as::

    {"username": "acme", "password": "...", "protocol": "SFTP",
     "serverId": "s-0123456789abcdef0", "sourceIp": "192.0.2.10"}

and expects the response of :func:`include.identity.lookup.lookup_identity`:
the role, the logical home directory and an optional session policy, or
``{}`` to reject the login. The function's execution role needs only
``secretsmanager:GetSecretValue`` on ``aws/transfer/*`` secrets.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import boto3

from include.identity.lookup import lookup_identity

log = logging.getLogger(__name__)
# Lambda's root logger passes WARNING and above; accepted logins are INFO.
logging.getLogger("include.identity").setLevel(logging.INFO)

# The server is SFTP only; FTP and FTPS logins are rejected even with a
# valid password.
SUPPORTED_PROTOCOLS = frozenset({"SFTP"})


@cache
def _secrets_client() -> Any:
    # Built once per Lambda container and reused across invocations.
    return boto3.client("secretsmanager")


def handle(event: Any, secrets_client: Any) -> dict[str, str]:
    """Authenticate the login in a Transfer Family ``event`` with ``secrets_client``."""
    if not isinstance(event, dict):
        log.warning("SFTP login rejected: the event is not a JSON object")
        return {}
    username = event.get("username")
    protocol = event.get("protocol")
    if protocol not in SUPPORTED_PROTOCOLS:
        log.warning(
            "SFTP login rejected: user %s, server %s: protocol %s is not supported",
            str(username)[:100],
            str(event.get("serverId"))[:40],
            str(protocol)[:10],
        )
        return {}
    return lookup_identity(
        secrets_client,
        event.get("serverId"),
        username,
        event.get("password"),
        event.get("sourceIp"),
    )


def lambda_handler(event: Any, context: Any) -> dict[str, str]:
    """Run as the Lambda entry point; ``context`` is unused."""
    return handle(event, _secrets_client())
