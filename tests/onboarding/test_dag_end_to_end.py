"""End-to-end onboarding runs with ``dag.test()`` on the full local stack.

The stack is moto with IAM auth, the SFTP gateway (rclone with the identity
lookup), the one-time secret service and the MongoDB stand-in. Each test
uses its own client ids; the stack is shared by the session.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paramiko
import pytest

from include.identity.lookup import authenticate
from include.naming import client_names, exchange_names
from include.onboarding import policies, provisioning
from include.secret_service.errors import SecretUnavailable
from tests.onboarding.helpers import (
    audit_actions,
    files_containing,
    operator,
    registry_record,
    run_dag,
    secret_json,
    sent_emails,
    suspend_versioning_before_verify,
    task_states,
)

pytestmark = [pytest.mark.integration, pytest.mark.airflow]

LINK_PATTERN = re.compile(r'href="([^"]+)"')


@pytest.fixture
def stack(local_stack, airflow_db, monkeypatch):
    """The local stack's environment with a fresh registry database per test."""
    monkeypatch.setenv("MONGO_DB", f"onboarding_{uuid.uuid4().hex[:8]}")
    monkeypatch.delenv("BUCKET_POLICY_MODE", raising=False)
    return local_stack


def _conf(client_id: str, contact: str, **overrides) -> dict:
    conf = {
        "client_id": client_id,
        "display_name": f"{client_id} Ltd",
        "contact_emails": [contact],
        "access_methods": ["sdk", "sftp"],
        "link_lifetime_seconds": 3600,
        "noncurrent_version_retention_days": 45,
        "reissue": False,
    }
    return {**conf, **overrides}


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def _emails_to(address: str) -> list[dict]:
    return [m for m in sent_emails() if any(address in d for d in m["destinations"])]


def _links(message: dict) -> dict[str, str]:
    """Return the SDK and SFTP links of a credentials email, by section."""
    body = message["body"]
    links = {}
    for method, heading in (("sdk", "AWS SDK"), ("sftp", "SFTP access")):
        start = body.find(heading)
        if start >= 0:
            links[method] = LINK_PATTERN.search(body, start).group(1)
    return links


def _reveal(link: str) -> str:
    from include.secret_service.client import SecretServiceClient

    with SecretServiceClient.from_env() as client:
        return client.reveal(link)


def _sftp_connect(username: str, password: str) -> paramiko.SSHClient:
    ssh = paramiko.SSHClient()
    ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507
    ssh.connect(
        os.environ["SFTP_HOST"],
        port=int(os.environ["SFTP_PORT"]),
        username=username,
        password=password,
        allow_agent=False,
        look_for_keys=False,
        timeout=15,
    )
    return ssh


def _password(revealed: str) -> str:
    return re.search(r"^Password: (\S+)$", revealed, re.MULTILINE).group(1)


def _assert_bucket_baseline(names, key_arn: str) -> None:
    s3 = operator("s3")
    rule = s3.get_bucket_encryption(Bucket=names.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=names.bucket)["Status"] == "Enabled"
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"]
    assert lifecycle["NoncurrentVersionExpiration"]["NoncurrentDays"] == 45
    block = s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    ownership = s3.get_bucket_ownership_controls(Bucket=names.bucket)["OwnershipControls"]
    assert ownership["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    logging_status = s3.get_bucket_logging(Bucket=names.bucket)["LoggingEnabled"]
    assert logging_status["TargetBucket"] == exchange_names().log_bucket
    assert logging_status["TargetPrefix"] == f"{names.bucket}/"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=names.bucket)["TagSet"]}
    assert tags["client-id"] == names.client_id
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=names.bucket).get("Contents", [])}
    assert keys == set(provisioning.PREFIXES)

    kms = operator("kms")
    assert kms.describe_key(KeyId=names.kms_alias)["KeyMetadata"]["Arn"] == key_arn
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    key_tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_arn)["Tags"]}
    assert key_tags["client-id"] == names.client_id


def _assert_identities(names, key_arn: str) -> None:
    iam = operator("iam")
    expected = policies.client_access_policy(names.bucket, key_arn)
    user_policy = iam.get_user_policy(UserName=names.sdk_user, PolicyName="client-bucket-access")
    assert user_policy["PolicyDocument"] == expected
    role = iam.get_role(RoleName=names.sftp_role)["Role"]
    assert role["AssumeRolePolicyDocument"] == policies.sftp_trust_policy(
        os.environ["SFTP_GATEWAY_PRINCIPAL_ARN"], os.environ["AWS_ACCOUNT_ID"]
    )
    role_policy = iam.get_role_policy(RoleName=names.sftp_role, PolicyName="client-bucket-access")
    assert role_policy["PolicyDocument"] == expected
    assert len(iam.list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]) == 1


