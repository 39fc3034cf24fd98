"""SFTP through the rclone gateway onto S3, with the login role's temporary credentials."""

from __future__ import annotations

import base64
import time

import boto3
import paramiko
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.fixtures.stack import create_foreign_bucket

pytestmark = pytest.mark.integration

# rclone uploads a closed file from its write cache after --vfs-write-back
# (5 s by default); allow for that plus a slow machine.
UPLOAD_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def login(seed_sftp_login):
    return seed_sftp_login("sftp-roundtrip", "roundtrip-password-3f9d0a")


@pytest.fixture(scope="module")
def other_bucket(aws_operator_session, local_stack):
    return create_foreign_bucket(aws_operator_session, local_stack, "sftp-other")


def _host_key(local_stack) -> paramiko.PKey:
    key_type, blob = local_stack["SFTP_HOST_PUBLIC_KEY"].split()[:2]
    assert key_type == "ssh-ed25519"
    return paramiko.Ed25519Key(data=base64.b64decode(blob))


def _connect(local_stack, username: str, password: str, host_key=None) -> paramiko.Transport:
    transport = paramiko.Transport((local_stack["SFTP_HOST"], int(local_stack["SFTP_PORT"])))
    try:
        # Passing hostkey makes paramiko reject a server that presents another key.
        transport.connect(
            hostkey=host_key or _host_key(local_stack), username=username, password=password
        )
    except Exception:
        transport.close()
        raise
    return transport


def _wait_for_object(s3, bucket: str, key: str) -> dict:
    deadline = time.monotonic() + UPLOAD_TIMEOUT_SECONDS
    while True:
        try:
            return s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if (
                exc.response["Error"]["Code"] not in ("404", "NoSuchKey")
                or time.monotonic() > deadline
            ):
                raise
        time.sleep(0.5)


def test_host_key_fingerprint_matches(local_stack):
    from include.localstack.parts import host_key_fingerprint

    fingerprint = host_key_fingerprint(local_stack["SFTP_HOST_PUBLIC_KEY"])
    assert local_stack["SFTP_HOST_KEY_FINGERPRINT"] == fingerprint
    assert fingerprint.startswith("SHA256:")


def test_sftp_write_read_shows_in_s3(local_stack, login, aws_operator_session):
    body = b"id,amount\n1,10\n"
    transport = _connect(local_stack, login.username, login.password)
    try:
        sftp = paramiko.SFTPClient.from_transport(transport)
        sftp.mkdir("/incoming")
        with sftp.open("/incoming/orders.csv", "wb") as handle:
            handle.write(body)
        with sftp.open("/incoming/orders.csv", "rb") as handle:
            assert handle.read() == body
        assert "orders.csv" in sftp.listdir("/incoming")
    finally:
        transport.close()

    s3 = aws_operator_session.client("s3", endpoint_url=local_stack["AWS_ENDPOINT_URL"])
    head = _wait_for_object(s3, login.bucket, "incoming/orders.csv")
    assert s3.get_object(Bucket=login.bucket, Key="incoming/orders.csv")["Body"].read() == body
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == login.kms_key_arn


def test_sftp_reads_object_written_to_s3(local_stack, login, aws_operator_session):
    s3 = aws_operator_session.client("s3", endpoint_url=local_stack["AWS_ENDPOINT_URL"])
    s3.put_object(Bucket=login.bucket, Key="processed/report.txt", Body=b"done")

    transport = _connect(local_stack, login.username, login.password)
    try:
        sftp = paramiko.SFTPClient.from_transport(transport)
        with sftp.open("/processed/report.txt", "rb") as handle:
            assert handle.read() == b"done"
    finally:
        transport.close()


def test_sftp_wrong_password_rejected(local_stack, login):
    with pytest.raises(paramiko.AuthenticationException):
        _connect(local_stack, login.username, login.password + "-wrong")


def test_sftp_unknown_user_rejected(local_stack):
    with pytest.raises(paramiko.AuthenticationException):
        _connect(local_stack, "no-such-client", "some-password-1")


