"""Read back every baseline setting of a client's bucket, key and identities.

Each setting is compared with what provisioning should have stored. The
bucket policy is compared twice: the stored text against the policy for the
current mode, and each statement the emulator cannot enforce gets its own
"not enforced locally" row.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from include.naming import ClientNames
from include.onboarding import aws, credentials, policies, provisioning
from include.onboarding.report import VerificationReport

log = logging.getLogger(__name__)


def _read(call) -> tuple[Any, str | None]:
    try:
        return call(), None
    except ClientError as exc:
        return None, aws.error_code(exc)


def _policy_document(raw: Any) -> Any:
    # IAM returns policy documents URL-encoded or already decoded, by client.
    if isinstance(raw, str):
        return json.loads(unquote(raw))
    return raw


def check_bucket_settings(
    report: VerificationReport,
    names: ClientNames,
    kms_key_arn: str,
    retention_days: int,
    log_bucket: str,
) -> None:
    """Compare encryption, versioning, lifecycle, access blocks, ownership and logging."""
    s3 = aws.s3_client()
    bucket = names.bucket

    result, error = _read(lambda: s3.get_bucket_encryption(Bucket=bucket))
    rules = (result or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [{}])
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
    report.add_equal(
        "bucket: default encryption SSE-KMS with the client key and bucket key",
        {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn, "BucketKeyEnabled": True},
        error or {**default, "BucketKeyEnabled": rules[0].get("BucketKeyEnabled", False)},
    )

    result, error = _read(lambda: s3.get_bucket_versioning(Bucket=bucket))
    report.add_equal("bucket: versioning", "Enabled", error or (result or {}).get("Status", "Off"))

    result, error = _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket))
    rules = (result or {}).get("Rules", [])
    observed = [
        r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays")
        for r in rules
        if r.get("Status") == "Enabled"
    ]
    report.add_equal(
        "bucket: noncurrent versions expire after the retention days",
        [retention_days],
        error or observed,
    )

    result, error = _read(lambda: s3.get_public_access_block(Bucket=bucket))
    expected_block = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    report.add_equal(
        "bucket: all four public access blocks",
        expected_block,
        error or (result or {}).get("PublicAccessBlockConfiguration"),
    )

    result, error = _read(lambda: s3.get_bucket_ownership_controls(Bucket=bucket))
    ownership = [
        r.get("ObjectOwnership")
        for r in (result or {}).get("OwnershipControls", {}).get("Rules", [])
    ]
    report.add_equal("bucket: object ownership", ["BucketOwnerEnforced"], error or ownership)

    result, error = _read(lambda: s3.get_bucket_logging(Bucket=bucket))
    enabled = (result or {}).get("LoggingEnabled", {})
    report.add_equal(
        "bucket: server access logging",
        {"TargetBucket": log_bucket, "TargetPrefix": provisioning.log_prefix(names)},
        error or {k: enabled.get(k) for k in ("TargetBucket", "TargetPrefix")},
    )


def check_bucket_policy(
    report: VerificationReport, bucket: str, kms_key_arn: str, mode: str
) -> None:
    """Compare the stored bucket policy with the expected one for ``mode``."""
    expected = policies.client_bucket_policy(bucket, kms_key_arn)
    if mode == aws.POLICY_MODE_AWS:
        applied, omitted = expected, []
    else:
        applied, omitted = policies.emulator_variant(expected)

    s3 = aws.s3_client()
    result, error = _read(lambda: s3.get_bucket_policy(Bucket=bucket))
    stored = json.loads(result["Policy"]) if result else None
    if error == "NoSuchBucketPolicy":
        error = None
    report.add_equal(f"bucket: stored policy ({mode} mode)", applied, error or stored)

    by_sid = {s.get("Sid"): s for s in expected["Statement"]}
    for sid in omitted:
        report.add_gap(
            f"bucket policy: statement {sid}",
            by_sid[sid],
            "left out locally: moto 5.2 evaluates a Principal * statement without its "
            "conditions, so this deny would refuse every object request",
        )


def check_tags_and_prefixes(report: VerificationReport, names: ClientNames) -> None:
    """Check the bucket's client-id tag and the three prefixes."""
    s3 = aws.s3_client()
    result, error = _read(lambda: s3.get_bucket_tagging(Bucket=names.bucket))
    tags = {t["Key"]: t["Value"] for t in (result or {}).get("TagSet", [])}
    report.add_equal("bucket: client-id tag", names.client_id, error or tags.get("client-id"))

    for prefix in provisioning.PREFIXES:
        result, error = _read(lambda p=prefix: s3.head_object(Bucket=names.bucket, Key=p))
        report.add_equal(f"bucket: prefix {prefix} exists", "present", error or "present")