def _assert_secrets(names, key_arn: str) -> tuple[dict, dict]:
    sm = operator("secretsmanager")
    exchange_key = operator("kms").describe_key(KeyId=exchange_names().exchange_kms_alias)[
        "KeyMetadata"
    ]["Arn"]
    for name in (names.sdk_secret, names.sftp_login_secret):
        described = sm.describe_secret(SecretId=name)
        assert described["KmsKeyId"] == exchange_key
        assert {"Key": "client-id", "Value": names.client_id} in described["Tags"]
    sdk = secret_json(names.sdk_secret)
    login = secret_json(names.sftp_login_secret)
    assert login["Role"].endswith(f":role/{names.sftp_role}")
    assert login["HomeDirectoryType"] == "LOGICAL"
    assert json.loads(login["HomeDirectoryDetails"]) == [
        {"Entry": "/", "Target": f"/{names.bucket}"}
    ]
    assert login["KmsKeyArn"] == key_arn
    assert len(login["Password"]) >= 43
    return sdk, login


def test_full_run_onboards_client(stack, airflow_db, capfd, request):
    client_id = _unique("e2e-full")
    contact = f"it@{client_id}.example"
    names = client_names(client_id)

    dag_run = run_dag(_conf(client_id, contact))
    record = registry_record(client_id)
    failed_rows = [r for r in record["verification"]["rows"] if r["status"] == "fail"]
    assert failed_rows == []
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    key_arn = record["kms_key_arn"]

    _assert_bucket_baseline(names, key_arn)
    _assert_identities(names, key_arn)
    sdk, login = _assert_secrets(names, key_arn)

    (message,) = _emails_to(contact)
    links = _links(message)
    assert set(links) == {"sdk", "sftp"}
    assert f"port {os.environ['SFTP_PORT']}" in message["body"]
    sdk_text = _reveal(links["sdk"])
    sftp_text = _reveal(links["sftp"])
    assert f"AWS_SECRET_ACCESS_KEY={sdk['SecretAccessKey']}" in sdk_text
    assert f"AWS_ACCESS_KEY_ID={sdk['AccessKeyId']}" in sdk_text
    assert _password(sftp_text) == login["Password"]
    for link in links.values():
        with pytest.raises(Exception, match="(?i)viewed|unavailable|gone"):
            _reveal(link)

    ssh = _sftp_connect(names.sftp_user, _password(sftp_text))
    try:
        sftp = ssh.open_sftp()
        assert {"incoming", "processed", "quarantine"} <= set(sftp.listdir("/"))
    finally:
        ssh.close()

    assert record["status"] == "active"
    assert record["bucket"] == names.bucket
    expires = datetime.fromisoformat(record["links_expire_at"]["sdk"])
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert record["credential_generation"] == 1
    assert set(record["receipt_ids"]) == {"sdk", "sftp"}
    assert record["resources"]["sftp_role_arn"].endswith(names.sftp_role)
    report = record["verification"]
    assert report["all_passed"] is True
    statuses = {row["check"]: row["status"] for row in report["rows"]}
    assert statuses["sftp: downloaded canary SHA-256"] == "pass"
    assert statuses["sftp: wrong password refused"] == "pass"
    assert statuses["bucket policy: statement DenyInsecureTransport"] == "not enforced locally"
    assert [a for a, _ in audit_actions(client_id)] == [
        "validate",
        "provision",
        "credential",
        "verify",
        "share",
        "notify",
        "record",
    ]
    stored_record = json.dumps(record, default=str)
    for secret in (sdk["SecretAccessKey"], login["Password"], *links.values()):
        assert secret not in stored_record

    airflow_home = Path(airflow_db).parent
    needles = [sdk["SecretAccessKey"], login["Password"], *links.values()]
    assert files_containing(airflow_home / "logs", needles) == []
    # dag.test runs tasks in this process and logs to the console, not to files.
    printed = "".join(capfd.readouterr())
    if request.config.pluginmanager.has_plugin("logging"):
        printed += request.getfixturevalue("caplog").text
    assert "verification of client" in printed
    for needle in needles:
        assert needle not in printed
    database = Path(airflow_db).read_bytes()
    for needle in needles:
        assert needle.encode() not in database


