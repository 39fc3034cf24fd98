"""The rclone --auth-proxy adapter of the identity lookup: in process with stubs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from botocore.exceptions import ClientError

from include.identity import rclone_proxy
from include.identity.lookup import authenticate
from tests.identity.stubs import KMS_KEY_ARN, PASSWORD, ROLE_ARN, SERVER_ID, client_with_login

USER = "acme-health"
GATEWAY_ENV = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIAGATEWAYEXAMPLE00",
    "AWS_SECRET_ACCESS_KEY": "gateway-secret-example",
    "SFTP_SERVER_ID": SERVER_ID,
}
CREDENTIALS = {
    "AccessKeyId": "ASIATEMPORARYEXAMPLE",
    "SecretAccessKey": "temporary-secret-example",
    "SessionToken": "temporary-token-example",
}


class StubSts:
    def __init__(self, error_code: str | None = None):
        self.error_code = error_code
        self.calls: list[dict] = []

    def assume_role(self, **params):
        self.calls.append(params)
        if self.error_code:
            raise ClientError(
                {"Error": {"Code": self.error_code, "Message": "denied"}}, "AssumeRole"
            )
        return {"Credentials": CREDENTIALS}


@pytest.fixture
def stub_clients(monkeypatch):
    """Replace the gateway's boto3 clients with stubs; return them by service."""
    clients = {"secretsmanager": client_with_login(USER), "sts": StubSts()}
    monkeypatch.setattr(rclone_proxy, "gateway_client", lambda settings, service: clients[service])
    return clients


def _run(request: object, env: dict | None = None) -> tuple[int, str]:
    stdin = io.StringIO(request if isinstance(request, str) else json.dumps(request))
    stdout = io.StringIO()
    code = rclone_proxy.run(stdin, stdout, GATEWAY_ENV if env is None else env)
    return code, stdout.getvalue()


def test_proxy_success_prints_s3_backend(stub_clients):
    code, output = _run({"user": USER, "pass": PASSWORD, "client_ip": "127.0.0.1"})

    assert code == 0
    config = json.loads(output)
    assert config["type"] == "s3"
    assert config["_root"] == f"cdx-{USER}"
    assert config["endpoint"] == GATEWAY_ENV["AWS_ENDPOINT_URL"]
    assert config["access_key_id"] == CREDENTIALS["AccessKeyId"]
    assert config["secret_access_key"] == CREDENTIALS["SecretAccessKey"]
    assert config["session_token"] == CREDENTIALS["SessionToken"]
    assert config["server_side_encryption"] == "aws:kms"
    assert config["sse_kms_key_id"] == KMS_KEY_ARN
    assert config["force_path_style"] == "true"
    assert config["no_check_bucket"] == "true"


def test_proxy_assumes_login_role(stub_clients):
    _run({"user": USER, "pass": PASSWORD})

    (call,) = stub_clients["sts"].calls
    assert call["RoleArn"] == ROLE_ARN
    assert call["RoleSessionName"] == f"sftp-{USER}"
    assert "Policy" not in call


def test_proxy_wrong_password(stub_clients):
    code, output = _run({"user": USER, "pass": "wrong"})

    assert code == rclone_proxy.EXIT_REJECTED
    assert output == ""
    assert stub_clients["sts"].calls == []


def test_proxy_rejects_public_key_login(stub_clients, caplog):
    caplog.set_level(logging.INFO)

    code, output = _run({"user": USER, "public_key": "AAAAC3NzaC1lZDI1NTE5AAAA"})

    assert code == rclone_proxy.EXIT_REJECTED
    assert output == ""
    assert "only password logins" in caplog.text


@pytest.mark.parametrize("request_text", ["", "not json", "[1, 2]", "x" * 70_000])
def test_proxy_rejects_malformed_request(request_text, stub_clients):
    code, output = _run(request_text)

    assert code == rclone_proxy.EXIT_REJECTED
    assert output == ""


@pytest.mark.parametrize(
    "variable", ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
)
def test_proxy_requires_gateway_env(variable, stub_clients, caplog):
    env = {key: value for key, value in GATEWAY_ENV.items() if key != variable}

    code, output = _run({"user": USER, "pass": PASSWORD}, env)

    assert code == rclone_proxy.EXIT_GATEWAY_ERROR
    assert output == ""
    assert variable in caplog.text


def test_proxy_assume_role_denied(stub_clients, caplog):
    stub_clients["sts"] = StubSts(error_code="AccessDenied")

    code, output = _run({"user": USER, "pass": PASSWORD})

    assert code == rclone_proxy.EXIT_GATEWAY_ERROR
    assert output == ""
    assert ROLE_ARN in caplog.text


def test_proxy_never_logs_password(stub_clients, caplog):
    caplog.set_level(logging.DEBUG)

    _run({"user": USER, "pass": PASSWORD})
    _run({"user": USER, "pass": PASSWORD + "-wrong"})

    assert PASSWORD not in caplog.text


def test_backend_config_with_prefix_and_no_key():
    client = client_with_login(USER, kms_key_arn=None)
    login = authenticate(client, SERVER_ID, USER, PASSWORD)
    login = login.__class__(**{**login.__dict__, "key_prefix": "inbound"})
    settings = rclone_proxy.gateway_settings(GATEWAY_ENV)

    config = rclone_proxy.backend_config(login, CREDENTIALS, settings)

    assert config["_root"] == f"cdx-{USER}/inbound"
    assert "server_side_encryption" not in config
    assert "sse_kms_key_id" not in config
