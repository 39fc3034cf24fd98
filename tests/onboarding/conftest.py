"""Fixtures for the onboarding tests.

``moto_env`` runs a private moto server with IAM authentication on, for the
AWS-only tests of provisioning, credentials and verification; it binds to
127.0.0.1 only. End-to-end DAG tests use the shared ``local_stack`` fixture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
OPERATOR_USER = "onboarding-test-operator"
SES_TEST_SENDER = "exchange@example.com"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto server at {url} did not start within {timeout} s")


@pytest.fixture(scope="session")
def own_moto(tmp_path_factory):
    """Start a moto server on loopback with IAM auth on; return its operator settings."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_file = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log_file, "wb") as out:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(endpoint)
        bootstrap = dict(
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",  # noqa: S106
        )
        iam = boto3.client("iam", **bootstrap)
        iam.create_user(UserName=OPERATOR_USER)
        iam.put_user_policy(
            UserName=OPERATOR_USER,
            PolicyName="operator",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        boto3.client("ses", **bootstrap).verify_email_identity(EmailAddress=SES_TEST_SENDER)
        # From here on every request must be signed by a known IAM identity.
        request = urllib.request.Request(  # noqa: S310
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        yield {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "SES_SENDER": SES_TEST_SENDER,
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": REGION}}
            ),
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def moto_env(own_moto, monkeypatch):
    """Point the AWS code at the private moto server, with a fresh name prefix."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "BUCKET_POLICY_MODE",
        "SFTP_GATEWAY_PRINCIPAL_ARN",
        "SFTP_HOST",
        "SFTP_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in own_moto.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EXCHANGE_PREFIX", f"t{uuid.uuid4().hex[:8]}")
    return dict(os.environ)


def operator_client(service: str):
    """Return a boto3 client with the operator's keys on the configured endpoint."""
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", REGION),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