def _aws_resources_of(names) -> dict[str, bool]:
    s3 = operator("s3")
    iam = operator("iam")
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    aliases = {a["AliasName"] for a in operator("kms").list_aliases()["Aliases"]}
    users = {u["UserName"] for u in iam.list_users()["Users"]}
    return {
        "bucket": names.bucket in buckets,
        "key alias": names.kms_alias in aliases,
        "user": names.sdk_user in users,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "bad--double-hyphen"},
        {"contact_emails": ["not-an-address"]},
        {"access_methods": []},
        {"link_lifetime_seconds": 60},
        {"noncurrent_version_retention_days": 0},
    ],
    ids=["client_id", "contact_emails", "access_methods", "lifetime", "retention"],
)
def test_invalid_params_create_nothing(stack, overrides):
    client_id = overrides.get("client_id") or _unique("e2e-invalid")
    conf = {**_conf(client_id, "nobody@invalid.example"), **overrides}
    field = next(iter(overrides))

    try:
        dag_run = run_dag(conf)
    except Exception as exc:  # the trigger form's schema rejected the conf
        assert field in str(exc)
    else:
        assert task_states(dag_run)["validate"] == "failed"
        assert task_states(dag_run)["provision"] == "upstream_failed"

    if "--" not in client_id:
        assert _aws_resources_of(client_names(client_id)) == {
            "bucket": False,
            "key alias": False,
            "user": False,
        }
    assert registry_record(client_id) is None
    assert audit_actions(client_id) == []
    assert _emails_to("nobody@invalid.example") == []


def test_tampered_bucket_fails_then_rerun_converges(stack, monkeypatch):
    from include.onboarding import verification

    client_id = _unique("e2e-tamper")
    contact = f"it@{client_id}.example"
    names = client_names(client_id)
    original = verification.verify_client
    suspend_versioning_before_verify(monkeypatch)
    states = task_states(run_dag(_conf(client_id, contact)))
    record = registry_record(client_id)

    assert states["verify"] == "failed"
    assert states["share"] == "upstream_failed"
    assert states["notify"] == "upstream_failed"
    assert record["status"] == "verification_failed"
    assert [r["check"] for r in record["verification"]["rows"] if r["status"] == "fail"] == [
        "bucket: versioning"
    ]
    assert "receipt_ids" not in record
    assert _emails_to(contact) == []
    assert operator("s3").head_bucket(Bucket=names.bucket)
    first_key = secret_json(names.sdk_secret)["AccessKeyId"]

    monkeypatch.setattr(verification, "verify_client", original)
    states = task_states(run_dag(_conf(client_id, contact)))
    keys = operator("iam").list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]

    assert set(states.values()) == {"success"}, states
    assert [k["AccessKeyId"] for k in keys] == [first_key]
    assert registry_record(client_id)["status"] == "active"
    assert len(_emails_to(contact)) == 1


def test_second_run_idempotent_then_reissue(stack):
    client_id = _unique("e2e-reissue")
    contact = f"it@{client_id}.example"
    names = client_names(client_id)
    run_dag(_conf(client_id, contact))
    first_links = _links(_emails_to(contact)[0])
    first_sdk = secret_json(names.sdk_secret)
    first_login = secret_json(names.sftp_login_secret)

    again = task_states(run_dag(_conf(client_id, contact)))
    assert again["validate"] == "failed"
    assert again["provision"] == "upstream_failed"
    assert len(_emails_to(contact)) == 1
    assert secret_json(names.sdk_secret) == first_sdk

    reissued = task_states(run_dag(_conf(client_id, contact, reissue=True)))
    assert set(reissued.values()) == {"success"}, reissued
    second_sdk = secret_json(names.sdk_secret)
    second_login = secret_json(names.sftp_login_secret)
    statuses = {
        k["AccessKeyId"]: k["Status"]
        for k in operator("iam").list_access_keys(UserName=names.sdk_user)["AccessKeyMetadata"]
    }

    assert second_sdk["AccessKeyId"] != first_sdk["AccessKeyId"]
    assert statuses == {first_sdk["AccessKeyId"]: "Inactive", second_sdk["AccessKeyId"]: "Active"}
    assert second_login["Password"] != first_login["Password"]
    assert registry_record(client_id)["credential_generation"] == 2
    emails = _emails_to(contact)
    assert len(emails) == 2
    new_links = _links(emails[-1])
    assert second_sdk["SecretAccessKey"] in _reveal(new_links["sdk"])
    # The unread links of the first issue were burned by the reissue.
    for link in first_links.values():
        with pytest.raises(SecretUnavailable):
            _reveal(link)

    # NOTE: rclone caches a backend per user, password hash and client IP, so
    # the local gateway keeps accepting a replaced password it has already
    # seen until that entry expires. The identity lookup, which Transfer
    # Family calls on every login, is checked directly instead.
    secrets_client = operator("secretsmanager")
    server_id = os.environ["SFTP_SERVER_ID"]
    assert authenticate(secrets_client, server_id, names.sftp_user, first_login["Password"]) is None
    assert authenticate(secrets_client, server_id, names.sftp_user, second_login["Password"])
    _sftp_connect(names.sftp_user, second_login["Password"]).close()