def check_kms_key(report: VerificationReport, names: ClientNames, kms_key_arn: str) -> None:
    """Check the alias, state, rotation and tags of the client's KMS key."""
    kms = aws.kms_client()
    result, error = _read(lambda: kms.describe_key(KeyId=names.kms_alias))
    metadata = (result or {}).get("KeyMetadata", {})
    report.add_equal(
        f"kms: alias {names.kms_alias} targets the key", kms_key_arn, error or metadata.get("Arn")
    )
    report.add_equal("kms: key enabled", "Enabled", error or metadata.get("KeyState"))

    result, error = _read(lambda: kms.get_key_rotation_status(KeyId=kms_key_arn))
    report.add_equal(
        "kms: rotation enabled", True, error or (result or {}).get("KeyRotationEnabled")
    )

    result, error = _read(lambda: kms.list_resource_tags(KeyId=kms_key_arn))
    tags = {t["TagKey"]: t["TagValue"] for t in (result or {}).get("Tags", [])}
    report.add_equal("kms: client-id tag", names.client_id, error or tags.get("client-id"))


def check_identities(
    report: VerificationReport,
    names: ClientNames,
    kms_key_arn: str,
    methods: tuple[str, ...],
    gateway_principal_arn: str | None,
) -> None:
    """Check the inline policies of the SDK user and SFTP role and the role's trust."""
    iam = aws.iam_client()
    expected = policies.client_access_policy(names.bucket, kms_key_arn)
    if "sdk" in methods:
        result, error = _read(
            lambda: iam.get_user_policy(
                UserName=names.sdk_user, PolicyName=credentials.CLIENT_POLICY_NAME
            )
        )
        observed = _policy_document(result["PolicyDocument"]) if result else error
        report.add_equal(f"iam: inline policy of user {names.sdk_user}", expected, observed)

    if "sftp" in methods:
        result, error = _read(
            lambda: iam.get_role_policy(
                RoleName=names.sftp_role, PolicyName=credentials.CLIENT_POLICY_NAME
            )
        )
        observed = _policy_document(result["PolicyDocument"]) if result else error
        report.add_equal(f"iam: inline policy of role {names.sftp_role}", expected, observed)

        trust = policies.sftp_trust_policy(gateway_principal_arn, aws.account_id())
        result, error = _read(lambda: iam.get_role(RoleName=names.sftp_role))
        observed = _policy_document(result["Role"]["AssumeRolePolicyDocument"]) if result else error
        report.add_equal(f"iam: trust policy of role {names.sftp_role}", trust, observed)


def verify_baseline(
    report: VerificationReport,
    names: ClientNames,
    kms_key_arn: str,
    retention_days: int,
    log_bucket: str,
    mode: str,
    methods: tuple[str, ...],
    gateway_principal_arn: str | None,
) -> None:
    """Run every read-back check as the operator."""
    check_bucket_settings(report, names, kms_key_arn, retention_days, log_bucket)
    check_bucket_policy(report, names.bucket, kms_key_arn, mode)
    check_tags_and_prefixes(report, names)
    check_kms_key(report, names, kms_key_arn)
    check_identities(report, names, kms_key_arn, methods, gateway_principal_arn)
    log.info(
        "baseline read back for client %s (bucket %s): %d failed so far",
        names.client_id,
        names.bucket,
        len(report.failed),
    )
