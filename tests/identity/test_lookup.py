"""The SFTP identity lookup: one login secret in, a Transfer Family response out."""

from __future__ import annotations

import json
import logging

import pytest

from include.identity.lookup import (
    InvalidLoginSecretError,
    authenticate,
    build_login_secret,
    lookup_identity,
)
from tests.identity.stubs import (
    KMS_KEY_ARN,
    PASSWORD,
    ROLE_ARN,
    SERVER_ID,
    StubSecretsClient,
    client_with_login,
    secret_name,
)

USER = "acme-health"


def test_lookup_success_shape():
    client = client_with_login(USER)

    response = lookup_identity(client, SERVER_ID, USER, PASSWORD, "192.0.2.10")

    assert set(response) == {"Role", "HomeDirectoryType", "HomeDirectoryDetails"}
    assert response["Role"] == ROLE_ARN
    assert response["HomeDirectoryType"] == "LOGICAL"
    assert json.loads(response["HomeDirectoryDetails"]) == [
        {"Entry": "/", "Target": f"/cdx-{USER}"}
    ]
    assert client.requested == [secret_name(USER)]


def test_lookup_returns_session_policy():
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    client = client_with_login(USER, policy=policy)

    response = lookup_identity(client, SERVER_ID, USER, PASSWORD)

    assert response["Policy"] == policy


def test_authenticate_returns_bucket_and_key():
    login = authenticate(client_with_login(USER), SERVER_ID, USER, PASSWORD, "127.0.0.1")

    assert login is not None
    assert login.bucket == f"cdx-{USER}"
    assert login.key_prefix == ""
    assert login.kms_key_arn == KMS_KEY_ARN
    assert login.client_id == USER


def test_lookup_unknown_user(caplog):
    caplog.set_level(logging.INFO)

    assert lookup_identity(StubSecretsClient(), SERVER_ID, USER, PASSWORD) == {}
    assert "unknown user" in caplog.text
    assert USER in caplog.text


def test_lookup_wrong_password(caplog):
    caplog.set_level(logging.INFO)

    assert lookup_identity(client_with_login(USER), SERVER_ID, USER, PASSWORD + "x") == {}
    assert "wrong password" in caplog.text


@pytest.mark.parametrize("password", ["", None, 1234])
def test_lookup_empty_password(password, caplog):
    caplog.set_level(logging.INFO)
    client = client_with_login(USER)

    assert lookup_identity(client, SERVER_ID, USER, password) == {}
    assert "empty password" in caplog.text
    # Rejected before any secret is read.
    assert client.requested == []


def test_lookup_disabled_client(caplog):
    caplog.set_level(logging.INFO)
    client = client_with_login(USER, disabled=True)

    assert lookup_identity(client, SERVER_ID, USER, PASSWORD) == {}
    assert "disabled" in caplog.text


@pytest.mark.parametrize(
    ("secret_string", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"Role": ROLE_ARN}), "Password"),
        (json.dumps({"Password": PASSWORD, "Role": "admin"}), "Role"),
        (
            json.dumps({"Password": PASSWORD, "Role": ROLE_ARN, "HomeDirectoryType": "PATH"}),
            "LOGICAL",
        ),
    ],
)
def test_lookup_malformed_secret(secret_string, reason, caplog):
    caplog.set_level(logging.INFO)
    client = StubSecretsClient({secret_name(USER): secret_string})

    assert lookup_identity(client, SERVER_ID, USER, PASSWORD) == {}
    assert "malformed secret" in caplog.text
    assert reason in caplog.text


@pytest.mark.parametrize(
    "details",
    [
        "not json",
        json.dumps({"Entry": "/", "Target": "/cdx-acme"}),
        json.dumps([{"Entry": "/in", "Target": "/cdx-acme"}]),
        json.dumps([{"Entry": "/", "Target": "/../cdx-other"}]),
        json.dumps([{"Entry": "/", "Target": "cdx-acme"}]),
        json.dumps([{"Entry": "/", "Target": "/"}]),
    ],
)
def test_lookup_malformed_home_directory(details):
    secret = json.loads(
        build_login_secret(password=PASSWORD, role_arn=ROLE_ARN, bucket="cdx-acme", client_id=USER)
    )
    secret["HomeDirectoryDetails"] = details
    client = StubSecretsClient({secret_name(USER): json.dumps(secret)})

    assert lookup_identity(client, SERVER_ID, USER, PASSWORD) == {}


