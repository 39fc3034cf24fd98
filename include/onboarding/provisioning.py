"""Create the KMS keys and buckets of the exchange and of one client, idempotently.

Every function reads first and creates only what is missing, then re-applies
the settings, so a retried task converges on the same resources.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from include.naming import ClientNames, ExchangeNames, exchange_names
from include.onboarding import aws, policies

log = logging.getLogger(__name__)

PREFIXES = ("incoming/", "processed/", "quarantine/")
MANAGED_BY = "client-data-exchange"
# Multipart uploads that a client abandons are removed after this many days.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7
LIFECYCLE_RULE_ID = "expire-noncurrent-versions"


def resource_tags(client_id: str | None, prefix: str) -> dict[str, str]:
    """Return the tags every onboarding resource carries."""
    tags = {"managed-by": MANAGED_BY, "exchange-prefix": prefix}
    if client_id:
        tags["client-id"] = client_id
    return tags


def as_tag_list(tags: dict[str, str], key: str = "Key", value: str = "Value") -> list[dict]:
    """Convert a tag dict to the list form that AWS APIs take."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]


def ensure_kms_key(alias: str, description: str, tags: dict[str, str]) -> str:
    """Return the ARN of the KMS key behind ``alias``, creating the key when missing.

    Rotation is switched on and the tags are re-applied on every call.
    """
    kms = aws.kms_client()
    try:
        key_arn = kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
        log.info("KMS key %s exists: %s", alias, key_arn)
    except ClientError as exc:
        if aws.error_code(exc) != "NotFoundException":
            raise
        metadata = kms.create_key(
            Description=description,
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
            Tags=as_tag_list(tags, "TagKey", "TagValue"),
        )["KeyMetadata"]
        key_arn = metadata["Arn"]
        kms.create_alias(AliasName=alias, TargetKeyId=metadata["KeyId"])
        log.info("KMS key %s created: %s", alias, key_arn)

    kms.enable_key_rotation(KeyId=key_arn)
    kms.tag_resource(KeyId=key_arn, Tags=as_tag_list(tags, "TagKey", "TagValue"))
    return key_arn


def ensure_bucket(bucket: str) -> None:
    """Create ``bucket`` in the connection's region unless this account already owns it."""
    hook = aws.s3_hook()
    if hook.check_for_bucket(bucket):
        log.info("bucket %s exists", bucket)
        return
    region = aws.region_name()
    try:
        hook.create_bucket(bucket_name=bucket, region_name=region)
    except ClientError as exc:
        if aws.error_code(exc) != "BucketAlreadyOwnedByYou":
            raise
    log.info("bucket %s created in %s", bucket, region)


@dataclass
class PolicyApplication:
    """The policy stored on a bucket, and the statements left out locally."""

    mode: str
    expected: dict[str, Any]
    applied: dict[str, Any] | None
    omitted_sids: list[str] = field(default_factory=list)


def put_bucket_policy(bucket: str, policy: dict[str, Any], mode: str) -> PolicyApplication:
    """Store ``policy`` on ``bucket``, or its emulator variant in emulator mode."""
    s3 = aws.s3_client()
    if mode == aws.POLICY_MODE_AWS:
        applied, omitted = policy, []
    else:
        # NOTE: moto 5.2 ignores the conditions of Principal "*" statements,
        # so the TLS-only and SSE-KMS-only denies would block every object
        # request. Locally they are left out and the verification report
        # lists each one as "not enforced locally".
        applied, omitted = policies.emulator_variant(policy)

    if applied is None:
        s3.delete_bucket_policy(Bucket=bucket)
    else:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(applied))
    log.info(
        "bucket policy of %s stored in %s mode; statements left out: %s",
        bucket,
        mode,
        omitted or "none",
    )
    return PolicyApplication(mode=mode, expected=policy, applied=applied, omitted_sids=omitted)


def _put_common_controls(bucket: str, tags: dict[str, str]) -> None:
    s3 = aws.s3_client()
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket,
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": as_tag_list(tags)})


