"""JSON policy documents for a client's bucket, identities and the log bucket.

Every builder is pure: it takes names and ARNs and returns a dict ready for
``json.dumps``. The documents are the ones AWS should enforce; what the local
emulator can evaluate is decided separately by :func:`emulator_variant`.
"""

from __future__ import annotations

import copy
from typing import Any

POLICY_VERSION = "2012-10-17"

SID_DENY_INSECURE_TRANSPORT = "DenyInsecureTransport"
SID_DENY_NON_KMS_ENCRYPTION = "DenyNonKmsEncryption"
SID_DENY_OTHER_KMS_KEYS = "DenyOtherKmsKeys"
SID_DENY_KMS_WITHOUT_KEY_ID = "DenyKmsWithoutKeyId"
SID_ALLOW_LOG_DELIVERY = "AllowServerAccessLogDelivery"

# S3 server access logs are delivered by this service principal.
LOG_DELIVERY_SERVICE = "logging.s3.amazonaws.com"
# Transfer Family assumes the SFTP role under this service principal.
TRANSFER_SERVICE = "transfer.amazonaws.com"

# Actions a client identity may take on its own bucket and objects.
CLIENT_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
CLIENT_BUCKET_ACTIONS = ["s3:ListBucket", "s3:GetBucketLocation"]
# SSE-KMS needs GenerateDataKey to write and Decrypt to read (and to finish
# multipart uploads).
CLIENT_KMS_ACTIONS = ["kms:GenerateDataKey", "kms:Decrypt"]


def bucket_arn(bucket: str) -> str:
    """Return the ARN of an S3 bucket."""
    return f"arn:aws:s3:::{bucket}"


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": POLICY_VERSION, "Statement": statements}


def client_access_policy(bucket: str, kms_key_arn: str) -> dict[str, Any]:
    """Build the identity policy shared by a client's SDK user and SFTP role.

    It allows listing the client's bucket, reading, writing and deleting its
    objects, and using the client's own KMS key for SSE-KMS; nothing else.
    """
    return _document(
        [
            {
                "Sid": "ListOwnBucket",
                "Effect": "Allow",
                "Action": CLIENT_BUCKET_ACTIONS,
                "Resource": bucket_arn(bucket),
            },
            {
                "Sid": "ReadWriteOwnObjects",
                "Effect": "Allow",
                "Action": CLIENT_OBJECT_ACTIONS,
                "Resource": f"{bucket_arn(bucket)}/*",
            },
            {
                "Sid": "UseOwnKmsKey",
                "Effect": "Allow",
                "Action": CLIENT_KMS_ACTIONS,
                "Resource": kms_key_arn,
            },
        ]
    )


def sftp_trust_policy(gateway_principal_arn: str | None, account_id: str) -> dict[str, Any]:
    """Build the trust policy of a client's SFTP role.

    :param gateway_principal_arn: the IAM principal of a self-hosted SFTP
        gateway, or None for AWS Transfer Family.
    :param account_id: the exchange's account; with Transfer Family it pins
        ``aws:SourceAccount`` so no other account's server can assume the role.
    """
    statement: dict[str, Any] = {
        "Sid": "AllowSftpServiceAssumeRole",
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
    }
    if gateway_principal_arn:
        statement["Principal"] = {"AWS": gateway_principal_arn}
    else:
        statement["Principal"] = {"Service": TRANSFER_SERVICE}
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return _document([statement])


def _deny_insecure_transport(bucket: str) -> dict[str, Any]:
    return {
        "Sid": SID_DENY_INSECURE_TRANSPORT,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def client_bucket_policy(bucket: str, kms_key_arn: str) -> dict[str, Any]:
    """Build the client bucket's policy: TLS only, and SSE-KMS with the client key only.

    An upload without encryption headers gets the bucket's default
    encryption (SSE-KMS with the client key), so only headers that ask for
    something else are denied. Servers that send no encryption headers on
    upload can therefore still write to the bucket.
    """
    objects = f"{bucket_arn(bucket)}/*"
    return _document(
        [
            _deny_insecure_transport(bucket),
            {
                "Sid": SID_DENY_NON_KMS_ENCRYPTION,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
                },
            },
            {
                "Sid": SID_DENY_OTHER_KMS_KEYS,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn
                    }
                },
            },
            {
                # An upload that requests SSE-KMS must also name the key, so
                # the DenyOtherKmsKeys statement always has a key id to check.
                "Sid": SID_DENY_KMS_WITHOUT_KEY_ID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": objects,
                "Condition": {
                    "StringEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            },
        ]
    )


def log_bucket_policy(log_bucket: str, account_id: str, bucket_prefix: str) -> dict[str, Any]:
    """Build the log bucket's policy: S3 log delivery for the exchange's buckets, TLS only.

    :param bucket_prefix: the name prefix of the buckets whose logs may be
        delivered (``<prefix>-``), checked through ``aws:SourceArn``.
    """
    return _document(
        [
            {
                "Sid": SID_ALLOW_LOG_DELIVERY,
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_SERVICE},
                "Action": ["s3:PutObject"],
                "Resource": f"{bucket_arn(log_bucket)}/*",
                "Condition": {
                    "ArnLike": {"aws:SourceArn": f"{bucket_arn(bucket_prefix)}*"},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            },
            _deny_insecure_transport(log_bucket),
        ]
    )


def is_conditional_public_deny(statement: dict[str, Any]) -> bool:
    """Tell whether a statement denies every principal only under a condition."""
    principal = statement.get("Principal")
    everyone = principal == "*" or principal == {"AWS": "*"}
    return statement.get("Effect") == "Deny" and everyone and "Condition" in statement


def emulator_variant(policy: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """Split a bucket policy into what the emulator can enforce and what it cannot.

    moto 5.2 evaluates a bucket-policy statement whose principal is ``*``
    without its conditions, so a conditional deny becomes a deny of every
    object request. Those statements are left out locally.

    :return: the policy to apply locally (None when no statement is left)
        and the Sids of the statements left out.
    """
    kept: list[dict[str, Any]] = []
    omitted: list[str] = []
    for statement in policy["Statement"]:
        if is_conditional_public_deny(statement):
            omitted.append(statement.get("Sid", "<no Sid>"))
        else:
            kept.append(copy.deepcopy(statement))
    if not kept:
        return None, omitted
    return {**policy, "Statement": kept}, omitted
