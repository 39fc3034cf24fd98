"""Start, check and stop the local stack: the Python API behind ``python -m include.localstack``.

:func:`start` brings every part up in order (MongoDB stand-in, AWS emulator,
SFTP gateway, secret service, optionally Airflow), leaves a healthy running
part alone, and returns the environment it also writes to ``stack.env``.
:func:`stop` stops by pid what :func:`start` started; :func:`status` checks
each part.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from include.localstack import aws_bootstrap as aws
from include.localstack import health, parts
from include.localstack.environment import (
    DEFAULT_SES_SENDER,
    StackSettings,
    build_env,
    write_stack_env,
)
from include.localstack.parts import AIRFLOW, MARKERS, MONGO, MOTO, PART_ORDER, SECRET_SERVICE, SFTP
from include.localstack.process import (
    LOOPBACK,
    PORT_RELEASE_SECONDS,
    ProcessSpec,
    free_port,
    is_alive,
    port_is_free,
    read_pid,
    running_pid,
    spawn,
    stop_pid,
    wait_healthy,
)
from include.localstack.state import StackError, StateDir
from include.naming import DEFAULT_PREFIX, DEFAULT_SERVER_ID, validate_prefix, validate_server_id

log = logging.getLogger(__name__)

# Seconds each part may take to pass its health check after it started.
START_TIMEOUTS = {MONGO: 30.0, MOTO: 60.0, SFTP: 30.0, SECRET_SERVICE: 60.0, AIRFLOW: 300.0}
AIRFLOW_MIGRATE_TIMEOUT_SECONDS = 600
AIRFLOW_PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"  # noqa: S105 - a file name


@dataclass(frozen=True)
class PartStatus:
    """One part as ``status`` reports it."""

    name: str
    pid: int | None
    port: int | None
    healthy: bool
    detail: str


class _Runner:
    """Starts parts and records their ports and command fingerprints in ``stack.json``."""

    def __init__(self, state: StateDir) -> None:
        self.state = state
        self.record = state.load_stack()
        # Parts not requested this time but still running stay listed, so
        # that status shows them; `down` stops them either way.
        self.record["parts"] = [
            name for name in self.record["parts"] if running_pid(state, name, MARKERS[name])
        ]
        self.started: set[str] = set()

    def port_for(self, name: str) -> int:
        """Return the part's port: its env override, its recorded port, or a free one."""
        variable = parts.PORT_VARIABLES[name]
        raw = os.environ.get(variable)
        if raw:
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise StackError(f"{variable}={raw!r} is not a TCP port number (1 to 65535)")
            return int(raw)
        recorded = self.record["ports"].get(name)
        if recorded and (running_pid(self.state, name, MARKERS[name]) or port_is_free(recorded)):
            return recorded
        return free_port()

    def ensure(
        self,
        spec: ProcessSpec,
        check: Callable[[], tuple[bool, str]],
        restart: bool = False,
        before_start: Callable[[], None] | None = None,
    ) -> None:
        """Leave the part running when healthy and unchanged; otherwise (re)start it."""
        name = spec.name
        fingerprint = _fingerprint(spec)
        pid = running_pid(self.state, name, spec.marker)
        unchanged = (
            self.record["ports"].get(name) == spec.port
            and self.record.get("fingerprints", {}).get(name) == fingerprint
        )
        if pid and unchanged and not restart:
            healthy, detail = check()
            if healthy:
                log.info("%s already running and healthy: pid %s, port %s", name, pid, spec.port)
                self._remember(name, spec.port, fingerprint)
                return
            log.warning("%s (pid %s) is unhealthy (%s); restarting it", name, pid, detail)
        port_wait = 0.0
        if pid:
            stop_pid(pid, name)
            self.state.pid_file(name).unlink(missing_ok=True)
            port_wait = PORT_RELEASE_SECONDS

        if before_start is not None:
            before_start()
        new_pid = spawn(self.state, spec, port_wait)
        wait_healthy(self.state, spec, new_pid, check, START_TIMEOUTS[name])
        self.started.add(name)
        self._remember(name, spec.port, fingerprint)

    def _remember(self, name: str, port: int, fingerprint: str) -> None:
        self.record["ports"][name] = port
        self.record.setdefault("fingerprints", {})[name] = fingerprint
        if name not in self.record["parts"]:
            self.record["parts"].append(name)
        self.state.save_stack(self.record)


def _fingerprint(spec: ProcessSpec) -> str:
    # A changed command line or environment (new keys, another port) means
    # the running process is outdated. Only this hash is stored, not the env.
    payload = json.dumps([spec.argv, sorted(spec.env.items())]).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


