"""The client side of the demo: the steps a client's IT staff take after the email.

Read the email from moto's SES store, open each one-time link the way the
reveal page does, then upload files over SFTP and over the AWS SDK with the
revealed credentials. No credential or link is printed or logged.
"""

from __future__ import annotations

import base64
import email
import json
import logging
import re
import time
import urllib.request
from dataclasses import dataclass
from email import policy as email_policy
from pathlib import Path

import boto3
import paramiko

log = logging.getLogger(__name__)

# The email has one section per access method, each under its own heading
# and followed by its link.
SECTION_HEADINGS = {"sdk": "AWS SDK and CLI access", "sftp": "SFTP access"}
LINK_PATTERN = re.compile(r'href="(https://[^"]+/s/[^"#]+#[^"]+)"')


@dataclass(frozen=True)
class SdkCredentials:
    """The access key behind the SDK link."""

    access_key_id: str
    secret_access_key: str
    region: str
    endpoint_url: str | None

    def __repr__(self) -> str:
        return f"SdkCredentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


@dataclass(frozen=True)
class SftpLogin:
    """The login behind the SFTP link."""

    host: str
    port: int
    username: str
    password: str

    def __repr__(self) -> str:
        return f"SftpLogin(host={self.host!r}, port={self.port}, username={self.username!r})"


def latest_email_to(aws_endpoint: str, recipient: str) -> str:
    """Return the HTML body of the newest message moto's SES sent to ``recipient``."""
    # moto's own API; on AWS the message is delivered to the client's inbox.
    with urllib.request.urlopen(f"{aws_endpoint}/moto-api/data.json", timeout=10) as response:  # noqa: S310
        data = json.load(response)
    bodies = []
    for raw in data.get("ses", {}).get("RawMessage", []):
        if recipient not in (raw.get("destinations") or []):
            continue
        message = email.message_from_string(raw["raw_data"], policy=email_policy.default)
        for part in message.walk():
            if part.get_content_type() == "text/html":
                bodies.append(part.get_content())
    if not bodies:
        raise LookupError(f"no email to {recipient} in the SES store of {aws_endpoint}")
    return bodies[-1]


def links_by_method(html: str) -> dict[str, str]:
    """Return the one-time link of each access method in the email body."""
    links = {}
    for method, heading in SECTION_HEADINGS.items():
        start = html.find(heading)
        if start < 0:
            continue
        match = LINK_PATTERN.search(html, start)
        if match:
            links[method] = match.group(1).replace("&amp;", "&")
    return links


def _fields(plaintext: str, separator: str) -> dict[str, str]:
    fields = {}
    for line in plaintext.splitlines():
        name, found, value = line.partition(separator)
        if found:
            fields[name.strip()] = value.strip()
    return fields


def parse_sdk_credentials(plaintext: str) -> SdkCredentials:
    """Read the access key from the text behind the SDK link."""
    fields = _fields(plaintext, "=")
    return SdkCredentials(
        access_key_id=fields["AWS_ACCESS_KEY_ID"],
        secret_access_key=fields["AWS_SECRET_ACCESS_KEY"],
        region=fields["AWS_DEFAULT_REGION"],
        endpoint_url=fields.get("AWS_ENDPOINT_URL"),
    )


def parse_sftp_login(plaintext: str) -> SftpLogin:
    """Read host, port, user name and password from the text behind the SFTP link."""
    fields = _fields(plaintext, ": ")
    return SftpLogin(
        host=fields["Host"],
        port=int(fields["Port"]),
        username=fields["User name"],
        password=fields["Password"],
    )


def upload_over_sftp(login: SftpLogin, host_public_key: str, files: list[Path]) -> list[str]:
    """Upload ``files`` into ``/incoming`` over SFTP and return the remote paths."""
    # An OpenSSH public key line: "ssh-ed25519 <base64> [comment]".
    key_data = host_public_key.split()[1]
    host_key = paramiko.Ed25519Key(data=base64.b64decode(key_data))
    transport = paramiko.Transport((login.host, login.port))
    try:
        transport.connect(hostkey=host_key, username=login.username, password=login.password)
        sftp = paramiko.SFTPClient.from_transport(transport)
        remote_paths = []
        for path in files:
            remote = f"/incoming/{path.name}"
            sftp.put(str(path), remote)
            remote_paths.append(remote)
            log.info("uploaded %s over SFTP as %s to %s", path.name, login.username, remote)
        sftp.close()
    finally:
        transport.close()
    return remote_paths


def upload_over_sdk(
    credentials: SdkCredentials, bucket: str, kms_key_arn: str, files: list[Path]
) -> list[str]:
    """Upload ``files`` under ``incoming/`` with the client's own access key."""
    s3 = boto3.client(
        "s3",
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name=credentials.region,
        endpoint_url=credentials.endpoint_url,
    )
    keys = []
    for path in files:
        key = f"incoming/{path.name}"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=path.read_bytes(),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
        )
        keys.append(key)
        log.info("uploaded %s over the SDK to s3://%s/%s", path.name, bucket, key)
    return keys


def wait_for_objects(s3_client, bucket: str, keys: list[str], timeout: float = 60.0) -> None:
    """Wait until every key exists, because the SFTP gateway writes a few seconds after close."""
    deadline = time.monotonic() + timeout
    missing = set(keys)
    while missing and time.monotonic() < deadline:
        listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="incoming/")
        missing -= {item["Key"] for item in listed.get("Contents", [])}
        if missing:
            time.sleep(1)
    if missing:
        raise TimeoutError(
            f"objects {sorted(missing)} did not appear in bucket {bucket} within {timeout:.0f} s"
        )
