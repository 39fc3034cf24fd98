"""The rclone auth proxy as rclone runs it: a subprocess with the gateway's keys, on the stack."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

from include.localstack.state import REPO_ROOT
from tests.fixtures.stack import create_foreign_bucket

pytestmark = pytest.mark.integration


def _run_proxy(env: dict[str, str], request: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.identity.rclone_proxy"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )


def _s3_with(config: dict):
    return boto3.client(
        "s3",
        endpoint_url=config["endpoint"],
        region_name=config["region"],
        aws_access_key_id=config["access_key_id"],
        aws_secret_access_key=config["secret_access_key"],
        aws_session_token=config["session_token"],
    )


@pytest.fixture(scope="module")
def proxy_login(seed_sftp_login):
    return seed_sftp_login("proxy-client", "proxy-password-5b7e1c")


@pytest.fixture(scope="module")
def other_bucket(aws_operator_session, local_stack):
    return create_foreign_bucket(aws_operator_session, local_stack, "proxy-other")


def test_proxy_subprocess_success(sftp_gateway_env, proxy_login):
    result = _run_proxy(
        sftp_gateway_env,
        {"user": proxy_login.username, "pass": proxy_login.password, "client_ip": "127.0.0.1"},
    )

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["type"] == "s3"
    assert config["_root"] == proxy_login.bucket
    assert config["sse_kms_key_id"] == proxy_login.kms_key_arn
    assert config["access_key_id"].startswith("ASIA")


def test_proxy_credentials_scoped_to_bucket(sftp_gateway_env, proxy_login, other_bucket):
    result = _run_proxy(
        sftp_gateway_env, {"user": proxy_login.username, "pass": proxy_login.password}
    )
    s3 = _s3_with(json.loads(result.stdout))

    s3.put_object(
        Bucket=proxy_login.bucket,
        Key="incoming/hello.txt",
        Body=b"hi",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=proxy_login.kms_key_arn,
    )
    assert s3.list_objects_v2(Bucket=proxy_login.bucket)["KeyCount"] >= 1

    for denied_call in (
        lambda: s3.list_objects_v2(Bucket=other_bucket),
        lambda: s3.get_object(Bucket=other_bucket, Key="private.txt"),
        lambda: s3.put_object(Bucket=other_bucket, Key="x.txt", Body=b"x"),
        lambda: s3.list_buckets(),
    ):
        with pytest.raises(ClientError) as error:
            denied_call()
        assert error.value.response["Error"]["Code"] == "AccessDenied"


def test_proxy_subprocess_wrong_password(sftp_gateway_env, proxy_login):
    wrong = proxy_login.password + "-wrong"

    result = _run_proxy(sftp_gateway_env, {"user": proxy_login.username, "pass": wrong})

    assert result.returncode == 1
    assert result.stdout == ""
    assert "wrong password" in result.stderr
    assert proxy_login.username in result.stderr
    assert wrong not in result.stderr
    assert proxy_login.password not in result.stderr


def test_proxy_subprocess_unknown_user(sftp_gateway_env):
    result = _run_proxy(sftp_gateway_env, {"user": "nobody-here", "pass": "whatever-1"})

    assert result.returncode == 1
    assert result.stdout == ""
    assert "unknown user" in result.stderr


def test_proxy_subprocess_disabled_client(sftp_gateway_env, seed_sftp_login):
    login = seed_sftp_login("proxy-disabled", "disabled-password-91ac", disabled=True)

    result = _run_proxy(sftp_gateway_env, {"user": login.username, "pass": login.password})

    assert result.returncode == 1
    assert "disabled" in result.stderr


def test_gateway_identity_is_least_privilege(sftp_gateway_env, local_stack, aws_operator_session):
    gateway = boto3.Session(
        aws_access_key_id=sftp_gateway_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sftp_gateway_env["AWS_SECRET_ACCESS_KEY"],
        region_name=local_stack["AWS_DEFAULT_REGION"],
    )
    endpoint = local_stack["AWS_ENDPOINT_URL"]
    iam = aws_operator_session.client("iam", endpoint_url=endpoint)
    other_role = iam.create_role(
        RoleName=f"{local_stack['EXCHANGE_PREFIX']}-not-an-sftp-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": local_stack["SFTP_GATEWAY_PRINCIPAL_ARN"]},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]

    for denied_call in (
        lambda: gateway.client("s3", endpoint_url=endpoint).list_buckets(),
        lambda: gateway.client("iam", endpoint_url=endpoint).list_users(),
        lambda: gateway.client("secretsmanager", endpoint_url=endpoint).create_secret(
            Name="aws/transfer/x/y", SecretString="{}"
        ),
        lambda: gateway.client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=other_role, RoleSessionName="probe"
        ),
    ):
        with pytest.raises(ClientError) as error:
            denied_call()
        # moto returns Secrets Manager denials as a bare 403 without an error code.
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