def start(
    state_dir: Path | str | None = None, airflow: bool = False, mongo_uri: str | None = None
) -> dict[str, str]:
    """Start the local stack and return its environment (also written to ``stack.env``).

    :param state_dir: the state directory (default ``.local/`` in the repo).
    :param airflow: also run ``airflow standalone`` for the UI.
    :param mongo_uri: a MongoDB server to use instead of the stand-in; by
        default ``MONGO_URI`` from the environment, if set.
    :raises StackError: naming the part, port or binary that failed.
    """
    state = StateDir.open(state_dir)
    runner = _Runner(state)
    prefix = validate_prefix(os.environ.get("EXCHANGE_PREFIX") or DEFAULT_PREFIX)
    server_id = validate_server_id(os.environ.get("SFTP_SERVER_ID") or DEFAULT_SERVER_ID)
    ses_sender = os.environ.get("SES_SENDER") or DEFAULT_SES_SENDER

    requested = mongo_uri if mongo_uri is not None else os.environ.get("MONGO_URI")
    # A sourced stack.env sets MONGO_URI to the stand-in itself, which is not an external server.
    external_mongo = (
        requested if requested and requested != runner.record.get("standin_uri") else None
    )
    parts.check_binaries(need_mongo_standin=external_mongo is None)

    mongo = external_mongo or _start_mongo(runner)
    runner.record["external_mongo"] = external_mongo is not None
    moto_port, operator = _start_moto(runner, prefix)
    endpoint = f"http://{LOOPBACK}:{moto_port}"
    gateway = aws.ensure_gateway(endpoint, operator, prefix, aws.load_key(state.gateway_keys_file))
    aws.save_key(state.gateway_keys_file, gateway)
    aws.verify_ses_sender(endpoint, operator, ses_sender)
    sftp_port = _start_sftp(runner, endpoint, gateway, server_id)
    secret_port, token = _start_secret_service(runner, mongo)

    public_key = parts.host_public_key(state)
    settings = StackSettings(
        state=state,
        prefix=prefix,
        server_id=server_id,
        ses_sender=ses_sender,
        moto_port=moto_port,
        operator=operator,
        gateway_arn=gateway.arn,
        sftp_port=sftp_port,
        sftp_public_key=public_key,
        sftp_fingerprint=parts.host_key_fingerprint(public_key),
        mongo_uri=mongo,
        secret_service_port=secret_port,
        secret_service_token=token,
        airflow_port=runner.port_for(AIRFLOW) if airflow else None,
    )
    env = build_env(settings)
    write_stack_env(state, env)
    if airflow:
        _start_airflow(runner, env)
    state.save_stack(runner.record)
    log.info("local stack ready; environment in %s", state.env_file)
    return env


def _start_sftp(runner: _Runner, endpoint: str, gateway: aws.AccessKey, server_id: str) -> int:
    port = runner.port_for(SFTP)
    runner.ensure(
        parts.sftp_spec(runner.state, port, endpoint, gateway, server_id),
        lambda: health.check_ssh_banner(port),
    )
    return port


def _start_mongo(runner: _Runner) -> str:
    port = runner.port_for(MONGO)
    uri = f"mongodb://{LOOPBACK}:{port}/exchange"
    runner.ensure(parts.mongo_spec(runner.state, port), lambda: health.check_mongo(uri))
    runner.record["standin_uri"] = uri
    return uri


def _start_moto(runner: _Runner, prefix: str) -> tuple[int, aws.AccessKey]:
    """Start the emulator when needed and return its port and the operator key."""
    state = runner.state
    port = runner.port_for(MOTO)
    endpoint = f"http://{LOOPBACK}:{port}"
    stored = aws.load_key(state.operator_keys_file)
    running = running_pid(state, MOTO, MARKERS[MOTO]) is not None
    # moto keeps its users only in memory. When the running emulator rejects
    # the stored key, the bootstrap must run again on a fresh emulator.
    keys_valid = running and stored is not None and aws.caller_arn(endpoint, stored) == stored.arn
    if running and not keys_valid:
        log.warning("the running emulator rejects the stored operator key; restarting it")

    runner.ensure(
        parts.moto_spec(state, port), lambda: health.check_moto(port), restart=not keys_valid
    )
    if MOTO in runner.started or stored is None:
        stored = aws.bootstrap_operator(endpoint, prefix)
        aws.save_key(state.operator_keys_file, stored)
    return port, stored


def _start_secret_service(runner: _Runner, mongo_uri: str) -> tuple[int | None, str | None]:
    if not parts.part_module_available(SECRET_SERVICE):
        log.warning(
            "secret service skipped: module %s.__main__ not found in this checkout",
            parts.SECRET_SERVICE_MODULE,
        )
        runner.record["skipped"] = [SECRET_SERVICE]
        return None, None
    runner.record["skipped"] = []
    state = runner.state
    port = runner.port_for(SECRET_SERVICE)
    token = state.secret_service_token()
    runner.ensure(
        parts.secret_service_spec(state, port, token, mongo_uri),
        lambda: health.check_http(
            f"https://{LOOPBACK}:{port}/healthz", state.tls_dir / "dev-cert.pem"
        ),
    )
    return port, token


