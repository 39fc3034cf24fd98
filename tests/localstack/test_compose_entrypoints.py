"""The container stack's entry points, run on 127.0.0.1: ``bootstrap`` and ``serve-sftp``.

Each test module run starts its own moto server the way ``up`` does (IAM
authentication on after the bootstrap's free calls) and runs the commands as
docker-compose.yaml does, with the endpoint on 127.0.0.1 in place of
``http://moto:5000``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import psutil
import pytest
from botocore.exceptions import ClientError
from cryptography import x509

from include.identity.lookup import build_login_secret
from include.localstack import aws_bootstrap as aws
from include.localstack import health, parts
from include.localstack.process import LOOPBACK, free_port, spawn, stop_pid, wait_healthy
from include.localstack.stack import read_env_file
from include.localstack.state import REPO_ROOT, StateDir
from include.naming import DEFAULT_SERVER_ID

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT_SECONDS = 120
SFTP_START_SECONDS = 30
STOP_SECONDS = 15
# The values the containers see in docker-compose.yaml, except the endpoint.
CONTAINER_SETTINGS = {
    "EXCHANGE_PREFIX": "cdx",
    "SES_SENDER": "exchange@example.com",
    "SFTP_HOST": "sftp-gateway",
    "SFTP_PORT": "2222",
    "MONGO_URI": "mongodb://mongodb:27017/exchange",
    "SECRET_SERVICE_URL": "https://secret-service:8443",
}


def _start_moto(state_dir: Path) -> tuple[int, str]:
    """Start moto as ``up`` does and return its pid and endpoint."""
    state = StateDir.open(state_dir)
    port = free_port()
    spec = parts.moto_spec(state, port)
    pid = spawn(state, spec)
    wait_healthy(state, spec, pid, lambda: health.check_moto(port), 60)
    return pid, f"http://{LOOPBACK}:{port}"


def _command_env(endpoint: str) -> dict[str, str]:
    """Return a clean environment for the commands, without the test session's AWS keys."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(CONTAINER_SETTINGS)
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return env


def _run_localstack(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "include.localstack", *arguments],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def _bootstrap(env_file: Path, endpoint: str) -> subprocess.CompletedProcess:
    result = _run_localstack(["bootstrap", "--env-file", str(env_file)], _command_env(endpoint))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _client(service: str, endpoint: str, key_id: str, secret: str):
    return aws.client(service, endpoint, key_id, secret)


def _operator_client(service: str, env: dict[str, str]):
    return _client(
        service, env["AWS_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    )


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory):
    pid, endpoint = _start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield endpoint
    finally:
        stop_pid(pid, "moto")


@pytest.fixture(scope="module")
def bootstrapped(tmp_path_factory, moto_endpoint):
    """Run ``bootstrap`` once and return the env file and its variables."""
    env_file = tmp_path_factory.mktemp("state") / "stack.env"
    _bootstrap(env_file, moto_endpoint)
    return env_file, read_env_file(env_file)


def test_bootstrap_env_file_values(bootstrapped, moto_endpoint):
    env_file, env = bootstrapped

    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env["AWS_ENDPOINT_URL"] == moto_endpoint
    for key, value in CONTAINER_SETTINGS.items():
        assert env[key] == value, key
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"]
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])["extra"]["endpoint_url"] == moto_endpoint
    assert json.loads(env["AIRFLOW_CONN_MONGO_DEFAULT"])["host"] == "mongodb"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64
    assert env["AIRFLOW__CORE__FERNET_KEY"]
    # Local paths and Airflow's own settings come from the containers, not the file.
    assert "AIRFLOW_HOME" not in env
    assert "PYTHONPATH" not in env


def test_bootstrap_operator_keys_work(bootstrapped):
    _, env = bootstrapped

    identity = _operator_client("sts", env).get_caller_identity()
    users = _operator_client("iam", env).list_users()["Users"]

    assert identity["Arn"].endswith(":user/cdx-operator")
    assert identity["Account"] == env["AWS_ACCOUNT_ID"]
    assert {"cdx-operator", "cdx-sftp-gateway"} <= {user["UserName"] for user in users}


