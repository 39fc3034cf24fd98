"""The environment of local runs, written to ``stack.env``.

Airflow reads its connections from ``AIRFLOW_CONN_<ID>`` variables in JSON
form. The AWS connection carries the emulator endpoint in
``extra.endpoint_url`` (apache-airflow-providers-amazon 9.39). The Mongo
connection carries the server's address (apache-airflow-providers-mongo 5.5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from include.localstack.aws_bootstrap import REGION, AccessKey, account_id
from include.localstack.process import LOOPBACK
from include.localstack.state import REPO_ROOT, StateDir, write_env_file
from include.mongo import DEFAULT_DATABASE

ENV_FILE_HEADER = """\
Local development values only, written by `python -m include.localstack up`.
They point at the local stack on 127.0.0.1 and hold the emulator's operator
keys and the local secret service token; never use them anywhere else.
Load with: source {path}"""

DEFAULT_SES_SENDER = "exchange@example.com"


@dataclass(frozen=True)
class ExchangeSettings:
    """Addresses, names and keys of the exchange's services, as one client sees them."""

    endpoint: str
    prefix: str
    server_id: str
    ses_sender: str
    operator: AccessKey
    gateway_arn: str
    sftp_host: str
    sftp_port: int
    sftp_public_key: str
    sftp_fingerprint: str
    mongo_uri: str
    secret_service_url: str | None = None
    secret_service_token: str | None = None
    secret_service_ca_file: Path | None = None


@dataclass(frozen=True)
class StackSettings:
    """Ports, keys and names of the running parts, from which the environment is built."""

    state: StateDir
    prefix: str
    server_id: str
    ses_sender: str
    moto_port: int
    operator: AccessKey
    gateway_arn: str
    sftp_port: int
    sftp_public_key: str
    sftp_fingerprint: str
    mongo_uri: str
    secret_service_port: int | None
    secret_service_token: str | None
    airflow_port: int | None


def aws_connection(endpoint: str, operator: AccessKey) -> str:
    """Return ``AIRFLOW_CONN_AWS_DEFAULT``: the operator's keys at the emulator."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": operator.access_key_id,
            "password": operator.secret_access_key,
            "extra": {"region_name": REGION, "endpoint_url": endpoint},
        }
    )


def mongo_connection(uri: str) -> str:
    """Return ``AIRFLOW_CONN_MONGO_DEFAULT`` for a ``mongodb://`` or ``mongodb+srv://`` URI.

    MongoHook rebuilds the URI from host, port, login, password and schema,
    and passes the remaining extras to MongoClient as options.
    """
    parts = urlsplit(uri)
    connection: dict[str, object] = {"conn_type": "mongo"}
    hosts = parts.netloc.rsplit("@", 1)[-1]
    extra: dict[str, object] = dict(parse_qsl(parts.query))
    if parts.scheme == "mongodb+srv":
        extra["srv"] = True
        connection["host"] = hosts
    elif "," in hosts:
        # A replica set seed list has no single port; keep it in the host field.
        connection["host"] = hosts
    else:
        connection["host"] = parts.hostname
        if parts.port:
            connection["port"] = parts.port
    if parts.username is not None:
        connection["login"] = unquote(parts.username)
    if parts.password is not None:
        connection["password"] = unquote(parts.password)
    connection["schema"] = parts.path.lstrip("/") or DEFAULT_DATABASE
    if extra:
        connection["extra"] = extra
    return json.dumps(connection)


def exchange_env(settings: ExchangeSettings) -> dict[str, str]:
    """Return the AWS, SFTP, MongoDB and secret service variables of the DAGs and tools."""
    env = {
        "AWS_ENDPOINT_URL": settings.endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": settings.operator.access_key_id,
        "AWS_SECRET_ACCESS_KEY": settings.operator.secret_access_key,
        "AWS_ACCOUNT_ID": account_id(settings.operator.arn),
        "AWS_EC2_METADATA_DISABLED": "true",
        "EXCHANGE_PREFIX": settings.prefix,
        "SFTP_HOST": settings.sftp_host,
        "SFTP_PORT": str(settings.sftp_port),
        "SFTP_SERVER_ID": settings.server_id,
        "SFTP_HOST_PUBLIC_KEY": settings.sftp_public_key,
        "SFTP_HOST_KEY_FINGERPRINT": settings.sftp_fingerprint,
        # Locally the gateway user assumes the client SFTP roles; in
        # production the trust policy names transfer.amazonaws.com.
        "SFTP_GATEWAY_PRINCIPAL_ARN": settings.gateway_arn,
        "SES_SENDER": settings.ses_sender,
        # Failure alerts of the DAGs go here; moto SES keeps them readable.
        "OPS_ALERT_EMAIL": f"ops@{settings.ses_sender.rpartition('@')[2]}",
        "MONGO_URI": settings.mongo_uri,
        "AIRFLOW_CONN_AWS_DEFAULT": aws_connection(settings.endpoint, settings.operator),
        "AIRFLOW_CONN_MONGO_DEFAULT": mongo_connection(settings.mongo_uri),
    }
    if settings.secret_service_url and settings.secret_service_token:
        env["SECRET_SERVICE_URL"] = settings.secret_service_url
        env["SECRET_SERVICE_TOKEN"] = settings.secret_service_token
        env["SECRET_SERVICE_CA_FILE"] = str(settings.secret_service_ca_file)
    return env


def build_env(settings: StackSettings) -> dict[str, str]:
    """Return the variables of ``stack.env`` for the running stack."""
    secret_service_url = None
    if settings.secret_service_port is not None:
        secret_service_url = f"https://{LOOPBACK}:{settings.secret_service_port}"
    env = exchange_env(
        ExchangeSettings(
            endpoint=f"http://{LOOPBACK}:{settings.moto_port}",
            prefix=settings.prefix,
            server_id=settings.server_id,
            ses_sender=settings.ses_sender,
            operator=settings.operator,
            gateway_arn=settings.gateway_arn,
            sftp_host=LOOPBACK,
            sftp_port=settings.sftp_port,
            sftp_public_key=settings.sftp_public_key,
            sftp_fingerprint=settings.sftp_fingerprint,
            mongo_uri=settings.mongo_uri,
            secret_service_url=secret_service_url,
            secret_service_token=settings.secret_service_token,
            secret_service_ca_file=settings.state.tls_dir / "dev-cert.pem",
        )
    )
    airflow_home = settings.state.airflow_home
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    if settings.airflow_port is not None:
        env.update(airflow_server_env(settings.airflow_port))
    return env


def airflow_server_env(port: int) -> dict[str, str]:
    """Return the variables that put Airflow's API server on ``127.0.0.1:port``."""
    base_url = f"http://{LOOPBACK}:{port}"
    return {
        "AIRFLOW_PORT": str(port),
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        # Task processes report to the API server; the default assumes port 8080.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        # The LocalExecutor keeps one idle worker process per parallel task
        # slot (32 by default); a few are enough on a development machine.
        "AIRFLOW__CORE__PARALLELISM": "4",
    }


def write_stack_env(state: StateDir, env: dict[str, str]) -> Path:
    """Write ``env`` to ``stack.env`` (mode 600) and return its path."""
    write_env_file(state.env_file, env, ENV_FILE_HEADER.format(path=state.env_file))
    return state.env_file
