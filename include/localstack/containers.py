"""Entry points of the container stack in docker-compose.yaml: ``bootstrap`` and ``serve-sftp``.

In containers each part runs as its own service, so these commands do what
``up`` does apart from starting processes. ``bootstrap`` runs once in the
``stack-init`` service before the others start. It creates the emulator's
identities and the local secrets and writes the environment file that the
Airflow services source. ``serve-sftp`` runs rclone in the foreground of the
``sftp-gateway`` service with the command line that ``up`` uses.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from include.localstack import aws_bootstrap as aws
from include.localstack import parts
from include.localstack.environment import DEFAULT_SES_SENDER, ExchangeSettings, exchange_env
from include.localstack.state import StackError, StateDir, write_env_file
from include.naming import (
    DEFAULT_PREFIX,
    DEFAULT_SERVER_ID,
    InvalidNameError,
    validate_prefix,
    validate_server_id,
)

log = logging.getLogger(__name__)

CONTAINER_ENV_FILE_HEADER = """\
Local development values of the container stack, written by
`python -m include.localstack bootstrap`. They hold the emulator's operator
keys, the local secret service token and Airflow's JWT secret and Fernet key.
Never use them anywhere else. Load with: . {path}"""

# Secrets that every Airflow component must share (see StateDir).
JWT_SECRET_VARIABLE = "AIRFLOW__API_AUTH__JWT_SECRET"  # noqa: S105 - a variable name
FERNET_KEY_VARIABLE = "AIRFLOW__CORE__FERNET_KEY"


@dataclass(frozen=True)
class ContainerSettings:
    """The container stack's addresses and names, as the containers see them."""

    endpoint: str
    prefix: str
    server_id: str
    ses_sender: str
    sftp_host: str
    sftp_port: int
    mongo_uri: str
    secret_service_url: str | None


def read_settings(environ: Mapping[str, str]) -> ContainerSettings:
    """Read the container stack's settings from ``environ``.

    :raises StackError: naming every variable that is missing or invalid.
    """
    problems = []
    for variable in ("AWS_ENDPOINT_URL", "SFTP_HOST", "SFTP_PORT", "MONGO_URI"):
        if not environ.get(variable):
            problems.append(f"{variable} is not set")

    endpoint = environ.get("AWS_ENDPOINT_URL", "")
    if endpoint and not _is_url(endpoint, ("http", "https")):
        problems.append(f"AWS_ENDPOINT_URL={endpoint!r} is not an http:// or https:// URL")
    raw_port = environ.get("SFTP_PORT", "")
    if raw_port and not (raw_port.isdigit() and 0 < int(raw_port) < 65536):
        problems.append(f"SFTP_PORT={raw_port!r} is not a TCP port number (1 to 65535)")
    mongo_uri = environ.get("MONGO_URI", "")
    if mongo_uri and urlsplit(mongo_uri).scheme not in ("mongodb", "mongodb+srv"):
        problems.append(f"MONGO_URI={mongo_uri!r} does not start with mongodb:// or mongodb+srv://")
    secret_service_url = environ.get("SECRET_SERVICE_URL") or None
    if secret_service_url and not _is_url(secret_service_url, ("https",)):
        problems.append(f"SECRET_SERVICE_URL={secret_service_url!r} is not an https:// URL")
    prefix = environ.get("EXCHANGE_PREFIX") or DEFAULT_PREFIX
    server_id = environ.get("SFTP_SERVER_ID") or DEFAULT_SERVER_ID
    for variable, value, validate in (
        ("EXCHANGE_PREFIX", prefix, validate_prefix),
        ("SFTP_SERVER_ID", server_id, validate_server_id),
    ):
        try:
            validate(value)
        except InvalidNameError as exc:
            problems.append(f"{variable}: {exc}")
    if problems:
        raise StackError("invalid container stack environment: " + "; ".join(problems))

    return ContainerSettings(
        endpoint=endpoint.rstrip("/"),
        prefix=prefix,
        server_id=server_id,
        ses_sender=environ.get("SES_SENDER") or DEFAULT_SES_SENDER,
        sftp_host=environ["SFTP_HOST"],
        sftp_port=int(raw_port),
        mongo_uri=mongo_uri,
        secret_service_url=secret_service_url,
    )


def _is_url(value: str, schemes: tuple[str, ...]) -> bool:
    split = urlsplit(value)
    return split.scheme in schemes and bool(split.hostname)


