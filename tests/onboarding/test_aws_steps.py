"""Provisioning, credentials and verification against a private moto server with IAM auth."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from include.naming import client_names, exchange_names
from include.onboarding import aws, credentials, policies, provisioning, verify_baseline, verify_sdk
from include.onboarding.params import validate_request
from include.onboarding.report import STATUS_NOT_ENFORCED_LOCALLY, VerificationReport
from tests.onboarding.conftest import operator_client

RETENTION_DAYS = 45


def _provision(client_id: str):
    names = client_names(client_id)
    resources = provisioning.provision_client(names, exchange_names(), RETENTION_DAYS)
    return names, resources


def test_provision_applies_bucket_baseline(moto_env):
    names, resources = _provision("acme-health")
    s3 = operator_client("s3")

    encryption = s3.get_bucket_encryption(Bucket=names.bucket)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == resources["kms_key_arn"]
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=names.bucket)["Status"] == "Enabled"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"]
    assert lifecycle[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == RETENTION_DAYS
    block = s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"]
    assert len(block) == 4
    assert all(block.values())
    ownership = s3.get_bucket_ownership_controls(Bucket=names.bucket)
    assert ownership["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
    logging_status = s3.get_bucket_logging(Bucket=names.bucket)["LoggingEnabled"]
    assert logging_status["TargetBucket"] == exchange_names().log_bucket
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=names.bucket)["Contents"]}
    assert keys == {"incoming/", "processed/", "quarantine/"}
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=names.bucket)["TagSet"]}
    assert tags["client-id"] == "acme-health"


def test_provision_key_has_alias_rotation_tags(moto_env):
    names, resources = _provision("acme-keys")
    kms = operator_client("kms")

    assert kms.describe_key(KeyId=names.kms_alias)["KeyMetadata"]["Arn"] == resources["kms_key_arn"]
    assert kms.get_key_rotation_status(KeyId=resources["kms_key_arn"])["KeyRotationEnabled"]
    tags = {
        t["TagKey"]: t["TagValue"]
        for t in kms.list_resource_tags(KeyId=resources["kms_key_arn"])["Tags"]
    }
    assert tags["client-id"] == "acme-keys"
    exchange_key = kms.describe_key(KeyId=exchange_names().exchange_kms_alias)["KeyMetadata"]
    assert exchange_key["Arn"] == resources["exchange_kms_key_arn"]


def test_provision_twice_converges(moto_env):
    _, first = _provision("acme-twice")
    _, second = _provision("acme-twice")
    kms = operator_client("kms")

    assert first == second
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert aliases.count(client_names("acme-twice").kms_alias) == 1


def test_emulator_policy_mode_leaves_out_conditional_denies(moto_env):
    names, resources = _provision("acme-policy")
    stored = (
        json.loads(operator_client("s3").get_bucket_policy(Bucket=names.bucket)["Policy"])
        if _has_policy(names.bucket)
        else None
    )

    assert resources["policy_mode"] == aws.POLICY_MODE_EMULATOR
    assert stored is None
    assert resources["policy_statements_not_enforced"] == [
        policies.SID_DENY_INSECURE_TRANSPORT,
        policies.SID_DENY_NON_KMS_ENCRYPTION,
        policies.SID_DENY_OTHER_KMS_KEYS,
        policies.SID_DENY_KMS_WITHOUT_KEY_ID,
    ]


def _has_policy(bucket: str) -> bool:
    try:
        operator_client("s3").get_bucket_policy(Bucket=bucket)
        return True
    except ClientError:
        return False


def test_aws_policy_mode_stores_full_policy(moto_env):
    names, resources = _provision("acme-awsmode")
    expected = policies.client_bucket_policy(names.bucket, resources["kms_key_arn"])
    application = provisioning.put_bucket_policy(names.bucket, expected, aws.POLICY_MODE_AWS)
    s3 = operator_client("s3")
    stored = json.loads(s3.get_bucket_policy(Bucket=names.bucket)["Policy"])

    assert application.omitted_sids == []
    assert stored == expected
    # The emulator gap itself: moto refuses even a request that carries
    # SSE-KMS with the client key, because it ignores the deny conditions.
    with pytest.raises(ClientError):
        s3.put_object(
            Bucket=names.bucket,
            Key="incoming/x",
            Body=b"x",
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=resources["kms_key_arn"],
        )


def _issue(names, resources, generation=1):
    credentials.ensure_sdk_user(names, resources["kms_key_arn"])
    return credentials.ensure_sdk_access_key(
        names, generation, resources["kms_key_arn"], resources["exchange_kms_key_arn"]
    )


def _stored_secret(arn: str) -> dict:
    return json.loads(
        operator_client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    )


def test_sdk_key_stored_encrypted_and_tagged(moto_env):
    names, resources = _provision("acme-sdk")
    arn = _issue(names, resources)
    sm = operator_client("secretsmanager")

    described = sm.describe_secret(SecretId=arn)
    assert described["Name"] == names.sdk_secret
    assert described["KmsKeyId"] == resources["exchange_kms_key_arn"]
    assert {"Key": "client-id", "Value": "acme-sdk"} in described["Tags"]
    value = _stored_secret(arn)
    keys = operator_client("iam").list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [value["AccessKeyId"]]
    assert value["Generation"] == 1


def test_sdk_key_retry_reuses_key(moto_env):
    names, resources = _provision("acme-retry")
    first = _stored_secret(_issue(names, resources))
    second = _stored_secret(_issue(names, resources))

    keys = operator_client("iam").list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    assert second["AccessKeyId"] == first["AccessKeyId"]
    assert len(keys) == 1


def test_sdk_key_orphan_deleted_on_retry(moto_env):
    names, resources = _provision("acme-orphan")
    credentials.ensure_sdk_user(names, resources["kms_key_arn"])
    iam = operator_client("iam")
    orphan = iam.create_access_key(UserName=names.sdk_user)["AccessKey"]["AccessKeyId"]
    value = _stored_secret(_issue(names, resources))

    keys = [
        k["AccessKeyId"] for k in iam.list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    ]
    assert orphan not in keys
    assert keys == [value["AccessKeyId"]]


def test_sdk_key_reissue_keeps_previous_until_retired(moto_env):
    names, resources = _provision("acme-reissue")
    old = _stored_secret(_issue(names, resources, 1))
    new = _stored_secret(_issue(names, resources, 2))
    iam = operator_client("iam")

    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    }
    assert new["AccessKeyId"] != old["AccessKeyId"]
    assert statuses == {old["AccessKeyId"]: "Active", new["AccessKeyId"]: "Active"}
    assert credentials.retire_previous_access_key(names) == old["AccessKeyId"]
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in iam.list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    }
    assert statuses[old["AccessKeyId"]] == "Inactive"


def test_sdk_checks_pass_with_client_key(moto_env):
    names, resources = _provision("acme-verify")
    _provision("acme-other")
    value = _stored_secret(_issue(names, resources))
    report = VerificationReport("acme-verify", 1)

    verify_sdk.verify_sdk(
        report,
        names,
        exchange_names(),
        value,
        resources["kms_key_arn"],
        client_names("acme-other").bucket,
        resources["exchange_kms_key_arn"],
    )

    assert report.failed == [], [r.to_dict() for r in report.failed]
    checks = [row.check for row in report.rows]
    assert "sdk: canary stored with SSE-KMS and the client key" in checks
    assert any("another client's bucket" in c for c in checks)
    versions = operator_client("s3").list_object_versions(
        Bucket=names.bucket, Prefix=verify_sdk.CANARY_PREFIX
    )
    assert versions.get("Versions", []) == []


def test_baseline_read_back_passes_then_detects_tamper(moto_env):
    names, resources = _provision("acme-baseline")
    credentials.ensure_sdk_user(names, resources["kms_key_arn"])
    request = validate_request(
        {
            "client_id": "acme-baseline",
            "display_name": "Acme",
            "contact_emails": ["a@b.example"],
            "access_methods": ["sdk"],
            "noncurrent_version_retention_days": RETENTION_DAYS,
        }
    )
    report = VerificationReport("acme-baseline", 1)
    args = (
        names,
        resources["kms_key_arn"],
        RETENTION_DAYS,
        resources["log_bucket"],
        resources["policy_mode"],
        request.access_methods,
        None,
    )

    verify_baseline.verify_baseline(report, *args)
    assert report.failed == [], [r.to_dict() for r in report.failed]
    gaps = [r for r in report.rows if r.status == STATUS_NOT_ENFORCED_LOCALLY]
    assert len(gaps) == 4

    operator_client("s3").put_bucket_versioning(
        Bucket=names.bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    tampered = VerificationReport("acme-baseline", 1)
    verify_baseline.verify_baseline(tampered, *args)
    assert [r.check for r in tampered.failed] == ["bucket: versioning"]