def test_lookup_disabled_must_be_boolean():
    secret = json.loads(
        build_login_secret(password=PASSWORD, role_arn=ROLE_ARN, bucket="cdx-acme", client_id=USER)
    )
    secret["Disabled"] = "false"
    client = StubSecretsClient({secret_name(USER): json.dumps(secret)})

    assert lookup_identity(client, SERVER_ID, USER, PASSWORD) == {}


@pytest.mark.parametrize(
    ("server_id", "username", "source_ip", "reason"),
    [
        (SERVER_ID, "../etc/passwd", None, "invalid username"),
        (SERVER_ID, "ab", None, "invalid username"),
        (SERVER_ID, "acme/other", None, "invalid username"),
        (SERVER_ID, None, None, "invalid username"),
        (SERVER_ID, "x" * 101, None, "invalid username"),
        ("s-123", USER, None, "invalid server id"),
        (None, USER, None, "invalid server id"),
        (SERVER_ID, USER, "not-an-ip", "invalid source IP"),
    ],
)
def test_lookup_malformed_input(server_id, username, source_ip, reason, caplog):
    caplog.set_level(logging.INFO)
    client = client_with_login(USER)

    assert lookup_identity(client, server_id, username, PASSWORD, source_ip) == {}
    assert reason in caplog.text
    assert client.requested == []


def test_lookup_secret_not_readable(caplog):
    caplog.set_level(logging.INFO)
    client = StubSecretsClient(error_code="AccessDeniedException")

    assert lookup_identity(client, SERVER_ID, USER, PASSWORD) == {}
    assert "AccessDeniedException" in caplog.text


def test_lookup_rejects_oversized_password():
    assert lookup_identity(client_with_login(USER), SERVER_ID, USER, "p" * 5000) == {}


def test_password_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + PASSWORD
    cases = [
        (client_with_login(USER), USER, PASSWORD),
        (client_with_login(USER), USER, wrong),
        (client_with_login(USER, disabled=True), USER, PASSWORD),
        (StubSecretsClient(), USER, PASSWORD),
        (StubSecretsClient({secret_name(USER): "{"}), USER, PASSWORD),
        (client_with_login(USER), "bad name!", PASSWORD),
    ]

    for client, username, password in cases:
        lookup_identity(client, SERVER_ID, username, password, "127.0.0.1")

    assert caplog.records, "expected log lines for each login attempt"
    assert PASSWORD not in caplog.text
    assert wrong not in caplog.text


def test_build_login_secret_format():
    text = build_login_secret(
        password=PASSWORD,
        role_arn=ROLE_ARN,
        bucket="cdx-acme",
        client_id="acme",
        kms_key_arn=KMS_KEY_ARN,
    )
    secret = json.loads(text)

    assert secret["Password"] == PASSWORD
    assert secret["Role"] == ROLE_ARN
    assert secret["HomeDirectoryType"] == "LOGICAL"
    assert json.loads(secret["HomeDirectoryDetails"]) == [{"Entry": "/", "Target": "/cdx-acme"}]
    assert secret["ClientId"] == "acme"
    assert secret["Disabled"] is False
    assert secret["KmsKeyArn"] == KMS_KEY_ARN
    assert "Policy" not in secret


def test_build_login_secret_rejects_bad_role():
    with pytest.raises(InvalidLoginSecretError, match="Role"):
        build_login_secret(password=PASSWORD, role_arn="role", bucket="cdx-acme", client_id="acme")


def test_build_login_secret_rejects_empty_password():
    with pytest.raises(InvalidLoginSecretError, match="Password"):
        build_login_secret(password="", role_arn=ROLE_ARN, bucket="cdx-acme", client_id="acme")
