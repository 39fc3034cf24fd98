"""Fixtures of the ingestion tests: an in-process S3 (moto) with a client-like bucket."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from include.ingestion import workers

BUCKET = "cdx-acme-health"
CLIENT_ID = "acme-health"


@pytest.fixture
def s3(monkeypatch):
    """Yield a boto3 S3 client on moto's in-process mock, with nothing leaving the process."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def kms_key_arn(s3):
    """Return the ARN of a KMS key on the same mock."""
    kms = boto3.client("kms", region_name="us-east-1")
    return kms.create_key(Description="acme-health data key")["KeyMetadata"]["Arn"]


@pytest.fixture
def bucket(s3, kms_key_arn):
    """Create a versioned bucket with SSE-KMS default encryption, like an onboarded client's."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=BUCKET,
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
    return BUCKET


@pytest.fixture
def worker_pids(monkeypatch):
    """Record the process id of every parse worker started during the test."""
    pids = []
    original_init = workers._Workers.__init__

    def recording_init(self, parser, spool, processes):
        original_init(self, parser, spool, processes)
        pids.extend(process.pid for process in self._processes)

    monkeypatch.setattr(workers._Workers, "__init__", recording_init)
    return pids
