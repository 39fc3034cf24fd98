"""The JSON policy builders and the emulator split of bucket policies."""

from __future__ import annotations

from include.onboarding import policies

BUCKET = "cdx-acme-health"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1111-2222"
GATEWAY = "arn:aws:iam::123456789012:user/cdx-sftp-gateway"


def _by_sid(policy: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in policy["Statement"]}


def test_client_access_policy_scoped_to_bucket_and_key():
    statements = _by_sid(policies.client_access_policy(BUCKET, KEY))

    assert statements["ListOwnBucket"]["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert statements["ReadWriteOwnObjects"]["Resource"] == f"arn:aws:s3:::{BUCKET}/*"
    assert statements["ReadWriteOwnObjects"]["Action"] == [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    ]
    assert statements["UseOwnKmsKey"]["Resource"] == KEY
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert not any("*" == s["Resource"] for s in statements.values())


def test_sftp_trust_gateway_principal():
    (statement,) = policies.sftp_trust_policy(GATEWAY, "123456789012")["Statement"]

    assert statement["Principal"] == {"AWS": GATEWAY}
    assert statement["Action"] == "sts:AssumeRole"
    assert "Condition" not in statement


def test_sftp_trust_transfer_service_pins_account():
    (statement,) = policies.sftp_trust_policy(None, "123456789012")["Statement"]

    assert statement["Principal"] == {"Service": "transfer.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_bucket_policy_denies_plain_http():
    statement = _by_sid(policies.client_bucket_policy(BUCKET, KEY))["DenyInsecureTransport"]

    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


def test_bucket_policy_requires_client_kms_key():
    statements = _by_sid(policies.client_bucket_policy(BUCKET, KEY))

    assert statements["DenyNonKmsEncryption"]["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}
    }
    assert statements["DenyOtherKmsKeys"]["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KEY}
    }
    assert statements["DenyKmsWithoutKeyId"]["Condition"]["Null"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": "true"
    }
    assert all(
        s["Action"] == "s3:PutObject"
        for sid, s in statements.items()
        if sid != "DenyInsecureTransport"
    )


def test_log_bucket_policy_allows_log_delivery_only():
    policy = policies.log_bucket_policy("cdx-access-logs", "123456789012", "cdx-")
    statements = _by_sid(policy)
    delivery = statements[policies.SID_ALLOW_LOG_DELIVERY]

    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"] == {"aws:SourceArn": "arn:aws:s3:::cdx-*"}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert policies.SID_DENY_INSECURE_TRANSPORT in statements


def test_emulator_variant_leaves_out_conditional_denies():
    applied, omitted = policies.emulator_variant(policies.client_bucket_policy(BUCKET, KEY))

    assert applied is None
    assert omitted == [
        "DenyInsecureTransport",
        "DenyNonKmsEncryption",
        "DenyOtherKmsKeys",
        "DenyKmsWithoutKeyId",
    ]


def test_emulator_variant_keeps_allow_statements():
    policy = policies.log_bucket_policy("cdx-access-logs", "123456789012", "cdx-")
    applied, omitted = policies.emulator_variant(policy)

    assert [s["Sid"] for s in applied["Statement"]] == [policies.SID_ALLOW_LOG_DELIVERY]
    assert omitted == [policies.SID_DENY_INSECURE_TRANSPORT]
    assert len(policy["Statement"]) == 2
