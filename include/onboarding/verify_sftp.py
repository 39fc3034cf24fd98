"""SFTP checks through the real SFTP server with the client's login.

Logs in with the issued password, uploads a canary under ``/incoming``,
downloads it, compares SHA-256, deletes it, and proves that a wrong password
is refused.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass

import paramiko
from botocore.exceptions import ClientError

from include.onboarding import aws
from include.onboarding.report import VerificationReport
from include.onboarding.verify_sdk import purge_versions

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 15
CANARY_SIZE_BYTES = 64 * 1024
SFTP_CANARY_PREFIX = ".onboarding-canary-sftp-"
# An SFTP server may upload to S3 after the client closed the file (the
# local gateway caches writes for a few seconds), so the S3 side is polled.
S3_WAIT_SECONDS = 30
S3_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class SftpEndpoint:
    """The SFTP server's address and the host key it must present."""

    host: str
    port: int
    host_public_key: str | None = None

    @classmethod
    def from_env(cls) -> SftpEndpoint:
        """Read ``SFTP_HOST``, ``SFTP_PORT`` (default 22) and ``SFTP_HOST_PUBLIC_KEY``.

        The public key is one OpenSSH line, ``ssh-ed25519 AAAA...``.
        """
        host = os.environ.get("SFTP_HOST")
        if not host:
            raise RuntimeError("SFTP_HOST is not set: set it to the SFTP server's host name")
        return cls(
            host=host,
            port=int(os.environ.get("SFTP_PORT", "22")),
            host_public_key=os.environ.get("SFTP_HOST_PUBLIC_KEY") or None,
        )


def _trust_host_key(ssh: paramiko.SSHClient, endpoint: SftpEndpoint) -> None:
    if endpoint.host_public_key:
        key_type, key_data = endpoint.host_public_key.split()[:2]
        name = endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"
        ssh.get_host_keys().add(
            name, key_type, paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))
        )
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        return
    # NOTE: without SFTP_HOST_PUBLIC_KEY the server's key is accepted unchecked,
    # so set it wherever the server is not on this machine.
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507


def _connect(endpoint: SftpEndpoint, username: str, password: str) -> paramiko.SSHClient:
    ssh = paramiko.SSHClient()
    _trust_host_key(ssh, endpoint)
    ssh.connect(
        endpoint.host,
        port=endpoint.port,
        username=username,
        password=password,
        timeout=CONNECT_TIMEOUT_SECONDS,
        banner_timeout=CONNECT_TIMEOUT_SECONDS,
        auth_timeout=CONNECT_TIMEOUT_SECONDS,
        allow_agent=False,
        look_for_keys=False,
    )
    return ssh


def _wait_for_object(bucket: str, key: str, present: bool) -> dict | None:
    """Poll S3 as the operator until ``key`` exists (or is gone); return its head or None."""
    s3 = aws.s3_client()
    deadline = time.monotonic() + S3_WAIT_SECONDS
    while True:
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if aws.error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                raise
            head = None
        if (head is not None) == present or time.monotonic() > deadline:
            return head
        time.sleep(S3_POLL_SECONDS)


def _round_trip(
    report: VerificationReport, sftp: paramiko.SFTPClient, bucket: str, kms_key_arn: str
) -> str:
    """Upload, check in S3, download, compare and delete a canary; return its S3 key."""
    name = f"{SFTP_CANARY_PREFIX}{uuid.uuid4().hex[:12]}.bin"
    remote = f"/incoming/{name}"
    key = f"incoming/{name}"
    payload = secrets.token_bytes(CANARY_SIZE_BYTES)
    digest = hashlib.sha256(payload).hexdigest()

    sftp.putfo(io.BytesIO(payload), remote, confirm=False)
    report.add("sftp: upload canary to /incoming", "uploaded", "uploaded", True)

    head = _wait_for_object(bucket, key, present=True)
    report.add(
        "sftp: canary stored in the bucket", key, key if head else "not found", head is not None
    )
    report.add_equal(
        "sftp: canary stored with SSE-KMS and the client key",
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn},
        {
            "ServerSideEncryption": (head or {}).get("ServerSideEncryption"),
            "SSEKMSKeyId": (head or {}).get("SSEKMSKeyId"),
        },
    )

    buffer = io.BytesIO()
    sftp.getfo(remote, buffer)
    observed = hashlib.sha256(buffer.getvalue()).hexdigest()
    report.add_equal("sftp: downloaded canary SHA-256", digest, observed)

    sftp.remove(remote)
    deleted = _wait_for_object(bucket, key, present=False) is None
    report.add(
        "sftp: canary deleted from the bucket",
        "not found",
        "not found" if deleted else "still present",
        deleted,
    )
    return key


def check_session(
    report: VerificationReport,
    endpoint: SftpEndpoint,
    username: str,
    password: str,
    bucket: str,
    kms_key_arn: str,
) -> None:
    """Log in with the issued password and move a canary through the session."""
    try:
        ssh = _connect(endpoint, username, password)
    except (paramiko.SSHException, OSError) as exc:
        report.add("sftp: login with the issued password", "logged in", type(exc).__name__, False)
        return
    report.add("sftp: login with the issued password", "logged in", "logged in", True)
    try:
        sftp = ssh.open_sftp()
        key = _round_trip(report, sftp, bucket, kms_key_arn)
        purge_versions(bucket, key)
    except (paramiko.SSHException, OSError) as exc:
        report.add("sftp: canary round trip", "completed", f"{type(exc).__name__}: {exc}", False)
    finally:
        ssh.close()


def check_wrong_password(report: VerificationReport, endpoint: SftpEndpoint, username: str) -> None:
    """Prove that the server refuses the user with a wrong password."""
    wrong = secrets.token_urlsafe(24)
    try:
        ssh = _connect(endpoint, username, wrong)
    except paramiko.AuthenticationException:
        observed = "refused"
    except (paramiko.SSHException, OSError) as exc:
        observed = type(exc).__name__
    else:
        ssh.close()
        observed = "logged in"
    report.add("sftp: wrong password refused", "refused", observed, observed == "refused")


def verify_sftp(
    report: VerificationReport,
    endpoint: SftpEndpoint,
    login: dict,
    username: str,
    bucket: str,
    kms_key_arn: str,
) -> None:
    """Run every SFTP check with the login from the client's login secret."""
    check_session(report, endpoint, username, login["Password"], bucket, kms_key_arn)
    check_wrong_password(report, endpoint, username)
    log.info(
        "SFTP checks done for client %s (user %s at %s:%d, bucket %s): %d failed so far",
        login.get("ClientId"),
        username,
        endpoint.host,
        endpoint.port,
        bucket,
        len(report.failed),
    )
