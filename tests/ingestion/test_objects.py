"""S3 calls: listing versions, copies with SSE-KMS, removal from incoming/."""

import pytest

from include.ingestion.objects import (
    MAX_SINGLE_COPY_BYTES,
    ObjectVersion,
    bucket_kms_key,
    copy_version,
    error_report_key,
    list_incoming_versions,
    open_version,
    put_json,
    remove_from_incoming,
    target_key,
)


def _put(s3, bucket, key, body):
    return s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]


def test_lists_every_version_oldest_first(s3, bucket):
    first = _put(s3, bucket, "incoming/Patient.000.ndjson", b"v1\n")
    second = _put(s3, bucket, "incoming/Patient.000.ndjson", b"v2 longer\n")
    _put(s3, bucket, "incoming/folder/", b"")
    _put(s3, bucket, "processed/old.csv", b"a\n")
    _put(s3, bucket, "incoming/gone.csv", b"a\n")
    s3.delete_object(Bucket=bucket, Key="incoming/gone.csv")

    versions = list_incoming_versions(s3, bucket)

    patient = [v for v in versions if v.key == "incoming/Patient.000.ndjson"]
    assert [v.version_id for v in patient] == [first, second]
    assert [v.size for v in patient] == [3, 10]
    assert {v.key for v in versions} == {"incoming/Patient.000.ndjson", "incoming/gone.csv"}
    assert versions == sorted(versions, key=lambda v: (v.last_modified, v.key))
    assert ObjectVersion.from_dict(versions[0].to_dict()) == versions[0]


def test_open_version_reads_that_version(s3, bucket):
    first = _put(s3, bucket, "incoming/a.csv", b"old\n")
    _put(s3, bucket, "incoming/a.csv", b"new\n")
    version = next(v for v in list_incoming_versions(s3, bucket) if v.version_id == first)
    assert open_version(s3, version).read() == b"old\n"


def test_bucket_kms_key(s3, bucket, kms_key_arn):
    assert bucket_kms_key(s3, bucket) == kms_key_arn
    s3.create_bucket(Bucket="plain-bucket")
    s3.delete_bucket_encryption(Bucket="plain-bucket")
    assert bucket_kms_key(s3, "plain-bucket") is None


def test_copy_version_with_kms_and_size_check(s3, bucket, kms_key_arn):
    first = _put(s3, bucket, "incoming/x/Patient.000.ndjson", b"first\n")
    _put(s3, bucket, "incoming/x/Patient.000.ndjson", b"second\n")
    version = next(v for v in list_incoming_versions(s3, bucket) if v.version_id == first)

    new_version = copy_version(s3, version, "processed/x/Patient.000.ndjson", kms_key_arn)

    copied = s3.get_object(
        Bucket=bucket, Key="processed/x/Patient.000.ndjson", VersionId=new_version
    )
    assert copied["Body"].read() == b"first\n"
    assert copied["ServerSideEncryption"] == "aws:kms"
    assert copied["SSEKMSKeyId"] == kms_key_arn


def test_copy_refuses_objects_over_single_copy_limit(s3, bucket):
    huge = ObjectVersion(bucket, "incoming/big.csv", "v", '"e"', MAX_SINGLE_COPY_BYTES + 1, "t")
    with pytest.raises(ValueError, match="CopyObject limit"):
        copy_version(s3, huge, "processed/big.csv", None)


def test_put_json_encrypted(s3, bucket, kms_key_arn):
    put_json(s3, bucket, "quarantine/a.csv.error.json", {"reason": "empty_file"}, kms_key_arn)
    stored = s3.get_object(Bucket=bucket, Key="quarantine/a.csv.error.json")
    assert b'"reason": "empty_file"' in stored["Body"].read()
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert stored["ContentType"] == "application/json"


def test_remove_current_version_keeps_history(s3, bucket):
    version_id = _put(s3, bucket, "incoming/a.csv", b"a\n")
    version = list_incoming_versions(s3, bucket)[0]

    assert remove_from_incoming(s3, version)

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")
    assert listed.get("KeyCount", 0) == 0
    original = s3.get_object(Bucket=bucket, Key="incoming/a.csv", VersionId=version_id)
    assert original["Body"].read() == b"a\n"
    assert not remove_from_incoming(s3, version)


def test_remove_keeps_newer_upload(s3, bucket):
    _put(s3, bucket, "incoming/a.csv", b"a\n")
    older = list_incoming_versions(s3, bucket)[0]
    _put(s3, bucket, "incoming/a.csv", b"b\n")

    assert not remove_from_incoming(s3, older)
    assert s3.get_object(Bucket=bucket, Key="incoming/a.csv")["Body"].read() == b"b\n"


def test_target_and_report_keys():
    assert target_key("incoming/2024/a.csv", "processed/") == "processed/2024/a.csv"
    assert target_key("elsewhere/a.csv", "quarantine/") == "quarantine/elsewhere/a.csv"
    assert error_report_key("quarantine/a.csv") == "quarantine/a.csv.error.json"