def bootstrap(env_file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Prepare the emulator and the local secrets, write ``env_file`` and return its variables.

    Keys and secrets are kept in the directory of ``env_file`` (the layout
    of :mod:`include.localstack.state`), so a second run against the same
    emulator reuses them and writes the same file.

    :param environ: the settings (default ``os.environ``), see :func:`read_settings`.
    :raises StackError: when a setting is invalid or the emulator cannot be bootstrapped.
    """
    settings = read_settings(os.environ if environ is None else environ)
    env_file = Path(env_file).resolve()
    state = StateDir.open(env_file.parent)

    operator = _operator_key(state, settings)
    stored_gateway = aws.load_key(state.gateway_keys_file)
    gateway = aws.ensure_gateway(settings.endpoint, operator, settings.prefix, stored_gateway)
    aws.save_key(state.gateway_keys_file, gateway)
    aws.verify_ses_sender(settings.endpoint, operator, settings.ses_sender)

    parts.ensure_host_key(state)
    public_key = parts.host_public_key(state)
    token, ca_file = _prepare_secret_service(state, settings.secret_service_url)
    env = exchange_env(
        ExchangeSettings(
            endpoint=settings.endpoint,
            prefix=settings.prefix,
            server_id=settings.server_id,
            ses_sender=settings.ses_sender,
            operator=operator,
            gateway_arn=gateway.arn,
            sftp_host=settings.sftp_host,
            sftp_port=settings.sftp_port,
            sftp_public_key=public_key,
            sftp_fingerprint=parts.host_key_fingerprint(public_key),
            mongo_uri=settings.mongo_uri,
            secret_service_url=settings.secret_service_url,
            secret_service_token=token,
            secret_service_ca_file=ca_file,
        )
    )
    env[JWT_SECRET_VARIABLE] = state.airflow_jwt_secret()
    env[FERNET_KEY_VARIABLE] = state.airflow_fernet_key()
    write_env_file(env_file, env, CONTAINER_ENV_FILE_HEADER.format(path=env_file))
    log.info(
        "container stack bootstrapped: operator %s, SFTP gateway %s, environment in %s",
        operator.arn,
        gateway.arn,
        env_file,
    )
    return env


def _operator_key(state: StateDir, settings: ContainerSettings) -> aws.AccessKey:
    """Return the stored operator key when the emulator still has it, else bootstrap the operator.

    The check reads the emulator's state instead of calling AWS, because a
    signed call with stale keys on a fresh emulator would spend one of the
    unauthenticated calls that the bootstrap needs.
    """
    endpoint = settings.endpoint
    user = aws.operator_user(settings.prefix)
    users = aws.emulator_access_keys(endpoint)
    stored = aws.load_key(state.operator_keys_file)

    if user not in users:
        operator = aws.bootstrap_operator(endpoint, settings.prefix)
        aws.save_key(state.operator_keys_file, operator)
        return operator
    if (
        stored is not None
        and stored.access_key_id in users[user]
        and aws.caller_arn(endpoint, stored) == stored.arn
    ):
        log.info("operator %s exists; reusing access key %s", stored.arn, stored.access_key_id)
        return stored
    raise StackError(
        f"the emulator at {endpoint} already has the operator {user}, but "
        f"{state.operator_keys_file} contains none of its access keys. Start the emulator "
        "afresh (for example: docker compose down, then docker compose up) and bootstrap again"
    )


def _prepare_secret_service(state: StateDir, url: str | None) -> tuple[str | None, Path | None]:
    """Return the secret service token and CA file, creating both when missing."""
    if not url:
        log.warning(
            "SECRET_SERVICE_URL is not set, so the env file gets no secret service settings"
        )
        return None, None
    # Imported here because the secret service is optional in a checkout.
    from include.secret_service.tls import ensure_dev_certificate

    host = urlsplit(url).hostname or ""
    cert_path, _ = ensure_dev_certificate(state.tls_dir, extra_names=(host,))
    return state.secret_service_token(), cert_path


def serve_sftp(address: str, state_dir: Path, environ: Mapping[str, str] | None = None) -> NoReturn:
    """Replace this process with ``rclone serve sftp`` listening on ``address``.

    rclone then receives signals directly and exits on SIGTERM. The gateway
    key comes from ``sftp-gateway.json`` in ``state_dir``, written by
    :func:`bootstrap`. The endpoint and server id come from ``environ``.

    :raises StackError: when the key, ``AWS_ENDPOINT_URL`` or the rclone binary is missing.
    """
    environ = os.environ if environ is None else environ
    endpoint = environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise StackError("AWS_ENDPOINT_URL is not set: the SFTP gateway needs the AWS endpoint")
    server_id = environ.get("SFTP_SERVER_ID") or DEFAULT_SERVER_ID
    try:
        validate_server_id(server_id)
    except InvalidNameError as exc:
        raise StackError(f"SFTP_SERVER_ID: {exc}") from exc
    state = StateDir.open(state_dir)
    gateway = aws.load_key(state.gateway_keys_file)
    if gateway is None:
        raise StackError(
            f"no SFTP gateway key in {state.gateway_keys_file}: run "
            "`python -m include.localstack bootstrap` with an env file in that directory first"
        )

    argv, env = parts.sftp_command(state, address, endpoint.rstrip("/"), gateway, server_id)
    if not os.access(argv[0], os.X_OK):
        raise StackError(f"rclone binary {argv[0]} is missing or not executable (set RCLONE_BIN)")
    log.info(
        "starting the SFTP gateway on %s as %s (access key %s), state in %s",
        address,
        gateway.arn,
        gateway.access_key_id,
        state.root,
    )
    os.execve(argv[0], argv, env)  # noqa: S606 - argv is built by parts.sftp_command