def test_bootstrap_unknown_keys_rejected(bootstrapped, moto_endpoint):
    sts = _client("sts", moto_endpoint, "AKIAUNKNOWNKEY000000", "not-a-real-secret")

    with pytest.raises(ClientError) as error:
        sts.get_caller_identity()

    assert error.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_bootstrap_ses_sender_verified(bootstrapped):
    _, env = bootstrapped

    identities = _operator_client("ses", env).list_identities()["Identities"]

    assert env["SES_SENDER"] in identities


def test_bootstrap_gateway_keys_beside_env_file(bootstrapped, moto_endpoint):
    env_file, env = bootstrapped
    state = StateDir(env_file.parent)
    gateway = aws.load_key(state.gateway_keys_file)
    text = env_file.read_text()

    assert gateway is not None
    assert stat.S_IMODE(state.gateway_keys_file.stat().st_mode) == 0o600
    assert gateway.access_key_id not in text
    assert gateway.secret_access_key not in text
    assert env["SFTP_GATEWAY_PRINCIPAL_ARN"] == gateway.arn
    assert aws.caller_arn(moto_endpoint, gateway) == gateway.arn


def test_bootstrap_secret_service_files(bootstrapped):
    env_file, env = bootstrapped
    state = StateDir(env_file.parent)
    cert = x509.load_pem_x509_certificate(Path(env["SECRET_SERVICE_CA_FILE"]).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert Path(env["SECRET_SERVICE_CA_FILE"]) == state.tls_dir / "dev-cert.pem"
    assert "secret-service" in names.get_values_for_type(x509.DNSName)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert env["SECRET_SERVICE_TOKEN"] == state.token_file.read_text().strip()
    assert len(env["SECRET_SERVICE_TOKEN"]) >= 32


def test_bootstrap_sftp_host_key(bootstrapped):
    env_file, env = bootstrapped
    state = StateDir(env_file.parent)

    assert env["SFTP_HOST_PUBLIC_KEY"] == parts.host_public_key(state)
    assert env["SFTP_HOST_KEY_FINGERPRINT"] == parts.host_key_fingerprint(
        env["SFTP_HOST_PUBLIC_KEY"]
    )
    assert stat.S_IMODE((state.sftp_dir / "host_ed25519").stat().st_mode) == 0o600


def test_bootstrap_again_is_idempotent(bootstrapped, moto_endpoint):
    env_file, env = bootstrapped
    state = StateDir(env_file.parent)
    before = {
        path: path.read_text()
        for path in (env_file, state.operator_keys_file, state.gateway_keys_file)
    }

    _bootstrap(env_file, moto_endpoint)

    for path, text in before.items():
        assert path.read_text() == text, f"{path.name} changed on the second run"
    operator_keys = _operator_client("iam", env).list_access_keys(UserName="cdx-operator")
    assert len(operator_keys["AccessKeyMetadata"]) == 1


def test_bootstrap_fresh_emulator_replaces_stale_keys(bootstrapped, tmp_path):
    env_file, old_env = bootstrapped
    # The state volume outlives the emulator, as after `docker compose down`.
    state_dir = tmp_path / "state"
    shutil.copytree(env_file.parent, state_dir)
    pid, endpoint = _start_moto(tmp_path / "moto")
    try:
        _bootstrap(state_dir / "stack.env", endpoint)
        env = read_env_file(state_dir / "stack.env")
        identity = _operator_client("sts", env).get_caller_identity()
    finally:
        stop_pid(pid, "moto")

    assert env["AWS_ACCESS_KEY_ID"] != old_env["AWS_ACCESS_KEY_ID"]
    assert identity["Arn"].endswith(":user/cdx-operator")
    # Secrets that do not live in the emulator are kept.
    assert env["SECRET_SERVICE_TOKEN"] == old_env["SECRET_SERVICE_TOKEN"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == old_env["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert env["SFTP_HOST_PUBLIC_KEY"] == old_env["SFTP_HOST_PUBLIC_KEY"]


def test_bootstrap_missing_settings_named(tmp_path):
    env = _command_env("http://127.0.0.1:1")
    del env["AWS_ENDPOINT_URL"]
    env["SFTP_PORT"] = "ssh"
    env["EXCHANGE_PREFIX"] = "Not A Prefix"

    result = _run_localstack(["bootstrap", "--env-file", str(tmp_path / "stack.env")], env)

    assert result.returncode == 1
    assert "AWS_ENDPOINT_URL is not set" in result.stderr
    assert "SFTP_PORT='ssh'" in result.stderr
    assert "EXCHANGE_PREFIX" in result.stderr
    assert not (tmp_path / "stack.env").exists()


def _seed_login(env: dict[str, str], username: str, password: str) -> str:
    """Create a bucket, an SFTP role that trusts the gateway and a login secret for it.

    :return: the bucket name.
    """
    bucket = f"{env['EXCHANGE_PREFIX']}-{username}"
    _operator_client("s3", env).create_bucket(Bucket=bucket)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": env["SFTP_GATEWAY_PRINCIPAL_ARN"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    access = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        ],
    }
    iam = _operator_client("iam", env)
    role_name = f"{env['EXCHANGE_PREFIX']}-{username}-sftp"
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=role_name, PolicyName="bucket-access", PolicyDocument=json.dumps(access)
    )
    _operator_client("secretsmanager", env).create_secret(
        Name=f"aws/transfer/{DEFAULT_SERVER_ID}/{username}",
        SecretString=build_login_secret(
            password=password, role_arn=role_arn["Role"]["Arn"], bucket=bucket, client_id=username
        ),
    )
    return bucket


def _wait_for_banner(process: subprocess.Popen, port: int) -> str:
    deadline = time.monotonic() + SFTP_START_SECONDS
    detail = "not checked yet"
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve-sftp exited with {process.returncode}"
        healthy, detail = health.check_ssh_banner(port)
        if healthy:
            return detail
        time.sleep(0.25)
    pytest.fail(
        f"serve-sftp showed no SSH banner on port {port} within {SFTP_START_SECONDS} s: {detail}"
    )


def _list_root(port: int, env: dict[str, str], username: str, password: str) -> list[str]:
    key_type, blob = env["SFTP_HOST_PUBLIC_KEY"].split()[:2]
    assert key_type == "ssh-ed25519"
    transport = paramiko.Transport((LOOPBACK, port))
    try:
        transport.connect(
            hostkey=paramiko.Ed25519Key(data=base64.b64decode(blob)),
            username=username,
            password=password,
        )
        return paramiko.SFTPClient.from_transport(transport).listdir("/")
    finally:
        transport.close()


def test_serve_sftp_serves_and_stops(bootstrapped, moto_endpoint, tmp_path):
    env_file, env = bootstrapped
    state = StateDir(env_file.parent)
    bucket = _seed_login(env, "compose-gateway", "compose-gateway-password-8d1e")
    _operator_client("s3", env).put_object(Bucket=bucket, Key="hello.txt", Body=b"hello")
    port = free_port()
    address = f"{LOOPBACK}:{port}"
    log_path = tmp_path / "serve-sftp.log"

    with open(log_path, "w") as log_handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "include.localstack", "serve-sftp", "--address", address,
             "--state-dir", str(state.root)],
            env=_command_env(moto_endpoint),
            cwd=REPO_ROOT,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        banner = _wait_for_banner(process, port)
        command_line = psutil.Process(process.pid).cmdline()
        listing = _list_root(port, env, "compose-gateway", "compose-gateway-password-8d1e")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = process.wait(timeout=STOP_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    gateway = aws.load_key(state.gateway_keys_file)
    expected_argv, _ = parts.sftp_command(state, address, moto_endpoint, gateway, DEFAULT_SERVER_ID)
    log_text = log_path.read_text()

    assert banner.startswith("SSH-2.0-")
    # The process became rclone itself, with the command line that `up` uses.
    assert command_line == expected_argv
    assert listing == ["hello.txt"]
    # rclone exits with 128 + SIGTERM after it handles the signal.
    assert exit_code in (128 + signal.SIGTERM, -signal.SIGTERM), log_text
    assert "Signal received" in log_text
    assert gateway.secret_access_key not in log_text


def test_serve_sftp_without_bootstrap(tmp_path, moto_endpoint):
    result = _run_localstack(
        ["serve-sftp", "--address", f"{LOOPBACK}:{free_port()}", "--state-dir", str(tmp_path)],
        _command_env(moto_endpoint),
    )

    assert result.returncode == 1
    assert "no SFTP gateway key" in result.stderr
    assert "bootstrap" in result.stderr
