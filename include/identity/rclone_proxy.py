"""The local SFTP gateway's identity lookup: an ``rclone serve sftp --auth-proxy`` program.

rclone runs this program once per new login, with JSON on stdin such as
``{"user": "acme", "pass": "...", "client_ip": "127.0.0.1"}`` (``public_key``
in place of ``pass`` for key logins). On success the program prints the
configuration of an S3 backend rooted at the client's bucket. The backend
uses temporary credentials of the login's role from ``sts:AssumeRole``, so
every SFTP operation is checked against that role's bucket-scoped policy,
as on Transfer Family. Any other outcome exits non-zero, and rclone then
rejects the login and logs this program's stderr.

The program runs as the gateway identity, taken from the environment:

``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``
    The gateway's keys. It may only read login secrets and assume client
    SFTP roles.
``AWS_ENDPOINT_URL``
    The AWS endpoint (the local emulator); the S3 backend uses it too.
``AWS_DEFAULT_REGION``
    Defaults to ``us-east-1``.
``SFTP_SERVER_ID``
    The server id in the login secret names (see :mod:`include.naming`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from include.identity.lookup import Login, authenticate
from include.naming import DEFAULT_SERVER_ID

log = logging.getLogger("include.identity.rclone_proxy")

EXIT_REJECTED = 1
EXIT_GATEWAY_ERROR = 2

# rclone sends a few short fields; anything larger is not a login request.
MAX_INPUT_BYTES = 64 * 1024
# One hour, the AssumeRole default.
# NOTE: rclone reuses a login's backend, these credentials included, for new
# connections with the same user, password and client IP until it has been
# unused for 5 minutes (lib/cache in rclone's source). A login kept busy for
# longer than this duration therefore fails until it rests, and disabling a
# client takes effect only once its cached backend has expired.
SESSION_DURATION_SECONDS = 3600
DEFAULT_REGION = "us-east-1"


class GatewayConfigError(RuntimeError):
    """The gateway's environment is missing a required variable."""


def read_request(stream: Any) -> dict[str, Any]:
    """Read and decode rclone's JSON request from ``stream``.

    :raises ValueError: when the input is too large, not JSON or not an object.
    """
    raw = stream.buffer.read(MAX_INPUT_BYTES + 1) if hasattr(stream, "buffer") else stream.read()
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if len(raw) > MAX_INPUT_BYTES:
        raise ValueError(f"request is larger than {MAX_INPUT_BYTES} bytes")
    request = json.loads(raw)
    if not isinstance(request, dict):
        raise ValueError("request is not a JSON object")
    return request


def gateway_settings(environ: dict[str, str]) -> dict[str, str]:
    """Return the gateway's endpoint, region, server id and keys from ``environ``.

    Explicit keys are required so boto3 never falls back to other credential
    sources such as an instance metadata endpoint.

    :raises GatewayConfigError: naming the missing variable.
    """
    settings = {
        "endpoint_url": environ.get("AWS_ENDPOINT_URL", ""),
        "region": environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        "server_id": environ.get("SFTP_SERVER_ID") or DEFAULT_SERVER_ID,
        "access_key_id": environ.get("AWS_ACCESS_KEY_ID", ""),
        "secret_access_key": environ.get("AWS_SECRET_ACCESS_KEY", ""),
    }
    for name, variable in (
        ("endpoint_url", "AWS_ENDPOINT_URL"),
        ("access_key_id", "AWS_ACCESS_KEY_ID"),
        ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    ):
        if not settings[name]:
            raise GatewayConfigError(f"{variable} is not set in the SFTP gateway's environment")
    return settings


def gateway_client(settings: dict[str, str], service: str) -> Any:
    """Build a boto3 client for ``service`` as the gateway identity."""
    return boto3.client(
        service,
        endpoint_url=settings["endpoint_url"],
        region_name=settings["region"],
        aws_access_key_id=settings["access_key_id"],
        aws_secret_access_key=settings["secret_access_key"],
        config=Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2}),
    )