def test_sftp_wrong_host_key_rejected(local_stack, login):
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    other_key = paramiko.Ed25519Key(data=base64.b64decode(public.split()[1]))

    with pytest.raises(paramiko.SSHException, match="[Bb]ad host key"):
        _connect(local_stack, login.username, login.password, host_key=other_key)


def test_sftp_root_is_fixed_to_bucket(local_stack, login, other_bucket):
    transport = _connect(local_stack, login.username, login.password)
    try:
        sftp = paramiko.SFTPClient.from_transport(transport)
        root = sorted(sftp.listdir("/"))

        assert sorted(sftp.listdir("/..")) == root
        assert sorted(sftp.listdir("/../..")) == root
        assert other_bucket not in root
        for path in (
            f"/../{other_bucket}/private.txt",
            f"/{other_bucket}/private.txt",
            f"../{other_bucket}/private.txt",
        ):
            with pytest.raises(FileNotFoundError):
                sftp.stat(path)
    finally:
        transport.close()


def test_role_credentials_denied_on_other_bucket(
    local_stack, sftp_gateway_env, login, other_bucket
):
    sts = boto3.client(
        "sts",
        endpoint_url=local_stack["AWS_ENDPOINT_URL"],
        region_name=local_stack["AWS_DEFAULT_REGION"],
        aws_access_key_id=sftp_gateway_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sftp_gateway_env["AWS_SECRET_ACCESS_KEY"],
    )
    credentials = sts.assume_role(RoleArn=login.role_arn, RoleSessionName="probe")["Credentials"]
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack["AWS_ENDPOINT_URL"],
        region_name=local_stack["AWS_DEFAULT_REGION"],
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )

    s3.list_objects_v2(Bucket=login.bucket)
    for denied_call in (
        lambda: s3.list_objects_v2(Bucket=other_bucket),
        lambda: s3.get_object(Bucket=other_bucket, Key="private.txt"),
        lambda: s3.put_object(Bucket=other_bucket, Key="planted.txt", Body=b"x"),
        lambda: s3.delete_object(Bucket=other_bucket, Key="private.txt"),
    ):
        with pytest.raises(ClientError) as error:
            denied_call()
        assert error.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("s3", "list_buckets"),
        ("iam", "list_users"),
        ("sts", "get_caller_identity"),
        ("secretsmanager", "list_secrets"),
        ("kms", "list_keys"),
    ],
)
def test_emulator_rejects_unknown_keys(local_stack, service, operation):
    client = boto3.client(
        service,
        endpoint_url=local_stack["AWS_ENDPOINT_URL"],
        region_name=local_stack["AWS_DEFAULT_REGION"],
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key="unknown-secret",
    )

    with pytest.raises(ClientError) as error:
        getattr(client, operation)()
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_emulator_rejects_wrong_secret(local_stack):
    iam = boto3.client(
        "iam",
        endpoint_url=local_stack["AWS_ENDPOINT_URL"],
        region_name=local_stack["AWS_DEFAULT_REGION"],
        aws_access_key_id=local_stack["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key="not-the-operator-secret",
    )

    with pytest.raises(ClientError) as error:
        iam.list_users()
    assert error.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_emulator_accepts_operator_keys(aws_operator_session, local_stack):
    sts = aws_operator_session.client("sts", endpoint_url=local_stack["AWS_ENDPOINT_URL"])

    identity = sts.get_caller_identity()

    assert identity["Arn"].endswith(f":user/{local_stack['EXCHANGE_PREFIX']}-operator")
    assert identity["Account"] == local_stack["AWS_ACCOUNT_ID"]


def test_ses_sender_verified(aws_operator_session, local_stack):
    ses = aws_operator_session.client("ses", endpoint_url=local_stack["AWS_ENDPOINT_URL"])

    identities = ses.list_identities(IdentityType="EmailAddress")["Identities"]

    assert local_stack["SES_SENDER"] in identities