def ensure_log_bucket(exchange: ExchangeNames, mode: str) -> PolicyApplication:
    """Create the server access log bucket with its own baseline.

    It uses SSE-S3 (AES256) default encryption, so S3's log delivery needs
    no grant on a KMS key.
    """
    bucket = exchange.log_bucket
    ensure_bucket(bucket)
    _put_common_controls(bucket, resource_tags(None, exchange.prefix))
    aws.s3_client().put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    policy = policies.log_bucket_policy(bucket, aws.account_id(), f"{exchange.prefix}-")
    return put_bucket_policy(bucket, policy, mode)


def isolation_probe_bucket(exchange: ExchangeNames | None = None) -> str:
    """Return the name of the empty bucket used as "another client's bucket".

    Verification must prove a client is denied on another client's bucket;
    for the first client there is none, so the exchange keeps this one.
    """
    exchange = exchange or exchange_names()
    return f"{exchange.prefix}-isolation-probe"


def ensure_isolation_probe(exchange: ExchangeNames) -> str:
    """Create the isolation probe bucket with public access blocked; return its name."""
    bucket = isolation_probe_bucket(exchange)
    ensure_bucket(bucket)
    _put_common_controls(bucket, resource_tags(None, exchange.prefix))
    return bucket


def ensure_exchange_resources(exchange: ExchangeNames, mode: str) -> dict[str, str]:
    """Ensure the exchange's KMS key, log bucket and probe bucket exist; return their names."""
    key_arn = ensure_kms_key(
        exchange.exchange_kms_alias,
        "Client data exchange: encrypts the credential secrets of every client",
        resource_tags(None, exchange.prefix),
    )
    ensure_log_bucket(exchange, mode)
    ensure_isolation_probe(exchange)
    return {"exchange_kms_key_arn": key_arn, "log_bucket": exchange.log_bucket}


def lifecycle_rules(retention_days: int) -> list[dict[str, Any]]:
    """Return the client bucket's lifecycle rules for ``retention_days``."""
    return [
        {
            "ID": LIFECYCLE_RULE_ID,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "NoncurrentVersionExpiration": {"NoncurrentDays": retention_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOAD_DAYS},
        }
    ]


def apply_client_baseline(
    names: ClientNames,
    kms_key_arn: str,
    retention_days: int,
    log_bucket: str,
    mode: str,
) -> PolicyApplication:
    """Apply every baseline setting to the client's bucket and create its prefixes."""
    bucket = names.bucket
    s3 = aws.s3_client()
    _put_common_controls(bucket, resource_tags(names.client_id, names.prefix))
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": lifecycle_rules(retention_days)}
    )
    s3.put_bucket_logging(
        Bucket=bucket,
        BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": log_bucket, "TargetPrefix": log_prefix(names)}
        },
    )
    application = put_bucket_policy(
        bucket, policies.client_bucket_policy(bucket, kms_key_arn), mode
    )

    for prefix in PREFIXES:
        s3.put_object(
            Bucket=bucket,
            Key=prefix,
            Body=b"",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key_arn,
        )
    log.info(
        "baseline applied to bucket %s of client %s (key %s, retention %d days)",
        bucket,
        names.client_id,
        kms_key_arn,
        retention_days,
    )
    return application


def log_prefix(names: ClientNames) -> str:
    """Return the prefix under which the client bucket's access logs are delivered."""
    return f"{names.bucket}/"


def provision_client(
    names: ClientNames, exchange: ExchangeNames, retention_days: int
) -> dict[str, Any]:
    """Provision the exchange resources, the client's key and its bucket.

    :return: names, ARNs and the policy mode; no secret values.
    """
    mode = aws.policy_mode()
    exchange_resources = ensure_exchange_resources(exchange, mode)
    key_arn = ensure_kms_key(
        names.kms_alias,
        f"Client data exchange: objects of client {names.client_id}",
        resource_tags(names.client_id, names.prefix),
    )
    ensure_bucket(names.bucket)
    application = apply_client_baseline(names, key_arn, retention_days, exchange.log_bucket, mode)
    return {
        **exchange_resources,
        "bucket": names.bucket,
        "kms_key_arn": key_arn,
        "policy_mode": mode,
        "policy_statements_not_enforced": application.omitted_sids,
    }