def _start_airflow(runner: _Runner, env: dict[str, str]) -> None:
    state = runner.state
    port = int(env["AIRFLOW_PORT"])
    spec = parts.airflow_spec(state, port, env)
    state.airflow_home.mkdir(parents=True, exist_ok=True)
    _ensure_admin_password(state.airflow_home / AIRFLOW_PASSWORD_FILE)

    def migrate() -> None:
        log.info("running airflow db migrate in %s", state.airflow_home)
        with open(state.log_file(AIRFLOW), "a") as log_handle:
            result = subprocess.run(
                [parts.python(), "-m", "airflow", "db", "migrate"],
                env=spec.env,
                cwd=spec.cwd,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                timeout=AIRFLOW_MIGRATE_TIMEOUT_SECONDS,
                check=False,
            )
        if result.returncode != 0:
            raise StackError(
                f"airflow db migrate failed with exit code {result.returncode}; "
                f"see {state.log_file(AIRFLOW)}"
            )

    runner.ensure(spec, lambda: health.check_airflow(port), before_start=migrate)


def _ensure_admin_password(path: Path) -> None:
    """Write the simple auth manager's admin password file when it is missing.

    Airflow generates the password itself otherwise, and then prints it into
    the standalone log; a file that already names the user stops that.
    """
    if path.exists():
        return
    path.touch(mode=0o600)
    path.write_text(json.dumps({"admin": secrets.token_urlsafe(18)}) + "\n")
    log.info("generated the Airflow admin password in %s", path)


def airflow_password_file(state_dir: Path | str | None = None) -> Path:
    """Return where Airflow's simple auth manager writes the generated admin password."""
    return StateDir.open(state_dir).airflow_home / AIRFLOW_PASSWORD_FILE


def read_env_file(path: Path) -> dict[str, str]:
    """Parse the ``export KEY='value'`` lines of ``stack.env``."""
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for line in path.read_text().splitlines():
        if not line.startswith("export "):
            continue
        key, _, value = shlex.split(line)[1].partition("=")
        env[key] = value
    return env


def status(state_dir: Path | str | None = None) -> list[PartStatus]:
    """Check every part the last ``start`` ran and return one status per part."""
    state = StateDir.open(state_dir)
    record = state.load_stack()
    result = []
    if record.get("external_mongo"):
        uri = read_env_file(state.env_file).get("MONGO_URI", "")
        healthy, detail = health.check_mongo(uri) if uri else (False, "MONGO_URI missing")
        result.append(PartStatus("mongo (external)", None, None, healthy, detail))
    for name in PART_ORDER:
        if name in record.get("skipped", []):
            result.append(PartStatus(name, None, None, True, "skipped: module not in checkout"))
        if name not in record["parts"]:
            continue
        port = record["ports"].get(name)
        pid = running_pid(state, name, MARKERS[name])
        if pid is None:
            result.append(PartStatus(name, None, port, False, "not running"))
            continue
        healthy, detail = _check(state, name, port)
        result.append(PartStatus(name, pid, port, healthy, detail))
    return result


def _check(state: StateDir, name: str, port: int) -> tuple[bool, str]:
    if name == MONGO:
        return health.check_mongo(f"mongodb://{LOOPBACK}:{port}/")
    if name == MOTO:
        return health.check_moto(port)
    if name == SFTP:
        return health.check_ssh_banner(port)
    if name == SECRET_SERVICE:
        return health.check_http(
            f"https://{LOOPBACK}:{port}/healthz", state.tls_dir / "dev-cert.pem"
        )
    return health.check_airflow(port)


def stop(state_dir: Path | str | None = None) -> list[str]:
    """Stop every part by its pid file, in reverse start order; return the stopped names."""
    state = StateDir.open(state_dir)
    stopped = []
    for name in reversed(PART_ORDER):
        pid = read_pid(state, name)
        if pid is None:
            continue
        if is_alive(pid, MARKERS[name]):
            stop_pid(pid, name)
            stopped.append(name)
        else:
            log.info("%s was not running (stale pid %s)", name, pid)
        state.pid_file(name).unlink(missing_ok=True)

    # The emulator kept its identities in memory, so the stored keys are void.
    for path in (state.operator_keys_file, state.gateway_keys_file):
        path.unlink(missing_ok=True)

    # rclone's write cache keeps copies of uploaded files, which are client
    # data; they must not outlive the bucket they were written to.
    shutil.rmtree(state.sftp_dir / "cache", ignore_errors=True)
    record = state.load_stack()
    record["parts"] = []
    record["external_mongo"] = False
    state.save_stack(record)
    return stopped


def gateway_env(state_dir: Path | str | None = None) -> dict[str, str]:
    """Return the environment the SFTP gateway's auth proxy runs with (gateway keys)."""
    state = StateDir.open(state_dir)
    key = aws.load_key(state.gateway_keys_file)
    if key is None:
        raise StackError(f"no SFTP gateway key in {state.gateway_keys_file}: run `up` first")
    env = read_env_file(state.env_file)
    return {
        **parts.base_env(),
        "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
        "AWS_DEFAULT_REGION": env["AWS_DEFAULT_REGION"],
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "SFTP_SERVER_ID": env["SFTP_SERVER_ID"],
    }


__all__ = ["PartStatus", "StackError", "gateway_env", "start", "status", "stop"]