def assume_login_role(sts_client: Any, login: Login) -> dict[str, str]:
    """Assume the login's role and return its temporary credentials.

    The login's ``Policy``, if any, is passed as the session policy, as
    Transfer Family does.
    """
    params: dict[str, Any] = {
        "RoleArn": login.role_arn,
        # Session names allow at most 64 characters; CloudTrail shows this one.
        "RoleSessionName": f"sftp-{login.username}"[:64],
        "DurationSeconds": SESSION_DURATION_SECONDS,
    }
    if login.policy:
        # NOTE: moto 5.2 accepts the session policy but does not enforce it,
        # so locally only the role's own policy limits the session.
        params["Policy"] = login.policy
    return sts_client.assume_role(**params)["Credentials"]


def backend_config(login: Login, credentials: dict[str, str], settings: dict[str, str]) -> dict:
    """Build rclone's S3 backend configuration for one login.

    :param login: the authenticated login; ``_root`` is its bucket and prefix.
    :param credentials: ``AccessKeyId``, ``SecretAccessKey`` and
        ``SessionToken`` from ``sts:AssumeRole``.
    :param settings: the gateway settings from :func:`gateway_settings`.
    :return: the JSON object rclone expects on stdout.
    """
    root = login.bucket if not login.key_prefix else f"{login.bucket}/{login.key_prefix}"
    config = {
        "type": "s3",
        "provider": "AWS",
        "env_auth": "false",
        "endpoint": settings["endpoint_url"],
        "region": settings["region"],
        "access_key_id": credentials["AccessKeyId"],
        "secret_access_key": credentials["SecretAccessKey"],
        "session_token": credentials["SessionToken"],
        # Path-style addressing, because the emulator is one host name.
        "force_path_style": "true",
        # The role may not create or inspect buckets, only use its own.
        "no_check_bucket": "true",
        # The AWS provider otherwise signs uploads with trailing checksums,
        # which need TLS; the local endpoint is plain HTTP.
        "use_unsigned_payload": "true",
        "_root": root,
    }
    if login.kms_key_arn:
        # The client's bucket policy rejects uploads without SSE-KMS.
        config["server_side_encryption"] = "aws:kms"
        config["sse_kms_key_id"] = login.kms_key_arn
    return config


def run(stdin: Any, stdout: Any, environ: dict[str, str]) -> int:
    """Handle one rclone login request and return the process exit code."""
    try:
        request = read_request(stdin)
    except ValueError as exc:
        log.warning("SFTP login rejected: unreadable auth-proxy request: %s", exc)
        return EXIT_REJECTED
    username = request.get("user")
    shown_name = str(username)[:100]
    if "pass" not in request:
        log.warning("SFTP login rejected: user %s: only password logins are supported", shown_name)
        return EXIT_REJECTED

    try:
        settings = gateway_settings(environ)
    except GatewayConfigError as exc:
        log.error("SFTP gateway misconfigured: %s", exc)
        return EXIT_GATEWAY_ERROR

    login = authenticate(
        gateway_client(settings, "secretsmanager"),
        settings["server_id"],
        username,
        request.get("pass"),
        request.get("client_ip"),
    )
    if login is None:
        return EXIT_REJECTED

    try:
        credentials = assume_login_role(gateway_client(settings, "sts"), login)
    except (ClientError, BotoCoreError) as exc:
        log.error(
            "SFTP login failed: user %s, client %s: assuming role %s failed: %s",
            login.username,
            login.client_id,
            login.role_arn,
            exc,
        )
        return EXIT_GATEWAY_ERROR

    json.dump(backend_config(login, credentials, settings), stdout)
    stdout.flush()
    return 0


def main() -> None:
    """Run as rclone's ``--auth-proxy`` program."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="rclone-auth-proxy %(levelname)s %(message)s"
    )
    sys.exit(run(sys.stdin, sys.stdout, dict(os.environ)))


if __name__ == "__main__":
    main()
