"""Secrets Manager storage of issued credentials, through the SecretsManagerHook.

Every secret is encrypted with the exchange's KMS key and tagged with the
client id. Callers pass secret ARNs between tasks and read values here,
inside the task that needs them, where each value is masked in the logs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from include.onboarding import aws
from include.onboarding.provisioning import as_tag_list

log = logging.getLogger(__name__)

# Keys of a stored JSON secret whose values are credentials, masked on read.
SENSITIVE_KEYS = frozenset(
    {"SecretAccessKey", "Password", "ReceiptToken", "Link", "PreviousSecretAccessKey"}
)


def mask(value: Any) -> None:
    """Register ``value`` with Airflow's secrets masker (task logs and supervisor)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # Only the library code runs without Airflow.
        return
    mask_secret(value)


def mask_sensitive(data: Any) -> None:
    """Mask every value under a credential key anywhere in a decoded secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in SENSITIVE_KEYS and isinstance(value, str):
                mask(value)
            else:
                mask_sensitive(value)
    elif isinstance(data, list):
        for item in data:
            mask_sensitive(item)


def describe(name: str) -> dict[str, Any] | None:
    """Return the secret's metadata (DescribeSecret), or None when it does not exist."""
    client = aws.secrets_hook().get_conn()
    try:
        return client.describe_secret(SecretId=name)
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def read_json(secret_id: str) -> dict[str, Any] | None:
    """Read a JSON secret by name or ARN, mask its credentials, or return None if missing."""
    try:
        data = aws.secrets_hook().get_secret_as_dict(secret_id)
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    mask_sensitive(data)
    return data


def write_json(
    name: str,
    value: dict[str, Any],
    kms_key_arn: str,
    tags: dict[str, str],
    description: str,
) -> str:
    """Store ``value`` as the current version of secret ``name`` and return its ARN.

    Creates the secret on first use; later calls add a version, which
    Secrets Manager labels AWSCURRENT and moves the old one to AWSPREVIOUS.
    """
    mask_sensitive(value)
    client = aws.secrets_hook().get_conn()
    payload = json.dumps(value, sort_keys=True)
    existing = describe(name)
    if existing is None:
        arn = client.create_secret(
            Name=name,
            Description=description,
            KmsKeyId=kms_key_arn,
            SecretString=payload,
            Tags=as_tag_list(tags),
        )["ARN"]
        log.info("secret %s created for client %s", name, tags.get("client-id"))
        return arn

    arn = existing["ARN"]
    if existing.get("KmsKeyId") != kms_key_arn:
        client.update_secret(SecretId=arn, KmsKeyId=kms_key_arn, Description=description)
    client.put_secret_value(SecretId=arn, SecretString=payload)
    client.tag_resource(SecretId=arn, Tags=as_tag_list(tags))
    log.info("secret %s updated for client %s", name, tags.get("client-id"))
    return arn
