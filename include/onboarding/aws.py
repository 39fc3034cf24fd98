"""AWS clients for onboarding: the operator's through the provider hooks, the client's own.

Operator calls go through the Airflow amazon provider (``aws_default``
connection): :class:`S3Hook`, :class:`SecretsManagerHook`, :class:`SesHook`,
and :class:`AwsBaseHook` with ``client_type`` for IAM, KMS and STS.
Verification instead builds a boto3 session from the client's fetched
credentials, pointed at the same endpoint as the connection.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

AWS_CONN_ID = os.environ.get("ONBOARDING_AWS_CONN_ID", "aws_default")

POLICY_MODE_AWS = "aws"
POLICY_MODE_EMULATOR = "emulator"

# Verification probes must fail fast rather than retry a denial.
CLIENT_BOTO_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10)


def base_hook(client_type: str):
    """Return an AwsBaseHook for ``client_type`` (for example "iam", "kms", "sts")."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    return AwsBaseHook(aws_conn_id=AWS_CONN_ID, client_type=client_type)


def iam_client() -> Any:
    """Return the operator's IAM client (boto3 ``iam``)."""
    return base_hook("iam").get_conn()


def kms_client() -> Any:
    """Return the operator's KMS client (boto3 ``kms``)."""
    return base_hook("kms").get_conn()


def sts_client() -> Any:
    """Return the operator's STS client (boto3 ``sts``)."""
    return base_hook("sts").get_conn()


def s3_hook():
    """Return the operator's S3Hook."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=AWS_CONN_ID)


def s3_client() -> Any:
    """Return the operator's S3 client (boto3 ``s3``) from the S3Hook."""
    return s3_hook().get_conn()


def secrets_hook():
    """Return the operator's SecretsManagerHook."""
    from airflow.providers.amazon.aws.hooks.secrets_manager import SecretsManagerHook

    return SecretsManagerHook(aws_conn_id=AWS_CONN_ID)


def ses_hook():
    """Return the operator's SesHook."""
    from airflow.providers.amazon.aws.hooks.ses import SesHook

    return SesHook(aws_conn_id=AWS_CONN_ID)


def endpoint_url() -> str | None:
    """Return the endpoint of the ``aws_default`` connection's extras, or None for AWS."""
    hook = base_hook("sts")
    return hook.conn_config.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None


def region_name() -> str:
    """Return the connection's region, then ``AWS_DEFAULT_REGION``, then us-east-1."""
    hook = base_hook("sts")
    return hook.conn_config.region_name or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def account_id() -> str:
    """Return the operator's AWS account id (STS GetCallerIdentity)."""
    return sts_client().get_caller_identity()["Account"]


def is_loopback_endpoint(url: str | None) -> bool:
    """Tell whether ``url`` points at this machine (an emulator, not AWS)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def policy_mode() -> str:
    """Return how bucket policies are applied: "aws" or "emulator".

    ``BUCKET_POLICY_MODE`` sets it; without it, a loopback endpoint means the
    local emulator.
    """
    mode = os.environ.get("BUCKET_POLICY_MODE", "").strip().lower()
    if mode in (POLICY_MODE_AWS, POLICY_MODE_EMULATOR):
        return mode
    if mode:
        raise ValueError(
            f"invalid BUCKET_POLICY_MODE {mode!r}: use 'aws' or 'emulator', or leave it unset"
        )
    return POLICY_MODE_EMULATOR if is_loopback_endpoint(endpoint_url()) else POLICY_MODE_AWS


def client_session(access_key_id: str, secret_access_key: str, session_token: str | None = None):
    """Build a boto3 session that acts as the client, not as the operator."""
    return boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        region_name=region_name(),
    )


def session_client(session, service: str) -> Any:
    """Return a client of ``session`` for ``service`` on the connection's endpoint."""
    return session.client(service, endpoint_url=endpoint_url(), config=CLIENT_BOTO_CONFIG)


def error_code(exc: Exception) -> str:
    """Return the AWS error code of a botocore ClientError, or the exception's class name."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code") or type(exc).__name__)
